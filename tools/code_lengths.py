"""Lengths of the course's code: each notebook's longest exported cell, and each exported function's length.

    python tools/code_lengths.py                 the working tree
    python tools/code_lengths.py --base REV      the same, beside git revision REV (before -> after)
    python tools/code_lengths.py --functions N   also list functions of N lines or more

Lines are source lines without the `#|` directives; a function's length runs from its `def` to its last line.
"""
import argparse, ast, json, subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def _read(path, rev):
    if rev is None: return (ROOT/path).read_text() if (ROOT/path).exists() else None
    r = subprocess.run(['git', 'show', f'{rev}:{path}'], cwd=ROOT, capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None

def _files(rev):
    if rev is None: return sorted(str(p.relative_to(ROOT)) for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))
    out = subprocess.run(['git', 'ls-tree', '--name-only', rev, 'nbs/'], cwd=ROOT, capture_output=True, text=True).stdout.split()
    return sorted(f for f in out if f.endswith('.ipynb') and not Path(f).name.startswith('_'))

def lengths(rev=None):
    "{module (or notebook): (longest exported cell's lines, {function: lines})} at `rev` (None: the working tree)."
    res = {}
    for f in _files(rev):
        nb = json.loads(_read(f, rev))
        longest, funcs, mod = 0, {}, None
        for c in nb['cells']:
            src = ''.join(c['source'])
            if src.startswith('#| default_exp '): mod = src.split()[2]
            if c['cell_type'] != 'code' or not src.lstrip().startswith('#| export'): continue
            code = '\n'.join(l for l in src.splitlines() if not l.startswith('#|'))
            longest = max(longest, len(code.strip('\n').splitlines()))
            try: tree = ast.parse(code)
            except SyntaxError: continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    funcs[node.name] = node.end_lineno - node.lineno + 1
        res[mod or Path(f).stem] = (longest, funcs)  # by module, so a renamed notebook is compared with itself
    return res

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--base', help='git revision to compare with')
    ap.add_argument('--functions', type=int, default=30, help='list functions of at least this many lines')
    a = ap.parse_args()
    now, old = lengths(), (lengths(a.base) if a.base else {})
    arrow = lambda o, n: f'{o} -> {n}' if a.base else f'{n}'
    print('| module | longest exported cell (lines) | functions | longest function |')
    print('|---|---|---|---|')
    for nb in sorted(set(now) | set(old)):
        (ln, fn), (lo, fo) = now.get(nb, (0, {})), old.get(nb, (0, {}))
        top = max(fn.items(), key=lambda kv: kv[1], default=('-', 0))
        print(f"| {nb} | {arrow(lo, ln)} | {arrow(len(fo), len(fn))} | {top[0]} ({top[1]}) |")
    print(f'\nFunctions of {a.functions} lines or more:')
    rows = sorted(((n, f, fn[f]) for n, (_, fn) in now.items() for f in fn if fn[f] >= a.functions), key=lambda r: -r[2])
    for n, f, k in rows:
        before = next((fo[f] for _, fo in old.values() if f in fo), None) if a.base else None
        print(f'  {n}.{f}: {k}' + (f' (was {before})' if before is not None and before != k else ''))

if __name__ == '__main__': main()
