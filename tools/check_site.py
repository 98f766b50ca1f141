"""Check a built docs site: every notebook has a page, every local link resolves, every page loads in headless
Chromium without console errors, uncaught exceptions or failed loads. A `#fragment` naming no id on its page
is a warning (the page still opens), an error with --strict-anchors.

    python tools/check_site.py [SITE_DIR] [--nbs nbs] [--strict-anchors] [--no-browser]

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`), so no extra package is
needed. Prints the problems, then one summary line; exits 1 on any problem."""
import argparse, json, os, re, shutil, subprocess, sys, tempfile, time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

LINK_ATTRS = {'a': 'href', 'link': 'href', 'area': 'href', 'img': 'src', 'script': 'src', 'iframe': 'src',
              'source': 'src', 'video': 'src', 'audio': 'src', 'embed': 'src'}

class Page(HTMLParser):
    "The ids (anchor targets) and local references of one HTML page."
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.refs = set(), []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ('id', 'name') if tag == 'a' else ('id',):
            if a.get(k): self.ids.add(a[k])
        v = a.get(LINK_ATTRS.get(tag, ''))
        if v is not None: self.refs.append((tag, v.strip()))

def page_name(nb):
    "The page nbdev gives a notebook: numeric prefix dropped (`03_loading.ipynb` -> `loading.html`)."
    try:
        from nbdev.config import nbpath2html
        return nbpath2html(nb).name
    except ImportError: return re.sub(r'^\d+[a-zA-Z0-9]*_', '', nb.name.lower()).rsplit('.', 1)[0] + '.html'

def check_pages(site, nbs):
    nb_files = sorted(f for f in nbs.glob('*.ipynb') if not f.name.startswith(('_', '.')))
    return len(nb_files), [f'{f.name}: no page {page_name(f)}' for f in nb_files if not (site/page_name(f)).exists()]

def check_links(site):
    "Every local href/src resolves to a file in the site (errors); every #fragment to an id on its page (warnings)."
    pages, errs, warns, n = {}, [], [], 0
    for f in sorted(site.rglob('*.html')):
        p = Page(); p.feed(f.read_text(errors='replace')); pages[f.resolve()] = p
    for f, p in pages.items():
        rel = f.relative_to(site.resolve())
        for tag, ref in p.refs:
            if not ref or re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*:|^//', ref): continue  # http:, mailto:, data:, ...
            n += 1
            u = urlsplit(ref)
            target = f if not u.path else (f.parent/unquote(u.path)).resolve()
            if u.path.startswith('/'): errs.append(f'{rel}: <{tag}> {ref}: site-absolute path'); continue
            if u.path.endswith('/'): target = target/'index.html'
            if not target.is_file(): errs.append(f'{rel}: <{tag}> {ref}: no such file'); continue
            frag = unquote(u.fragment)
            if frag and target.suffix == '.html' and frag not in pages.get(target, Page()).ids:
                warns.append(f'{rel}: <{tag}> {ref}: no id "{frag}" in {target.name}')
    return len(pages), n, errs, warns

# ---- headless Chromium over the DevTools protocol (pipe transport: fd 3 in, fd 4 out) ----
def find_chromium():
    for c in ('chromium', 'chromium-browser', 'google-chrome', 'chrome'):
        if shutil.which(c): return shutil.which(c)

class CDP:
    def __init__(self, exe):
        self.prof = tempfile.mkdtemp(prefix='check_site_')
        (r_in, self.w), (self.r, w_out) = os.pipe(), os.pipe()  # we write commands to fd 3; it answers on fd 4
        def _fds():  # in the child: its fds 3 and 4 become our pipe ends (via copies, in case they are 3 or 4 already)
            a, b = os.dup(r_in), os.dup(w_out)
            os.dup2(a, 3); os.dup2(b, 4)
        self.proc = subprocess.Popen([exe, '--headless=new', '--disable-gpu', '--no-sandbox', '--no-first-run',
            '--remote-debugging-pipe', f'--user-data-dir={self.prof}', '--disable-extensions',
            '--disable-background-networking', '--disable-dev-shm-usage', 'about:blank'],
            pass_fds=(3, 4), preexec_fn=_fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(r_in); os.close(w_out)
        self.buf, self.id, self.events = b'', 0, []
    def _read(self, deadline):
        import select
        while b'\0' not in self.buf:
            left = deadline - time.time()
            if left <= 0 or not select.select([self.r], [], [], left)[0]: raise TimeoutError('no answer from chromium')
            chunk = os.read(self.r, 1 << 16)
            if not chunk: raise RuntimeError('chromium closed the DevTools pipe')
            self.buf += chunk
        msg, self.buf = self.buf.split(b'\0', 1)
        return json.loads(msg)
    def send(self, method, params=None, session=None, timeout=30):
        self.id += 1; i = self.id
        m = {'id': i, 'method': method, 'params': params or {}}
        if session: m['sessionId'] = session
        os.write(self.w, json.dumps(m).encode() + b'\0')
        deadline = time.time() + timeout
        while True:
            r = self._read(deadline)
            if r.get('id') == i:
                if 'error' in r: raise RuntimeError(f"{method}: {r['error'].get('message')}")
                return r.get('result', {})
            self.events.append(r)
    def wait_event(self, method, session, timeout):
        deadline = time.time() + timeout
        while True:
            for e in self.events:
                if e.get('method') == method and e.get('sessionId') == session: return e
            self.events.append(self._read(deadline))
    def close(self):
        try: self.send('Browser.close', timeout=5)
        except Exception: pass
        try: self.proc.wait(10)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        shutil.rmtree(self.prof, ignore_errors=True)

def _problems(events, session):
    "Console errors, uncaught exceptions and failed loads among the events of one page."
    out = []
    for e in events:
        if e.get('sessionId') != session: continue
        m, p = e.get('method'), e.get('params', {})
        if m == 'Runtime.exceptionThrown':
            d = p['exceptionDetails']
            out.append(f"uncaught: {(d.get('exception') or {}).get('description') or d.get('text')} (line {d.get('lineNumber', 0)+1})".splitlines()[0])
        elif m == 'Runtime.consoleAPICalled' and p.get('type') in ('error', 'assert'):
            out.append('console.error: ' + ' '.join(str(a.get('value', a.get('description', ''))) for a in p.get('args', [])))
        elif m == 'Log.entryAdded' and p['entry'].get('level') == 'error':
            en = p['entry']; out.append(f"{en.get('source')}: {en.get('text')} {en.get('url', '')}".strip())
    return out

def check_browser(site, pages, timeout=30):
    "Load each page in one headless Chromium; the problems each raised."
    exe = find_chromium()
    if not exe: return 0, ['chromium not found (apt-get install -y chromium), or pass --no-browser']
    cdp, errs, n = CDP(exe), [], 0
    try:
        tid = cdp.send('Target.createTarget', {'url': 'about:blank'})['targetId']
        s = cdp.send('Target.attachToTarget', {'targetId': tid, 'flatten': True})['sessionId']
        for m in ('Page.enable', 'Runtime.enable', 'Log.enable'): cdp.send(m, session=s)
        for f in pages:
            cdp.events = []
            r = cdp.send('Page.navigate', {'url': f.resolve().as_uri()}, session=s)
            if r.get('errorText'): errs.append(f'{f.name}: navigation failed: {r["errorText"]}'); continue
            try: cdp.wait_event('Page.loadEventFired', s, timeout)
            except TimeoutError: errs.append(f'{f.name}: no load event within {timeout}s'); continue
            t = time.time() + 0.3  # late errors: timers and handlers that run just after load
            try:
                while True: cdp.events.append(cdp._read(t))
            except TimeoutError: pass
            n += 1
            errs += [f'{f.name}: {p}' for p in _problems(cdp.events, s)]
    except Exception as e: errs.append(f'chromium: {type(e).__name__}: {e}')
    finally: cdp.close()
    return n, errs

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('site', nargs='?', default='_site_fallback', help='the built site')
    ap.add_argument('--nbs', default=None, help='notebooks that must each have a page (default: nbs/ next to tools/)')
    ap.add_argument('--strict-anchors', action='store_true', help='a #fragment with no such id on its page is an error, not a warning')
    ap.add_argument('--no-browser', action='store_true', help='skip the headless Chromium check')
    a = ap.parse_args(argv)
    t0, site = time.time(), Path(a.site)
    if not (site/'index.html').is_file():
        print(f'check_site: FAILED: {site}/index.html does not exist'); return 1
    nbs = Path(a.nbs) if a.nbs else Path(__file__).resolve().parent.parent/'nbs'
    n_nb, e_pages = check_pages(site, nbs)
    n_pages, n_links, e_links, w_anchor = check_links(site)
    if a.strict_anchors: e_links, w_anchor = e_links + w_anchor, []
    html_pages = [site/'index.html'] + sorted(f for f in site.rglob('*.html') if f != site/'index.html')
    n_ok, e_browser = (0, []) if a.no_browser else check_browser(site, html_pages)
    errs = e_pages + e_links + e_browser
    for w in w_anchor: print('  warning: ' + w)
    for e in errs: print('  ' + e)
    browser = 'browser skipped' if a.no_browser else f'{n_ok}/{len(html_pages)} pages loaded in chromium, {len(e_browser)} browser problems'
    print(f"check_site: {'FAILED' if errs else 'OK'}: {n_nb} notebooks, {len(e_pages)} without a page; {n_pages} pages, "
          f"{n_links} local links, {len(e_links)} broken, {len(w_anchor)} missing anchors; {browser} ({time.time()-t0:.0f}s)")
    return 1 if errs else 0

if __name__ == '__main__': sys.exit(main())
