#!/usr/bin/env python
"""Edit notebook cells from the shell, so changes to `nbs/*.ipynb` can be scripted and reviewed.

    python tools/nbedit.py list NB [GREP]           index, type, cell id and first line of each cell (matching GREP)
    python tools/nbedit.py get NB I                 the source of cell I
    python tools/nbedit.py set NB I FILE|-          replace cell I's source (outputs cleared)
    python tools/nbedit.py insert NB I code|markdown FILE|-   insert a new cell before index I (I = len: append)
    python tools/nbedit.py delete NB I              remove cell I
    python tools/nbedit.py find NB TEXT             indices of cells whose source contains TEXT
    python tools/nbedit.py hoist NB                 move the top-level imports of cells that mix them with other code
                                                    into an import-only cell before each (nbdev-docs runs import cells)

Run `nbdev-clean` and `nbdev-export` afterwards, as after any notebook edit."""
import ast, sys, json, uuid
from pathlib import Path

def _load(nb): return json.loads(Path(nb).read_text())

def _save(nb, d): Path(nb).write_text(json.dumps(d, indent=1, ensure_ascii=False) + '\n')

def _src(c): return ''.join(c['source'])

def _read(f): return sys.stdin.read() if f == '-' else Path(f).read_text()

def _lines(s):
    ls = s.splitlines(keepends=True)
    if ls and ls[-1].endswith('\n'): ls[-1] = ls[-1][:-1]
    return ls

def _cell(kind, src):
    c = dict(cell_type=kind, id=uuid.uuid4().hex[:8], metadata={}, source=_lines(src))
    if kind == 'code': c.update(execution_count=None, outputs=[])
    return c

def main(cmd, nb, *a):
    d = _load(nb); cells = d['cells']
    if cmd == 'list':
        for i, c in enumerate(cells):
            s = _src(c)
            if a and a[0] not in s: continue
            first = next((l for l in s.splitlines() if l.strip()), '')
            print(f"{i:3d} {c['cell_type'][:4]} {c.get('id', '')[:8]:8s} {len(s.splitlines()):3d}L {first[:100]}")
    elif cmd == 'get': print(_src(cells[int(a[0])]))
    elif cmd == 'find': print(' '.join(str(i) for i, c in enumerate(cells) if a[0] in _src(c)))
    elif cmd == 'set':
        c = cells[int(a[0])]; c['source'] = _lines(_read(a[1]))
        if c['cell_type'] == 'code': c.update(outputs=[], execution_count=None)
        _save(nb, d)
    elif cmd == 'insert':
        cells.insert(int(a[0]), _cell(a[1], _read(a[2]))); _save(nb, d)
    elif cmd == 'delete': del cells[int(a[0])]; _save(nb, d)
    elif cmd == 'hoist':
        out = []
        for c in cells:
            s = _src(c)
            if c['cell_type'] == 'code' and not s.lstrip().startswith('#|'):
                try: body = ast.parse(s).body
                except SyntaxError: body = []
                imps = [n for n in body if isinstance(n, (ast.Import, ast.ImportFrom))]
                if imps and len(imps) < len(body):
                    ls = s.splitlines(keepends=True)
                    taken = {i for n in imps for i in range(n.lineno-1, n.end_lineno)}
                    out.append(_cell('code', ''.join(ls[i] for i in sorted(taken)).rstrip('\n')))
                    c['source'] = _lines(''.join(l for i, l in enumerate(ls) if i not in taken))
                    c.update(outputs=c.get('outputs', []))
                    print(f'hoisted {len(imps)} import(s) from: {next((l for l in s.splitlines() if l.strip()), "")[:80]}')
            out.append(c)
        d['cells'] = out; _save(nb, d)
    else: sys.exit(__doc__)

if __name__ == '__main__':
    if len(sys.argv) < 3: sys.exit(__doc__)
    main(*sys.argv[1:])
