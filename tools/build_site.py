"""Build the docs as a static HTML site without quarto: nbdev's own processing (`nbdev.serve.proc_nbs`:
show_doc output, directives, doc links) into `_proc/`, then every processed notebook to one HTML page with
nbconvert, a sidebar linking every page, and links rewritten to resolve inside the site.

    python tools/build_site.py [--out _site_fallback] [--strict] [--exec nbdev]

`nbdev-docs` (quarto) stays the real site; this is the fallback where quarto is missing, and what CI checks.

Which cells run. nbdev's docs processing executes exported cells, show_doc cells and any cell containing an
import (`nbdev.processors._do_eval`), even an import inside a function body or next to a whole lesson. With
`--exec safe` (the default) we run nbdev serially in this process and narrow that one rule to what STYLE.md
promises (exported cells, show_doc cells, cells holding only imports and definitions); the lesson cells
nbdev-docs would also run are listed as warnings, and `--strict` makes them an error. `--exec nbdev` runs proc_nbs unchanged."""
import argparse, ast, html, os, re, shutil, sys, time, warnings
from pathlib import Path

import nbformat, yaml
from nbconvert import HTMLExporter
from nbconvert.filters.markdown import markdown2html_mistune
from pygments.formatters import HtmlFormatter

EXEC_DIRS = {'export', 'exports', 'exporti', 'exec_doc'}

# ---- processing: nbdev's proc_nbs, no quarto ----
def _is_import(t): return isinstance(t, (ast.Import, ast.ImportFrom))
_DEFS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
def _is_def(t): return isinstance(t, _DEFS) or isinstance(t, ast.Expr) and isinstance(t.value, ast.Constant)

def _extra_exec(cell):
    "Why nbdev's docs build would run this cell's lesson code (beyond exports, show_doc, imports and definitions), or None."
    import nbdev.processors as P
    if cell.cell_type != 'code' or (cell.directives_.keys() & EXEC_DIRS): return None
    trees = cell.parsed_()
    if not trees or P._show_docs(trees) or all(map(_is_def, trees)): return None
    return 'imports beside other code' if any(map(_is_import, trees)) else 'an import inside a function, and calls'

CURRENT = ['?', {}]  # the notebook being processed (serial mode), and its cell ids' numbers

def _patch_eval(skipped):
    "Narrow `_do_eval` to exports, show_doc, imports and definitions; record the lesson code nbdev would also run."
    import nbdev.processors as P
    orig = P._do_eval
    def _do_eval(cell):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # nbdev's own 'imports and other code' warning: we report these below
            res = orig(cell)
        if not res: return res
        why = _extra_exec(cell)
        if why is None: return res
        first = next((l for l in cell.source.splitlines() if l.strip() and not l.startswith('#|')), '')
        n = CURRENT[1].get(cell.get('id'), '?')  # the cell's number in the source notebook (nbdev inserts cells)
        skipped.append(f"{CURRENT[0]} cell {n} ({why}): {first[:80]}")
        return False
    P._do_eval = _do_eval

def process(mode):
    "Run nbdev's `proc_nbs` into `_proc/`; returns (proc dir, failures, skipped lesson cells)."
    import nbdev.serve, nbdev.serve_drv
    from nbdev.config import get_config
    os.chdir(get_config().config_path)  # as nbdev-docs does; doc links come from the _modidx.py nbdev-export wrote
    if mode == 'nbdev': return nbdev.serve.proc_nbs(force=True), [], []
    failures, skipped, main, times = [], [], nbdev.serve_drv.main, []
    def _main(o):
        src, t = o[0], time.time()
        CURRENT[:] = [src.name, {c.get('id'): i for i, c in enumerate(nbformat.read(src, as_version=4).cells)} if src.suffix == '.ipynb' else {}]
        try: main(o)
        except Exception as e:
            failures.append(f'{src.name}: {str(e).strip().splitlines()[-1][:300]}')
            if o[1].exists(): o[1].unlink()
        times.append(f'{src.stem} {time.time()-t:.0f}s')
    nbdev.serve_drv.main = _main
    _patch_eval(skipped)
    cache = nbdev.serve.proc_nbs(n_workers=0, force=True)  # serial, in this process, so the patches apply
    print('processed: ' + ', '.join(times), flush=True)
    # our cells ran under narrower rules than nbdev-docs: mark the pages stale so nbdev-docs reprocesses them
    for f in cache.rglob('*.ipynb'): os.utime(f, (0, 0))
    return cache, failures, skipped

# ---- rendering ----
_re_attr_link = re.compile(r'\[([^\]\n]*)\]\(([^)\s]+)\)\{([^}\n]*)\}')
_re_kv = re.compile(r'''([\w-]+)=("[^"]*"|'[^']*'|\S+)''')

def _attr_link(m):
    "Pandoc `[text](url){k=v .cls}` (nbdev's source links) as an HTML anchor."
    text, url, attrs = m.groups()
    kv = {k: v.strip('"\'') for k, v in _re_kv.findall(attrs)}
    cls = ' '.join(c[1:] for c in attrs.split() if c.startswith('.'))
    if cls: kv['class'] = cls
    a = ''.join(f' {k}="{html.escape(v)}"' for k, v in kv.items())
    return f'<a href="{html.escape(url)}"{a}>{text}</a>'

def fix_md(md):
    "Quarto-only markdown that mistune would print literally: link attributes and `:::` fenced divs."
    md = _re_attr_link.sub(_attr_link, md)
    return re.sub(r'^:::+.*$', '', md, flags=re.MULTILINE)

def _directives(src):
    "Split leading `#| key: value` lines off a code cell's source."
    lines, d = src.splitlines(), {}
    while lines and lines[0].startswith('#|'):
        k, _, v = lines.pop(0)[2:].strip().partition(':')
        d[k.strip()] = v.strip().lower() or True
    return d, '\n'.join(lines)

def prep_nb(nb):
    "Turn the quarto conventions left in a processed notebook into plain nbformat; returns (nb, title, description)."
    fm, cells = {}, []
    for c in nb.cells:
        src = c.source
        if c.cell_type == 'raw' and src.lstrip().startswith('---') and not fm:
            fm = yaml.safe_load(src.strip().strip('-')) or {}
            continue
        if c.cell_type == 'markdown': c.source = fix_md(src)
        if c.cell_type == 'code':
            d, c.source = _directives(src)
            tags = set(c.metadata.get('tags', []))
            if d.get('include') == 'false': continue
            if d.get('echo') == 'false' or not c.source.strip(): tags.add('remove_input')
            if d.get('output') == 'false': tags.add('remove_output')
            c.metadata = nbformat.NotebookNode(tags=sorted(tags))  # drop execnb's timings, which the schema rejects
            for o in c.get('outputs', []):
                md = o.get('data', {}).get('text/markdown')
                if md is not None: o['data']['text/markdown'] = fix_md(''.join(md) if isinstance(md, list) else md)
            if not c.source.strip() and not c.get('outputs'): continue
        for k in list(c):  # processors leave attributes (e.g. `has_sd`) that nbformat's schema rejects
            if k not in ('cell_type', 'id', 'metadata', 'source', 'outputs', 'execution_count', 'attachments'): del c[k]
        cells.append(c)
    nb.cells = cells
    return nb, str(fm.get('title', '')), str(fm.get('description', ''))

def exporter():
    e = HTMLExporter(template_name='basic', exclude_input_prompt=True, exclude_output_prompt=True)
    e.register_preprocessor('nbconvert.preprocessors.TagRemovePreprocessor', enabled=True)
    tp = e._preprocessors[-1]
    e.register_filter('clean_html', lambda x: x.decode() if isinstance(x, bytes) else str(x))  # trusted input; bleach is slow
    tp.remove_input_tags, tp.remove_all_outputs_tags, tp.remove_cell_tags = {'remove_input'}, {'remove_output'}, {'remove_cell'}
    return e

def pandoc_id(text):
    "Pandoc's auto identifier (what quarto gives a heading, and what nbdev's doc links point to)."
    s = re.sub(r'[^\w\s._-]', '', text.strip().lower())
    s = re.sub(r'\s+', '-', s)
    s = re.sub(r'^[^a-z]+', '', s)
    return s or 'section'

_re_heading = re.compile(r'<h([1-6])((?:\s+[^>]*)?)>(.*?)</h\1>', re.S)
_re_href = re.compile(r'(<a\s[^>]*?\bhref=")([^"]*)(")', re.S)

def fix_html(body, pages, doc_base):
    "Heading ids as quarto makes them; links to notebooks and to the hosted docs made local; the page's h2 list."
    seen, toc = {}, []
    def _h(m):
        lvl, attrs, inner = m.groups()
        inner = re.sub(r'<a class="anchor-link"[^>]*>.*?</a>', '', inner, flags=re.S)  # nbconvert's pilcrow
        text = html.unescape(re.sub(r'<[^>]+>', '', inner)).strip()
        i = pandoc_id(text); n = seen.get(i, 0); seen[i] = n + 1
        i = i if n == 0 else f'{i}-{n}'
        if lvl == '2': toc.append((text, i))
        attrs = re.sub(r'\s+id="[^"]*"', '', attrs or '')
        return f'<h{lvl} id="{i}"{attrs}>{inner}<a class="anchor" href="#{i}" aria-hidden="true">#</a></h{lvl}>'
    def _a(m):
        u = html.unescape(m.group(2))
        if doc_base and u.startswith(doc_base): u = u[len(doc_base):].lstrip('/') or 'index.html'
        path, frag = (u.split('#', 1) + [''])[:2]
        if not re.match(r'^[a-z][a-z0-9+.-]*:|^/', path) and path.endswith('.ipynb'):
            name = Path(path).name
            path = pages.get(name, Path(name).with_suffix('.html').name)
        if path.endswith('.html.md'): path = path[:-3]  # nbdev's markdown doc URLs
        return m.group(1) + html.escape(path + (f'#{frag}' if frag else '')) + m.group(3)
    body = _re_heading.sub(_h, body)
    return _re_href.sub(_a, body), toc

CSS = """
body{margin:0;font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;display:flex}
nav.sidebar{position:sticky;top:0;height:100vh;overflow:auto;flex:0 0 15rem;padding:1rem;background:#f7f7f9;border-right:1px solid #e3e3e8;box-sizing:border-box}
nav.sidebar .brand{font-weight:700;font-size:1.2rem;text-decoration:none;color:#2780e3;display:block;margin-bottom:.8rem}
nav.sidebar ul{list-style:none;padding:0;margin:0} nav.sidebar li{margin:.15rem 0}
nav.sidebar a{color:#333;text-decoration:none} nav.sidebar a.active{color:#2780e3;font-weight:600}
nav.sidebar ul.toc{margin:.2rem 0 .5rem .8rem;font-size:.85rem} nav.sidebar .note{margin-top:1.5rem;font-size:.75rem;color:#777}
main{flex:1;min-width:0;max-width:58rem;padding:1.5rem 2.5rem}
a{color:#2780e3} h1,h2,h3{line-height:1.25} h1{margin-top:0}
a.anchor{margin-left:.4rem;opacity:0;text-decoration:none;font-size:.8em} h1:hover a.anchor,h2:hover a.anchor,h3:hover a.anchor,h4:hover a.anchor{opacity:.5}
pre{overflow:auto;padding:.6rem .8rem;border-radius:4px;font-size:.85rem;line-height:1.4}
.jp-InputArea pre,.highlight pre{background:#f5f5f7}
.jp-OutputArea pre{background:none;border-left:2px solid lightsalmon;margin-left:.8rem;padding:.2rem .8rem}
code{font-size:.88em;background:#f3f3f5;padding:.05rem .25rem;border-radius:3px} pre code{background:none;padding:0}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem} th,td{border:1px solid #ddd;padding:.25rem .55rem;text-align:left}
img{max-width:100%} .jp-Cell{margin-bottom:1rem} blockquote{color:#555;border-left:3px solid #ddd;margin-left:0;padding-left:1rem}
hr{border:none;border-top:1px solid #e3e3e8}
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – {site}</title>
<link rel="stylesheet" href="site.css">{extra_css}
</head><body>
<nav class="sidebar"><a class="brand" href="index.html">{site}</a><ul>{nav}</ul>
<p class="note">Built from the notebooks with nbdev's processing and nbconvert (tools/build_site.py); the full site is built by <code>nbdev-docs</code>.</p></nav>
<main>
<h1 class="title" id="{title_id}">{title}</h1>{desc}
{body}
</main></body></html>
"""

def build(out, mode='safe', strict=False, reuse=False):
    from nbdev.config import get_config
    t0 = time.time()
    cfg = get_config()
    if reuse: cache, failures, skipped = cfg.config_path/'_proc', [], []
    else: cache, failures, skipped = process(mode)
    t1 = time.time()
    out = (cfg.config_path/out).resolve()
    if out in (cfg.config_path.resolve(), *cfg.config_path.resolve().parents) or out.exists() and any(out.iterdir()) and not (out/'site.css').exists():
        print(f'refusing to replace {out}: not a site this script built'); return 2
    shutil.rmtree(out, ignore_errors=True); out.mkdir(parents=True)
    for f in cache.rglob('*'):  # assets (styles.css, images), not the quarto config
        if f.is_file() and f.suffix not in ('.ipynb', '.yml', '.yaml') and not any(p.startswith('.') for p in f.relative_to(cache).parts):
            (out/f.relative_to(cache)).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, out/f.relative_to(cache))
    for f in (cfg.config_path/'benchmarks').glob('*.png'):  # the README's benchmark charts, at the same relative path as on GitHub
        (out/'benchmarks').mkdir(exist_ok=True); shutil.copy2(f, out/'benchmarks'/f.name)
    from nbdev.config import nbpath2html
    from nbdev.quarto import _sort
    nbs = sorted((f for f in cache.glob('*.ipynb') if not f.name.startswith(('_', '.'))), key=lambda f: _sort(('', f.name)))
    pages = {}
    loaded = {}
    for f in nbs:
        nb, title, desc = prep_nb(nbformat.read(f, as_version=4))
        fm_out = next((yaml.safe_load(c.source.strip().strip('-')) or {} for c in nbformat.read(f, as_version=4).cells
                       if c.cell_type == 'raw' and c.source.lstrip().startswith('---')), {}).get('output-file')
        pages[f.name] = fm_out or nbpath2html(f.name).name
        loaded[f.name] = (nb, title or Path(pages[f.name]).stem, desc)
    e, doc_base = exporter(), (cfg.get('doc_host', '') + cfg.get('doc_baseurl', '')).rstrip('/')
    rendered = {}
    for name, (nb, title, desc) in loaded.items():
        body, _ = e.from_notebook_node(nb)
        rendered[name] = fix_html(body, pages, doc_base + '/' if doc_base else '')
    extra_css = '\n<link rel="stylesheet" href="styles.css">' if (out/'styles.css').exists() else ''
    (out/'site.css').write_text(CSS + HtmlFormatter(style='default').get_style_defs('.highlight'))
    for name, (nb, title, desc) in loaded.items():
        body, toc = rendered[name]
        nav = []
        for n2, (_, t2, _) in loaded.items():
            act = ' class="active"' if n2 == name else ''
            sub = ''.join(f'<li><a href="#{i}">{html.escape(t)}</a></li>' for t, i in toc) if n2 == name and toc else ''
            nav.append(f'<li><a href="{pages[n2]}"{act}>{html.escape(t2)}</a>' + (f'<ul class="toc">{sub}</ul>' if sub else '') + '</li>')
        d = f'\n<div class="description">{markdown2html_mistune(fix_md(desc))}</div>' if desc else ''
        d, _ = fix_html(d, pages, doc_base + '/' if doc_base else '') if d else ('', [])
        (out/pages[name]).write_text(PAGE.format(title=html.escape(title), title_id=pandoc_id(title), site=html.escape(cfg.get('title', cfg.lib_name)),
                                                 extra_css=extra_css, nav=''.join(nav), desc=d, body=body))
    t2 = time.time()
    for s in skipped: print(f'WARNING: nbdev-docs would also run {s}', file=sys.stderr)
    if skipped: print(f'WARNING: {len(skipped)} lesson cells would run during nbdev-docs (keep import cells pure; '
                      'split a rank function that imports from the cell that calls it)', file=sys.stderr)
    for f in failures: print(f'ERROR processing {f}', file=sys.stderr)
    bad = failures or (strict and skipped)
    print(f"site: {len(loaded)} pages in {out.relative_to(cfg.config_path) if out.is_relative_to(cfg.config_path) else out} "
          f"(process {t1-t0:.0f}s, render {t2-t1:.0f}s), {len(failures)} failed, {len(skipped)} lesson cells skipped"
          + (' [strict]' if strict else ''))
    return 0 if not bad else 1

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default='_site_fallback', help='output directory, relative to the project root')
    p.add_argument('--exec', dest='mode', choices=['safe', 'nbdev'], default='safe',
                   help="safe: run only exports, show_doc, imports and definitions; nbdev: proc_nbs unchanged")
    p.add_argument('--reuse', action='store_true', help='render the existing _proc/ without processing again')
    p.add_argument('--strict', action='store_true', help='fail if nbdev-docs would run lesson cells')
    a = p.parse_args(argv)
    return build(a.out, a.mode, a.strict, a.reuse)

if __name__ == '__main__':
    rc = main()
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(rc)  # skip interpreter teardown: with torch and the notebooks' IPython shells loaded it took ~40s on a busy machine
