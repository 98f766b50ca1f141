"""Benchmark fsdp_qlora's QLoRA training against the standard transformers + bitsandbytes + peft recipe.

Measures, for the real SmolLM2-135M (or a ~1.1B Llama-shaped model with random weights, `--model synthetic-1.1b`) at a
few (micro-batch, context) settings, in one run on this machine: tokens/s, model FLOPs utilization against this
machine's measured bf16 matmul peak, peak RSS per rank, load time, load peak, bytes each rank read from the
checkpoint and the quant state each rank holds, for
  ours-w2        fsdp_qlora's trainer, qlora, 2 gloo ranks x 1 thread (FSDP2 full_shard)
  ours-w1        fsdp_qlora's trainer, qlora, 1 rank x 2 threads
  hf-qlora       the standard single-process recipe: BitsAndBytesConfig nf4 + prepare_model_for_kbit_training
                 (non-quantized weights upcast to fp32) + get_peft_model, 1 process x 2 threads
  hf-qlora-bf16  the same recipe without prepare_model_for_kbit_training (non-quantized weights stay bf16)
Every measurement runs in a fresh process (ranks are spawned fresh; the baselines run as a subprocess of
this script), so peaks are clean. See benchmarks/README.md.

    python benchmarks/bench.py            # full run (estimated 13-17 min on 2 quiet cores)
    python benchmarks/bench.py --quick    # smoke run (estimated 3-4 min on 2 quiet cores)
    python benchmarks/bench.py --model synthetic-1.1b --settings 1x256 --systems ours-w2,ours-w1,hf-qlora --steps 3
"""
import os, sys, json, time, argparse, platform, subprocess, tempfile, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
FULL = dict(settings=[(1, 256), (2, 512)], steps=3)
QUICK = dict(settings=[(1, 64)], steps=2)
SYSTEMS = ['ours-w2', 'ours-w1', 'hf-qlora', 'hf-qlora-bf16']
LORA = dict(lora_rank=64, lora_alpha=16, lora_dropout=0.1)
TARGETS = ['q_proj', 'k_proj', 'v_proj', 'up_proj', 'down_proj', 'gate_proj']  # ours' 'all' (fsdp_qlora.lora.LORA_TARGETS)

def status_bytes(key):
    "A `/proc/self/status` figure in bytes (VmHWM: peak RSS, VmRSS: current)."
    for l in open('/proc/self/status'):
        if l.startswith(key + ':'): return int(l.split()[1])*1024

def io_read()->int:
    "Bytes this process has read through read() calls so far (`rchar`; memory-mapped reads are not counted)."
    return int(next(l.split()[1] for l in open('/proc/self/io') if l.startswith('rchar:')))

def rate(rows):
    "Mean learned tokens/s over the steps after the first (warm-up), and over all steps (what `train` reports)."
    tps = [r['tokens_per_s'] for r in rows]
    return dict(tokens_per_s=sum(tps[1:])/len(tps[1:]) if len(tps) > 1 else tps[0],
                tokens_per_s_all=sum(tps)/len(tps), step_tokens_per_s=tps)

# ---------------------------------------------------------------- the model and the machine
def synthetic(dest=None)->str:
    "A ~1.1B Llama-shaped checkpoint with random bf16 weights and SmolLM2's tokenizer, written once (2.3 GB) and reused."
    from fsdp_qlora.hub import resolve_model
    from fsdp_qlora.testing import write_random_llama
    import shutil
    dest = Path(dest or Path.home()/'.cache/fsdp_qlora/bench/llama-1.1b-synthetic')
    if not (dest/'done').exists():
        src = resolve_model()
        write_random_llama(dest, hidden=2048, layers=22, inter=5632, heads=32, kv_heads=4, vocab=49152)  # SmolLM2's vocabulary
        for f in src.iterdir():
            if f.name.startswith(('tokenizer', 'special_tokens', 'chat_template')): shutil.copy(f, dest/f.name)
        (dest/'done').write_text('')
    return str(dest)

BENCH_MODELS = {'smollm2': lambda: str(__import__('fsdp_qlora.hub', fromlist=['x']).resolve_model()), 'synthetic-1.1b': synthetic}
def model_path(name:str)->str: return BENCH_MODELS[name]() if name in BENCH_MODELS else name

def matmul_peak(threads:int, n:int=2048, reps:int=30)->float:
    "This machine's bf16 matmul rate on `threads` threads in FLOP/s: the fastest of `reps` n x n products (measured at start and end)."
    import torch
    old = torch.get_num_threads(); torch.set_num_threads(threads)
    a, b = torch.randn(n, n, dtype=torch.bfloat16), torch.randn(n, n, dtype=torch.bfloat16)
    for _ in range(5): a @ b
    best = float('inf')
    for _ in range(reps):
        t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
    torch.set_num_threads(old)
    return 2*n**3/best

def flops_per_token(path:str, T:int)->float:
    "FLOPs of one trained token (forward, backward through the frozen weights, recompute, adapters): `fsdp_qlora.memory.train_flops`."
    from fsdp_qlora.memory import train_flops, shape_of
    return sum(train_flops(shape_of(path), T, lora_rank=LORA['lora_rank'], targets=TARGETS, checkpointing=True).values())

# ---------------------------------------------------------------- ours: the real trainer on spawned ranks
def ours_rank(**kw):
    "`train(**kw)` on this rank, timing `setup_model` (build on meta, FSDP2 wrap, stream + quantize weights)."
    import time, fsdp_qlora.train as T
    from fsdp_qlora.core import peak_rss
    from fsdp_qlora.wrap import state_bytes
    orig, load = T.setup_model, {}
    def timed(*a, **k):
        t0, r0 = time.perf_counter(), io_read()
        m = orig(*a, **k)
        load.update(load_seconds=time.perf_counter()-t0, load_peak_rss=peak_rss(), load_read=io_read()-r0, quant_state=state_bytes(m))
        return m
    T.setup_model = timed
    try: r = T.train(**kw)
    finally: T.setup_model = orig
    own = {k: r[k] for k in ('load_seconds', 'load_peak_rss') if k in r}  # the trainer's own, when it has them
    return dict(r, **load, trainer_load=own, threads=__import__('torch').get_num_threads())

def expanded(tmp)->str:
    "The default model block-expanded (Llama-Pro, rate 0.1) into `tmp`, for the *_llama_pro train types."
    from fsdp_qlora.hub import resolve_model
    from fsdp_qlora.expand import expand_blocks
    return str(expand_blocks(resolve_model(), Path(tmp)/'expanded'))

def run_ours(world, b, T, steps, train_type='qlora', model=None):
    from fsdp_qlora.core import run_ranks
    from fsdp_qlora.train import read_metrics
    with tempfile.TemporaryDirectory(prefix='bench_') as out:
        lp = dict(llama_pro_path=expanded(out)) if train_type.endswith('_llama_pro') else {}
        kw = dict(output_dir=out, model_name=model, dataset='dummy', dataset_samples=2*world*b*steps + 8, batch_size=b, context_length=T,
                  max_steps=steps, eval_samples=1, train_type=train_type, **lp, **LORA, lora_target_modules='all',
                  use_gradient_checkpointing=True, precision='bf16', log_to='tqdm')
        t0 = time.perf_counter()
        rs = run_ranks(ours_rank, world, device='cpu', **kw)
        wall = time.perf_counter() - t0
        rows = [r for r in read_metrics(out) if 'tokens_per_s' in r]
    r0 = rs[0]
    return dict(rate(rows), world=world, threads=[r['threads'] for r in rs], wall_seconds=wall,
                train_seconds=r0['seconds'], steps=len(rows), tokens_per_step=b*(T-1)*world,
                peak_rss=[r['peak_rss'] for r in rs], load_seconds=max(r['load_seconds'] for r in rs),
                load_peak_rss=[r['load_peak_rss'] for r in rs], trainer_tokens_per_s=r0['tokens_per_s'],
                trainer_load=[r['trainer_load'] for r in rs], train_peak_rss=[r.get('train_peak_rss') for r in rs],
                load_read=[r['load_read'] for r in rs], quant_state=[r['quant_state'] for r in rs], final_loss=rows[-1]['loss'])

# ---------------------------------------------------------------- baseline: one fresh process per setting
def baseline(path, b, T, steps, prepare, threads):
    "The standard transformers + bitsandbytes + peft QLoRA loop on HF model dir `path` in this process; its measurements."
    import torch
    torch.set_num_threads(threads)
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    gc = dict(use_reentrant=False)  # like ours (--reentrant_checkpointing false)
    t0, r0 = time.perf_counter(), io_read()
    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type='nf4', bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_quant_storage=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=q, dtype=torch.bfloat16)
    if prepare: model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True, gradient_checkpointing_kwargs=gc)
    else: model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gc)
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=LORA['lora_rank'], lora_alpha=LORA['lora_alpha'], lora_dropout=LORA['lora_dropout'],
                                             target_modules=TARGETS, task_type='CAUSAL_LM'))
    load = dict(load_seconds=time.perf_counter()-t0, load_peak_rss=status_bytes('VmHWM'), load_read=io_read()-r0)
    states, seen = [], set()  # bitsandbytes keeps each layer's QuantState outside its parameters
    for mod in model.modules():
        qs = getattr(getattr(mod, 'weight', None), 'quant_state', None)
        while qs is not None:
            states += [t for t in (qs.absmax, qs.code, qs.offset) if isinstance(t, torch.Tensor) and id(t) not in seen and not seen.add(id(t))]
            qs = qs.state2
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4, weight_decay=0.1)
    g, vocab, rows = torch.Generator().manual_seed(42), model.config.vocab_size, []
    model.train()
    for s in range(steps):
        ids = torch.randint(0, vocab, (b, T), generator=g)
        labels = ids.clone(); labels[:, 0] = -100  # like the `dummy` dataset: all learned but the first
        ntok = int((labels[:, 1:] != -100).sum())
        t1 = time.perf_counter()
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        rows.append(dict(step=s+1, loss=loss.item(), tokens_per_s=ntok/(time.perf_counter()-t1)))
    dt = {n: str(p.dtype) for n, p in model.named_parameters() if 'embed_tokens' in n or n.endswith('norm.weight')}
    return dict(rate(rows), world=1, threads=[torch.get_num_threads()], train_seconds=time.perf_counter()-t0, steps=steps,
                tokens_per_step=ntok, peak_rss=[status_bytes('VmHWM')], load_seconds=load['load_seconds'],
                load_peak_rss=[load['load_peak_rss']], final_loss=rows[-1]['loss'], quant_state=[sum(t.nbytes for t in states)],
                load_read=[load['load_read']], mapped=sum(f.stat().st_size for f in Path(path).glob('*.safetensors')),
                dense_dtypes=sorted(set(dt.values())))

def run_baseline(b, T, steps, prepare, threads, model):
    args = json.dumps(dict(path=model, b=b, T=T, steps=steps, prepare=prepare, threads=threads))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, __file__, '--worker', args], capture_output=True, text=True)
    if p.returncode: raise RuntimeError(f'baseline worker failed:\n{p.stderr[-3000:]}')
    return dict(json.loads(p.stdout.strip().splitlines()[-1]), wall_seconds=time.perf_counter()-t0)

# ---------------------------------------------------------------- report
def versions():
    import torch, bitsandbytes, transformers, peft, fsdp_qlora
    return dict(python=platform.python_version(), torch=torch.__version__, bitsandbytes=bitsandbytes.__version__,
                transformers=transformers.__version__, peft=peft.__version__, fsdp_qlora=getattr(fsdp_qlora, '__version__', '?'))

def machine():
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
    mem = next(int(l.split()[1])*1024 for l in open('/proc/meminfo') if l.startswith('MemTotal'))
    return dict(cpu=cpu, cores=len(os.sched_getaffinity(0)), mem_bytes=mem, os=platform.platform(), load_avg_start=os.getloadavg())

def mib(n): return f'{n/2**20:.0f}'
def table(rows)->str:
    "The results as a markdown table."
    head = ['setting (batch x context)', 'system', 'world x threads', 'tokens/s', 'MFU', 'peak RSS per rank (MiB)', 'load s',
            'load peak per rank (MiB)', 'load read per rank (MiB)', 'quant state per rank (MiB)']
    out = ['| ' + ' | '.join(head) + ' |', '|' + '---|'*len(head)]
    for r in rows:
        if 'error' in r:
            out.append(f"| {r['batch']} x {r['context']} | {r['system']} | | failed: {r['error'][:60]} |" + ' |'*(len(head) - 4)); continue
        read = f"{mib(r['mapped'])} mapped" if 'mapped' in r else ' / '.join(map(mib, r['load_read']))
        out.append(f"| {r['batch']} x {r['context']} | {r['system']} | {r['world']} x {r['threads'][0]} | {r['tokens_per_s']:.1f} | "
                   f"{r.get('mfu', float('nan')):.1%} | {' / '.join(map(mib, r['peak_rss']))} | {r['load_seconds']:.1f} | "
                   f"{' / '.join(map(mib, r['load_peak_rss']))} | {read} | {' / '.join(f'{b/2**20:.2f}' for b in r['quant_state'])} |")
    return '\n'.join(out)

def plot(res, fn):
    "Tokens/s and peak RSS per rank of each system, per setting, as a PNG."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [r for r in res['rows'] if 'error' not in r]
    settings = list(dict.fromkeys(f"{r['batch']}x{r['context']}" for r in rows))
    systems = list(dict.fromkeys(r['system'] for r in rows))
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.6))
    w = 0.8/len(systems)
    for k, s in enumerate(systems):
        for ax, f in zip(axs, (lambda r: r['tokens_per_s'], lambda r: max(r['peak_rss'])/2**30)):
            v = {f"{r['batch']}x{r['context']}": f(r) for r in rows if r['system'] == s}
            ax.bar([i + k*w for i in range(len(settings))], [v.get(x, 0) for x in settings], w, label=s)
    for ax, t in zip(axs, ('learned tokens/s (higher is better)', 'peak RSS per rank, GiB (lower is better)')):
        ax.set_xticks([i + w*(len(systems)-1)/2 for i in range(len(settings))], settings); ax.set_title(t, fontsize=10)
        ax.set_xlabel('batch x context')
    fig.legend(*axs[0].get_legend_handles_labels(), loc='lower center', ncol=len(systems), fontsize=8, frameon=False)
    fig.suptitle(f"{res['model']}, {res['machine']['cores']} CPU cores, {res['date'][:10]}", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1)); fig.savefig(fn, dpi=110); plt.close(fig)

def measure(system, b, T, steps, threads, train_type='qlora', model=None):
    if system == 'ours-w2': return run_ours(2, b, T, steps, train_type, model)
    if system == 'ours-w1': return run_ours(1, b, T, steps, train_type, model)
    return run_baseline(b, T, steps, prepare=system == 'hf-qlora', threads=threads, model=model)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--quick', action='store_true', help='smoke run: one tiny setting, 2 steps')
    p.add_argument('--settings', help="batch x context per rank, e.g. '1x256,2x512' (default: the full or quick list)")
    p.add_argument('--steps', type=int, help='optimizer steps per measurement; the first is a warm-up and not averaged')
    p.add_argument('--systems', default=','.join(SYSTEMS), help=f"comma-separated subset of {','.join(SYSTEMS)}")
    p.add_argument('--out', default=str(HERE), help='directory for results.json, .md and .png (results-MODEL.* for other models)')
    p.add_argument('--train_type', default='qlora', help="our systems' --train_type (any of fsdp_qlora.loading.TRAIN_TYPES; the baseline is always QLoRA)")
    p.add_argument('--model', default='smollm2', help=f"{' or '.join(BENCH_MODELS)} (written by the bench on first use), or an HF model directory")
    p.add_argument('--worker', help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:  # a baseline measurement in this fresh process
        w = json.loads(a.worker)
        print(json.dumps(baseline(w['path'], w['b'], w['T'], w['steps'], w['prepare'], w['threads']))); return
    cfg = QUICK if a.quick else FULL
    settings = [tuple(map(int, s.split('x'))) for s in a.settings.split(',')] if a.settings else cfg['settings']
    steps, systems, threads = a.steps or cfg['steps'], a.systems.split(','), len(os.sched_getaffinity(0))
    path = model_path(a.model)
    name = 'HuggingFaceTB/SmolLM2-135M-Instruct' if a.model == 'smollm2' else 'Llama-shaped 1.1B, random weights' if a.model == 'synthetic-1.1b' else a.model
    mach = dict(machine(), bf16_matmul_peak=matmul_peak(threads))  # measured first, while nothing else of ours runs
    res = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'), machine=mach,
               versions=versions(), model=name, model_path=path, train_type=a.train_type, quick=a.quick, steps=steps,
               config=dict(LORA, lora_target_modules=TARGETS, gradient_checkpointing='non-reentrant', lr=2e-4,
                           optimizer='AdamW', precision='bf16 compute, fp32 adapters', data='dummy: uniform random token ids, all learned but the first'),
               rows=[])
    t0 = time.perf_counter()
    for b, T in settings:
        for s in systems:
            print(f'[{time.perf_counter()-t0:6.0f}s] {s} batch={b} context={T} ...', file=sys.stderr, flush=True)
            try:
                r = measure(s, b, T, steps, threads, a.train_type, path)
                fpt = flops_per_token(path, T)
                r.update(flops_per_token=fpt, mfu=r['tokens_per_s']*T/(T-1)*fpt/mach['bf16_matmul_peak'])  # learned -> processed tokens
            except Exception as e: r = dict(error=f'{type(e).__name__}: {e}')
            res['rows'].append(dict(batch=b, context=T, system=s, **r))
            print(table(res['rows'][-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    res['total_seconds'], res['machine']['load_avg_end'] = time.perf_counter()-t0, os.getloadavg()
    end_peak = matmul_peak(threads)  # a shared machine can be slow at either end: the peak is the better of the two
    if end_peak > mach['bf16_matmul_peak']:
        mach['bf16_matmul_peak_start'], mach['bf16_matmul_peak'] = mach['bf16_matmul_peak'], end_peak
        for r in res['rows']:
            if 'mfu' in r: r['mfu'] = r['tokens_per_s']*r['context']/(r['context']-1)*r['flops_per_token']/end_peak
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    stem = 'results' if a.model == 'smollm2' else f'results-{Path(a.model).name}'  # results-synthetic-1.1b.*
    (out/f'{stem}.json').write_text(json.dumps(res, indent=1))
    plot(res, out/f'{stem}.png')
    md = (f"{name} QLoRA (NF4 + LoRA r=64 on q,k,v,gate,up,down; ours as --train_type {a.train_type}), {res['date']}, {res['machine']['cpu']}, "
          f"{res['machine']['cores']} cores, torch {res['versions']['torch']}, bitsandbytes {res['versions']['bitsandbytes']}, "
          f"transformers {res['versions']['transformers']}, peft {res['versions']['peft']}; mean learned tokens/s over "
          f"steps 2-{steps} of {steps}; 1-minute load average {res['machine']['load_avg_start'][0]:.1f} at start, "
          f"{res['machine']['load_avg_end'][0]:.1f} at end"
          f"{' (--quick)' if a.quick else ''}. Whole run: {res['total_seconds']:.0f} s. MFU: model FLOPs of a trained token "
          f"(`fsdp_qlora.memory.train_flops`: forward, backward through the frozen weights, checkpoint recompute, adapters) "
          f"x tokens/s over the measured bf16 matmul peak of all {threads} cores, {mach['bf16_matmul_peak']/1e12:.2f} TFLOP/s.\n\n"
          + table(res['rows']) + '\n')
    (out/f'{stem}.md').write_text(md)
    print(md)

if __name__ == '__main__': main()
