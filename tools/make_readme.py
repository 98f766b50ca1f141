"""Write README.md from nbs/index.ipynb without quarto: markdown cells as they are, code cells fenced (hidden cells skipped).
First the measured blocks of index.ipynb (between their markers) are refreshed from the files the measuring scripts
wrote: the results table from benchmarks/results.md (benchmarks/bench.py) and the default run's sentence from
benchmarks/default-run.md (tools/default_run.py). So the notebook, the docs site and the README all show what the
scripts last measured, never figures typed by hand."""
import json, re, sys
from pathlib import Path

def cell_md(c):
    src = ''.join(c['source']).rstrip()
    if c['cell_type'] == 'markdown': return src
    if c['cell_type'] != 'code' or not src or src.lstrip().startswith('#| hide'): return None
    lines = [l for l in src.splitlines() if not l.startswith('#|')]
    return '```python\n' + '\n'.join(lines).strip() + '\n```'

BLOCKS = {'results': 'results.md', 'default run': 'default-run.md'}  # marker name -> the file under benchmarks/ it shows

def markers(name:str)->tuple:
    return f'<!-- {name}: begin (benchmarks/{BLOCKS[name]}, copied by tools/make_readme.py) -->', f'<!-- {name}: end -->'

def refresh(nb:dict, name:str, res:Path)->bool:
    "Replace the text between the `name` markers of `nb`'s markdown cells with `res`; True if anything changed."
    if not res.exists(): return False
    BEGIN, END = markers(name)
    block, changed = BEGIN + '\n' + res.read_text().strip() + '\n' + END, False
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] != 'markdown' or BEGIN not in src: continue
        new = re.sub(re.escape(BEGIN) + '.*?' + re.escape(END), lambda m: block, src, flags=re.S)
        if new != src: c['source'], changed = new.splitlines(True), True
    return changed

def main(root=Path(__file__).resolve().parent.parent):
    ip = root/'nbs'/'index.ipynb'
    nb = json.loads(ip.read_text())
    if any([refresh(nb, k, root/'benchmarks'/f) for k, f in BLOCKS.items()]): ip.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    parts = [p for p in map(cell_md, nb['cells']) if p]
    txt = '<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->\n\n' + '\n\n'.join(parts) + '\n'
    (root/'README.md').write_text(txt)

if __name__ == '__main__': main()
