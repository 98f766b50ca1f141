#!/usr/bin/env python
"""Run the README's main job, `fsdp-qlora-train` with no flags, in a fresh directory, and record what it did.

    python tools/default_run.py [OUTDIR]            # default: benchmarks/
    python tools/default_run.py [OUTDIR] --md-only  # rewrite default-run.md from default-run.json, without a run

Writes OUTDIR/default-run.json (the exit status, the summary line, steps, held-out loss before and after, learned
tokens/s, peak RSS per rank, wall clock, the machine) and OUTDIR/default-run.md, the README's sentence made from
those figures. `tools/make_readme.py` copies that sentence into nbs/index.ipynb between the `default run` markers,
so the README states what the last run measured, never a figure typed by hand. Nothing else should run on the
machine meanwhile: the run took 20 min 30 s on 2 cores (2026-12-02), and its speed is part of what is recorded.
"""
import json, os, platform, re, subprocess, sys, tempfile, time
from pathlib import Path

def cpu_name()->str:
    "The CPU's model name, from /proc/cpuinfo where there is one."
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor() or platform.machine()

def run()->dict:
    "Run `fsdp-qlora-train` in a temporary directory: its record (raises with the command's stderr if it failed)."
    exe = Path(sys.executable).with_name('fsdp-qlora-train')
    with tempfile.TemporaryDirectory(prefix='fsdp_qlora_default_run_') as d:
        t0 = time.time()
        p = subprocess.run([str(exe)], cwd=d, capture_output=True, text=True)
        wall = time.time() - t0
        if p.returncode != 0: raise SystemExit(f"fsdp-qlora-train exited with {p.returncode}:\n{p.stderr[-3000:]}")
        rows = [json.loads(l) for l in (Path(d)/'output'/'metrics.jsonl').read_text().splitlines() if l.strip()]
    summary = next(l for l in p.stdout.splitlines()[::-1] if l.startswith('done: '))
    steps, ev = [r for r in rows if 'loss' in r], [r['eval_loss'] for r in rows if 'eval_loss' in r]
    peaks = re.search(r'peak RSS per rank ([^;]*?)(?:, peak GPU|;)', summary).group(1)
    return dict(command='fsdp-qlora-train', exit_status=p.returncode, summary=summary, steps=len(steps),
                eval_loss_start=ev[0], eval_loss_end=ev[-1], tokens_per_s=sum(r['tokens_per_s'] for r in steps)/len(steps),
                peak_rss_per_rank=peaks.split(', '), wall_seconds=round(wall), cpu=cpu_name(), cores=os.cpu_count(),
                date=time.strftime('%Y-%m-%d'))

def sentence(r:dict)->str:
    "The README's sentence about the run `r` records."
    m, s = divmod(r['wall_seconds'], 60)
    return (f"Measured by `python tools/default_run.py` ({len(r['peak_rss_per_rank'])} CPU ranks on {r['cores']} cores, "
            f"{r['cpu']}, {r['date']}): {r['steps']} optimizer "
            f"steps in {m} min {s:02d} s wall clock including loading and evaluation, held-out loss "
            f"{r['eval_loss_start']:.2f} -> {r['eval_loss_end']:.2f}, {r['tokens_per_s']:.0f} learned tokens/s, peak RSS "
            f"{' and '.join(r['peak_rss_per_rank'])} per rank, exit status {r['exit_status']}.")

def main(out='benchmarks', *flags):
    out = Path(out); out.mkdir(parents=True, exist_ok=True)
    if '--md-only' in flags: r = json.loads((out/'default-run.json').read_text())
    else:
        r = run()
        (out/'default-run.json').write_text(json.dumps(r, indent=1) + '\n')
    (out/'default-run.md').write_text(sentence(r) + '\n')
    print(r['summary']); print(sentence(r))

if __name__ == '__main__': main(*sys.argv[1:])
