#!/usr/bin/env python
"""GPU acceptance check: does fsdp_qlora train correctly on this machine's accelerators?

    python tools/gpu_check.py OUTDIR [--device cuda|cpu] [--model_name NAME] [--worlds 1,2]

On one GPU it runs world 1; on two or more, world 1 and world 2 (NCCL). With `--device cpu` it runs world 2
on gloo, which is how CI runs it, so the script cannot rot while no GPU is at hand. Each check is recorded on
its own (one failure does not hide the next) in OUTDIR/gpu_check.json, and a pass/fail table is printed; the
exit status is 1 if any check failed.

Checks, per world size (on several ranks a check that raises fails its whole launch, named in the table: a rank
that went on alone would wait forever in its peers' next collective):
  collectives  CPU and device tensors all-reduced through the one process group (gloo + NCCL on GPUs)
  train        held-out loss before and after 4 steps: finite, and lower after
  memory       each rank's peak (CUDA: max_memory_reserved/allocated; CPU: RSS) beside the planner's prediction
  resume       2 steps, a checkpoint, a resumed run to step 4: the adapter equals the uninterrupted run's, bit for bit
  peft reload  the saved adapter on transformers' 4-bit model, through peft: the run's held-out loss
  placement    where every parameter, buffer and quant-state tensor lives, without and with CPU offload (pinned)
  bytes        every gathered 4-bit layer's codes and quant state equal bitsandbytes' own Linear4bit on this device
  offload step one fp16 step with CPU offload, loss scaling and gradient clipping: finite loss and norm
  cli          `python -m fsdp_qlora.cli` end to end: exit 0, the summary line, the adapter written
"""
import argparse, json, math, os, platform, subprocess, sys, time, traceback
from pathlib import Path

def record(name, f, *args):
    "Run check `f`; its record: name, ok, detail, seconds (an exception is a failure with its last line)."
    t0 = time.time()
    try: ok, detail = f(*args)
    except Exception as e:
        from fsdp_qlora.core import world_size
        if world_size() > 1: raise  # a rank that went on alone would wait forever in its peers' next collective: fail the launch
        ok, detail = False, f'{type(e).__name__}: {str(e).strip().splitlines()[-1][:300] if str(e).strip() else ""}'
        traceback.print_exc()
    return dict(check=name, ok=bool(ok), detail=detail, seconds=round(time.time()-t0, 1))

def flags(cfg, out, **kw):
    "The `train` flags of the check's runs: short, real (the default dataset), with dropout (so resume tests the RNG)."
    return dict(model_name=cfg['model'], output_dir=str(out), device=cfg['device'], world_size=-1, batch_size=2,
                context_length=128, lora_rank=8, lr=1e-3, max_steps=4, eval_steps=4, eval_samples=8,
                dataset_samples=64, log_to='stdout', seed=7, **kw)

# ---- checks that run on every rank of a launch ----

def check_collectives(cfg):
    import torch, torch.distributed as dist
    from fsdp_qlora.core import all_sum, local_device, world_size
    w = world_size()
    t = torch.ones(4, device=local_device(cfg['device'])); dist.all_reduce(t)
    objs = [None]*w; dist.all_gather_object(objs, dist.get_rank())
    got = dict(cpu=all_sum(1), device=t[0].item(), objects=objs)
    return got == dict(cpu=float(w), device=float(w), objects=list(range(w))), f"backend {dist.get_backend()}, {got}"

def check_train(cfg, res, rows):
    ev = [r['eval_loss'] for r in rows if 'eval_loss' in r]
    losses = [r['loss'] for r in rows if 'loss' in r]
    ok = len(ev) == 2 and len(losses) == 4 and all(map(math.isfinite, ev + losses)) and ev[1] < ev[0]
    return ok, f"held-out loss {ev[0]:.4f} -> {ev[-1]:.4f}; step losses {', '.join(f'{l:.3f}' for l in losses)}"

def check_memory(cfg, res, kw):
    from fsdp_qlora.memory import plan_from_args
    from fsdp_qlora.train import TrainArgs
    from fsdp_qlora.core import fmt_bytes
    p = plan_from_args(TrainArgs(**{**kw, 'world_size': cfg['world']}))
    if cfg['device'] == 'cuda':  # torch's meters do not see the CUDA context (in the planner's runtime term), but they do see cuBLAS's workspace
        pred = p.peak - p.bytes()['runtime'] + 64*2**20
        got = max(res['cuda_reserved_per_rank'])
        alloc = ', '.join(fmt_bytes(b) for b in res['cuda_peak_per_rank'])
        what = f"max reserved {fmt_bytes(got)} (allocated {alloc})"
    else:
        pred, got = p.peak, max(res['peak_rss_per_rank'])
        what = f"peak RSS {', '.join(fmt_bytes(b) for b in res['peak_rss_per_rank'])}"
    return got <= 1.15*pred, f"{what}; planner {fmt_bytes(pred)} per rank ({got/pred:.2f}x); passes unless >1.15x"

def check_resume(a, b):
    from safetensors.torch import load_file
    wa, wb = load_file(Path(a)/'adapter_model.safetensors'), load_file(Path(b)/'adapter_model.safetensors')
    diff = max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa) if set(wa) == set(wb) else float('nan')
    same = set(wa) == set(wb) and all(__import__('torch').equal(wa[k], wb[k]) for k in wa)
    return same, f"{len(wa)} adapter tensors, {'bit-identical' if same else f'max abs difference {diff:.3g}'}"

def check_peft(cfg, kw, run_loss):
    import torch
    from fsdp_qlora.core import local_device
    from fsdp_qlora.export import peft_model
    from fsdp_qlora.train import evaluate, setup_data
    from fsdp_qlora.data import make_dataloader
    from fsdp_qlora.wrap import train_context
    from transformers import AutoTokenizer
    dev = local_device(cfg['device'])
    pm = peft_model(cfg['model'], kw['output_dir'], quantized=True, device=dev)
    tok = AutoTokenizer.from_pretrained(cfg['model'])
    _, ev = setup_data(tok, context_length=kw['context_length'], dataset_samples=kw['dataset_samples'], seed=kw['seed'])
    dl = make_dataloader(ev[:kw['eval_samples']], tok, kw['batch_size'], kw['context_length'], shuffle=False)
    loss = evaluate(pm, dl, cfg['device'], lambda: train_context('bf16', device=dev))
    rel = abs(loss - run_loss)/run_loss
    return rel < 1e-3, f"peft {loss!r} vs the run's {run_loss!r} ({'equal' if loss == run_loss else f'relative difference {rel:.2g}'})"

def train_checks(cfg):
    "Rank entry of the first launch: collectives, then real training runs and what they must show."
    import torch
    from fsdp_qlora.core import is_main
    torch.use_deterministic_algorithms(True, warn_only=True)  # exact resume needs the same arithmetic twice (cuDNN/flash backward otherwise may not)
    from fsdp_qlora.train import train, read_metrics, per_rank
    out, recs = Path(cfg['out'])/f"w{cfg['world']}", []
    recs.append(record('collectives', check_collectives, cfg))
    ka, ra = flags(cfg, out/'A', save_steps=2), {}
    def run_a():
        ra.update(train(**ka))
        return check_train(cfg, ra, per_rank(read_metrics(ka['output_dir']) if is_main() else [])[0])
    recs.append(record('train', run_a))
    if ra: recs.append(record('memory', check_memory, cfg, ra, ka))
    kb = flags(cfg, out/'B', save_steps=2)
    def resume():
        train(**{**kb, 'max_steps': 2}); train(**{**kb, 'resume_from': 'latest'})
        return check_resume(ka['output_dir'], kb['output_dir'])
    recs.append(record('resume', resume))
    if ra: recs.append(record('peft reload', check_peft, cfg, ka, ra['eval_loss']))
    return recs

def check_placement(cfg, m, offload):
    from fsdp_qlora.wrap import placement
    dt = cfg['device']
    want = {f"param {'cpu' if offload else dt}" + (' pinned' if offload and dt == 'cuda' else ''), f'buffer {dt}'}  # scales are parameters
    got = placement(m)
    return set(got) == want, f"{'offload' if offload else 'no offload'}: {got}"

def check_bytes(cfg, m):
    "Gather every 4-bit layer's codes and scales and compare them with bitsandbytes' Linear4bit quantized on this device."
    import torch
    from bitsandbytes.nn import Linear4bit, Params4bit
    from fsdp_qlora.core import local_device, is_main
    from fsdp_qlora.loading import SafeReader, ckpt_key
    from fsdp_qlora.quant import backend_of
    dev, rd, bad, n = local_device(cfg['device']), SafeReader(cfg['model']), [], 0
    for name, mod in m.named_modules():
        if not (isinstance(mod, Linear4bit) and backend_of(mod)): continue
        whole = dict(weight=mod.weight.full_tensor(), absmax=mod.absmax.full_tensor())  # every rank takes part in the gathers
        if not is_main(): continue
        codes, st = mod.state(whole['weight'], whole['absmax'])
        ref = Linear4bit(mod.in_features, mod.out_features, bias=False, compute_dtype=torch.bfloat16, quant_storage=mod.quant_storage, device='meta')
        ref.weight = Params4bit(rd[ckpt_key(name + '.weight')].to(dev), requires_grad=False, quant_storage=mod.quant_storage, module=ref,
                                **mod.quant_args).to(dev)  # bitsandbytes quantizes when the weight moves to a device
        rs = ref.weight.quant_state
        same = torch.equal(codes.view(-1), ref.weight.data.view(torch.uint8).view(-1)) and all(
            torch.equal(a, b) for a, b in [(st.absmax, rs.absmax), (st.offset, rs.offset), (st.state2.absmax, rs.state2.absmax), (st.code, rs.code)])
        n += 1
        if not same: bad.append(name)
    if not is_main(): return True, 'compared on rank 0'
    return n > 0 and not bad, f"{n} 4-bit layers compared (codes and quant state), {len(bad)} differ" + (f" (first: {bad[0]})" if bad else '')

def check_offload_step(cfg, m, steps=8):
    "fp16 steps with CPU offload, loss scaling and clipping: the scaler backs off from overflows until a step is finite."
    import torch
    from fsdp_qlora.train import train_step
    from fsdp_qlora.wrap import train_context, grad_scaler
    opt, sc = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4), grad_scaler('fp16_autocast', cfg['device'])
    ids = torch.arange(2*64).reshape(2, 64) % 1000 + 100
    batch, s0, norms, losses = dict(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids), sc.get_scale(), [], []
    for _ in range(steps):
        r = train_step(m, opt, [batch], lambda: train_context('fp16_autocast', device=cfg['device']), sc, grad_norm=0.3, device=cfg['device'])
        norms.append(r['grad_norm']); losses.append(r['loss'])
        if math.isfinite(r['grad_norm']): break
    ok = all(map(math.isfinite, losses)) and math.isfinite(norms[-1])
    return ok, (f"fp16_autocast + CPU offload + clipping: {len(norms)} steps, loss {losses[-1]:.4f}, gradient norms "
                f"{', '.join(f'{n:.3g}' for n in norms)}; loss scale {s0:g} -> {sc.get_scale():g}")

def model_checks(cfg):
    "Rank entry of the second launch: load the model sharded, without and with CPU offload, and inspect it."
    from fsdp_qlora.train import setup_model
    wrap = lambda off: dict(sharding_strategy='full_shard', use_gradient_checkpointing=True, reentrant_checkpointing=False, use_cpu_offload=off)
    recs = []
    try: m = setup_model(cfg['model'], 'qlora', 'bf16', dict(lora_rank=8), wrap(False), device=cfg['device'])
    except Exception as e: return [record('placement', lambda: (_ for _ in ()).throw(e))]
    recs.append(record('placement', check_placement, cfg, m, False))
    recs.append(record('bytes', check_bytes, cfg, m))
    del m
    try:
        m = setup_model(cfg['model'], 'qlora', 'fp16_autocast', dict(lora_rank=8), wrap(True), device=cfg['device'])
        recs.append(record('placement (offload)', check_placement, cfg, m, True))
        recs.append(record('offload step', check_offload_step, cfg, m))
    except Exception as e: recs.append(record('placement (offload)', lambda: (_ for _ in ()).throw(e)))
    return recs

# ---- the launcher side ----

def check_cli(cfg):
    out = Path(cfg['out'])/f"w{cfg['world']}"/'cli'
    cmd = [sys.executable, '-m', 'fsdp_qlora.cli', '--model_name', cfg['model'], '--world_size', str(cfg['world']),
           '--device', cfg['device'], '--max_steps', '2', '--context_length', '128', '--lora_rank', '8',
           '--eval_samples', '8', '--dataset_samples', '64', '--log_to', 'stdout', '--output_dir', str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith('SLURM_') and k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)  # the command spawns its own ranks, whatever launched us
    last = (p.stdout.strip().splitlines() or [''])[-1]
    ok = p.returncode == 0 and last.startswith('done: 2 steps') and (out/'adapter_model.safetensors').exists()
    return ok, (last if p.returncode == 0 else f"exit {p.returncode}: {(p.stderr.strip().splitlines() or [''])[-1]}")

def launch(fn, cfg, name):
    from fsdp_qlora.core import run_ranks
    try: return run_ranks(fn, cfg['world'], cfg, device=cfg['device'], timeout=900)[0]
    except Exception as e: return [record(name, lambda: (_ for _ in ()).throw(e))]

def environment(dev):
    import torch, bitsandbytes, transformers, peft
    env = dict(python=platform.python_version(), torch=torch.__version__, bitsandbytes=bitsandbytes.__version__,
               transformers=transformers.__version__, peft=peft.__version__, device=dev)
    if dev == 'cuda':
        env.update(gpus=[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
                   cuda=torch.version.cuda, nccl='.'.join(map(str, torch.cuda.nccl.version())))
    else: env.update(cpu_cores=len(os.sched_getaffinity(0)))
    return env

def table(results)->str:
    rows = ['| world | check | result | detail | s |', '|---|---|---|---|---|']
    for w, recs in results.items():
        rows += [f"| {w} | {r['check']} | {'PASS' if r['ok'] else 'FAIL'} | {r['detail']} | {r['seconds']} |" for r in recs]
    return '\n'.join(rows)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('outdir', help='where the runs, gpu_check.json and gpu_check.md go')
    p.add_argument('--device', default=None, help="'cuda' or 'cpu' (default: cuda if available)")
    p.add_argument('--model_name', default=None, help='HF model directory or name (default: the default SmolLM2-135M-Instruct)')
    p.add_argument('--worlds', default=None, help="world sizes to check, e.g. '1,2' (default: 1 and, with 2+ GPUs, 2; on CPU 2)")
    a = p.parse_args(argv)
    import torch
    from fsdp_qlora.core import device_type
    from fsdp_qlora.hub import resolve_model, DEFAULT_MODEL
    dev = device_type(a.device)
    os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')  # deterministic cuBLAS, inherited by the ranks
    worlds = [int(w) for w in a.worlds.split(',')] if a.worlds else ([1, 2] if torch.cuda.device_count() > 1 else [1]) if dev == 'cuda' else [2]
    out = Path(a.outdir).resolve(); out.mkdir(parents=True, exist_ok=True)
    model, t0, results = str(resolve_model(a.model_name or DEFAULT_MODEL)), time.time(), {}
    for w in worlds:
        cfg = dict(device=dev, model=model, out=str(out), world=w)
        print(f"[gpu_check] world {w} on {dev}: training runs", flush=True)
        results[w] = launch(train_checks, cfg, 'train launch')
        print(f"[gpu_check] world {w}: the sharded model", flush=True)
        results[w] += launch(model_checks, cfg, 'model launch')
        print(f"[gpu_check] world {w}: the command line", flush=True)
        results[w].append(record('cli', check_cli, cfg))
    failed = sum(not r['ok'] for recs in results.values() for r in recs)
    report = dict(environment=environment(dev), model=model, seconds=round(time.time()-t0), failed=failed,
                  results={str(w): recs for w, recs in results.items()})
    (out/'gpu_check.json').write_text(json.dumps(report, indent=1))
    md = table(results)
    (out/'gpu_check.md').write_text(md + '\n')
    print(json.dumps(report['environment']))
    print(md)
    n = sum(len(r) for r in results.values())
    print(f"gpu_check: {n - failed} passed, {failed} failed in {report['seconds']} s; report in {out/'gpu_check.json'}")
    return 1 if failed else 0

if __name__ == '__main__': sys.exit(main())
