"""Keep executed notebooks readable: drop output noise a reader cannot act on and machine-specific paths.

    python tools/clean_outputs.py [NB ...]     (default: every nbs/*.ipynb)

Run after `nbdev-test --save` (which writes outputs back on success) and before `nbdev-clean`:
- stderr streams are dropped (progress bars, library warnings, rank logs);
- a stdout stream's carriage-return progress lines keep only their last state;
- absolute paths of this machine (temporary directories, the home and cache directories, the checkout)
  become short placeholders (`<tmp>`, `<cache>`, `<repo>`, `~`), so outputs are the same on every machine.
Tracebacks cannot be in saved outputs: `nbdev-test --save` only saves notebooks whose cells all passed.
"""
import json, re, sys, tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOME = Path.home()
SUBS = [(re.compile(re.escape(str(p)) + r'[^\s\'",;)\]}]*'), s) for p, s in (
    (Path(tempfile.gettempdir()), '<tmp>'), (HOME/'.cache', '<cache>'))] + \
       [(re.compile(re.escape(str(REPO))), '<repo>'), (re.compile(re.escape(str(HOME))), '~')]

def scrub(text:str)->str:
    "`text` with machine paths replaced and carriage-return progress collapsed to each line's last state."
    text = '\n'.join(l.rsplit('\r', 1)[-1] for l in text.split('\n'))
    for r, s in SUBS: text = r.sub(s, text)
    return text

def clean(nb:dict)->dict:
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        outs = []
        for o in c.get('outputs', []):
            if o.get('output_type') == 'stream':
                if o.get('name') == 'stderr': continue
                o['text'] = scrub(''.join(o['text'])).splitlines(True)
                if not o['text']: continue
            for k, v in o.get('data', {}).items():
                if k.startswith('text/') and k != 'text/html' or k in ('text/html', 'text/markdown'):
                    o['data'][k] = scrub(''.join(v) if isinstance(v, list) else v).splitlines(True)
            outs.append(o)
        c['outputs'] = outs
    return nb

if __name__ == '__main__':
    fns = sys.argv[1:] or sorted(str(p) for p in (REPO/'nbs').glob('*.ipynb'))
    for fn in fns:
        nb = json.loads(Path(fn).read_text())
        Path(fn).write_text(json.dumps(clean(nb), indent=1, ensure_ascii=False) + '\n')
