"""Write README.md from nbs/index.ipynb without quarto: markdown cells as they are, code cells fenced (hidden cells skipped).
First the measured results table in index.ipynb (between the results markers) is refreshed from benchmarks/results.md,
so the notebook, the docs site and the README all show what the benchmark script last wrote."""
import json, re, sys
from pathlib import Path

def cell_md(c):
    src = ''.join(c['source']).rstrip()
    if c['cell_type'] == 'markdown': return src
    if c['cell_type'] != 'code' or not src or src.lstrip().startswith('#| hide'): return None
    lines = [l for l in src.splitlines() if not l.startswith('#|')]
    return '```python\n' + '\n'.join(lines).strip() + '\n```'

BEGIN, END = '<!-- results: begin (benchmarks/results.md, copied by tools/make_readme.py) -->', '<!-- results: end -->'

def refresh_results(nb:dict, res:Path)->bool:
    "Replace the text between the results markers of `nb`'s markdown cells with `res`; True if anything changed."
    if not res.exists(): return False
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
    if refresh_results(nb, root/'benchmarks'/'results.md'): ip.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    parts = [p for p in map(cell_md, nb['cells']) if p]
    txt = '<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->\n\n' + '\n\n'.join(parts) + '\n'
    (root/'README.md').write_text(txt)

if __name__ == '__main__': main()
