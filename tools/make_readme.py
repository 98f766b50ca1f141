"Write README.md from nbs/index.ipynb without quarto: markdown cells as they are, code cells fenced (hidden cells skipped)."
import json, sys
from pathlib import Path

def cell_md(c):
    src = ''.join(c['source']).rstrip()
    if c['cell_type'] == 'markdown': return src
    if c['cell_type'] != 'code' or not src or src.lstrip().startswith('#| hide'): return None
    lines = [l for l in src.splitlines() if not l.startswith('#|')]
    return '```python\n' + '\n'.join(lines).strip() + '\n```'

def main(root=Path(__file__).resolve().parent.parent):
    nb = json.loads((root/'nbs'/'index.ipynb').read_text())
    parts = [p for p in map(cell_md, nb['cells']) if p]
    txt = '<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->\n\n' + '\n\n'.join(parts) + '\n'
    (root/'README.md').write_text(txt)

if __name__ == '__main__': main()
