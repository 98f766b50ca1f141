"""Split a long exported notebook cell into one cell per top-level definition (nbdev style: one idea per cell).

    python tools/split_cell.py NB INDEX [--min 8] [--dry]

Constants and small helpers stay with the definition that follows them; a chunk ends after a definition once it
has at least `--min` lines. The exported module's code is unchanged (only its `# %%` cell markers move); add a
sentence between the new cells where the lesson needs one.
"""
import argparse, ast, json, uuid
from pathlib import Path

def chunks(src:str, min_lines:int=8)->list:
    "The cell's code cut before top-level definitions, as a list of sources."
    lines = src.splitlines()
    tree = ast.parse(src)
    starts = []
    for node in tree.body:
        s = min([node.lineno] + [d.lineno for d in getattr(node, 'decorator_list', [])]) - 1
        while s > 0 and lines[s-1].lstrip().startswith('#') and not lines[s-1].startswith('#|'): s -= 1  # comments above belong to it
        starts.append((s, node.end_lineno, isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))))
    out, cur_start = [], 0
    for k, (s, e, is_def) in enumerate(starts):
        if not is_def: continue
        nxt = starts[k+1][0] if k+1 < len(starts) else len(lines)
        if e - cur_start >= min_lines and k+1 < len(starts):
            out.append((cur_start, nxt)); cur_start = nxt
    out.append((cur_start, len(lines)))
    if len(out) > 1 and out[-1][1] - out[-1][0] < 3: out[-2:] = [(out[-2][0], out[-1][1])]  # a line or two stays with what it follows
    return ['\n'.join(lines[a:b]).strip('\n') for a, b in out if '\n'.join(lines[a:b]).strip()]

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('nb'); ap.add_argument('index', type=int)
    ap.add_argument('--min', type=int, default=8); ap.add_argument('--dry', action='store_true')
    a = ap.parse_args()
    p = Path(a.nb); nb = json.loads(p.read_text())
    c = nb['cells'][a.index]; src = ''.join(c['source'])
    head = [l for l in src.splitlines() if l.startswith('#|')]
    body = '\n'.join(l for l in src.splitlines() if not l.startswith('#|'))
    parts = chunks(body, a.min)
    for i, s in enumerate(parts): print(f'--- part {i}: {len(s.splitlines())} lines: {s.splitlines()[0][:90]}')
    if a.dry or len(parts) < 2: return
    new = []
    for i, s in enumerate(parts):
        d = dict(c, id=c['id'] if i == 0 else uuid.uuid4().hex[:8], source=('\n'.join(head + [s])).splitlines(keepends=True), outputs=[], execution_count=None)
        new.append(d)
    nb['cells'][a.index:a.index+1] = new
    p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')

if __name__ == '__main__': main()
