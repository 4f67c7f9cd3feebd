#!/usr/bin/env python3
"""Default-run loss spikes, ours vs PyTorch: the SAME initial weights and the SAME batches for N optimizer steps.

Node (the build in --dist) initializes the model with the default run's seed, draws the default run's batches
(moby-dick, B=4, T=64, 2 micro-batches per step), trains N steps with our GPT + AdamW on the CPU backend and
writes weights, batches and its per-step losses/grad norms to a safetensors file; then torch_reference.py's
GPT trains from those weights on those batches with torch.optim.AdamW + clip_grad_norm_ and the two logs are
compared step by step. Agreement including the spikes means the spikes are the math, not our implementation.
Run: `npx tsc && /usr/bin/python3 reference/spike_check.py [--steps 30 --lr 2e-3 --sched 135]` (~2.5 min on 2 cores)
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as R  # noqa: E402  (sets float64 as the default dtype)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Our side, in Node: the default run's model, seed, loader and optimizer settings (src/train/default-run.ts).
NODE_EXPORT = r"""
const [dist, out, model, lr, sched, steps] = process.argv.slice(2)
const imp = p => import(`${process.cwd()}/${dist}/src/${p}`)
const { CpuBackend } = await imp('backend/cpu/index.js'), { GPT } = await imp('model/gpt.js')
const { AdamW } = await imp('train/optimizer.js'), { learningRate } = await imp('train/schedule.js')
const { DataLoader } = await imp('data/loader.js'), { presetConfig } = await imp('config.js')
const { ensureCorpus } = await imp('data/sources/corpora.js'), { writeSafetensorsTo } = await imp('io/safetensors.js')
const { writeFilesAtomic } = await imp('util/atomic.js')
const { defaultRun: d } = await imp('train/default-run.js')
const B = d.batchSize, T = d.seqLen, accum = d.gradAccum, S = +steps, BT = B * T
const cfg = presetConfig(model), shards = await ensureCorpus(d.corpus)
const gpt = new GPT(new CpuBackend(), cfg, { maxBatch: B, maxSeqLen: T })
gpt.initWeights(d.seed)
const params = gpt.getParams()
const opt = new AdamW(gpt, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: d.weightDecay })
const sch = { lr: +lr, warmupSteps: Math.max(1, Math.round(d.warmupFrac * +sched)), steps: +sched, minLrFrac: d.minLrFrac }
const loader = new DataLoader({ files: shards.train, B, T, vocabSize: cfg.vocabSize })
const xs = new Int32Array(S * accum * BT), ys = new Int32Array(S * accum * BT)
for (let i = 0; i < S * accum; i++) { const b = loader.next(); xs.set(b.inputs, i * BT); ys.set(b.targets, i * BT) }
const losses = [], norms = []
for (let s = 0; s < S; s++) {
  gpt.zeroGrad()
  let loss = 0
  for (let k = 0; k < accum; k++) {
    const at = (s * accum + k) * BT
    loss += gpt.forward(xs.subarray(at, at + BT), ys.subarray(at, at + BT), B, T) / accum
    gpt.backward(1 / accum)
  }
  const norm = opt.gradNorm()
  opt.update(learningRate(sch, s), { gradClip: d.gradClip, gradNorm: norm })
  losses.push(loss); norms.push(norm)
  process.stderr.write(`ours step ${s + 1}: loss ${loss.toFixed(4)} norm ${norm.toFixed(3)}\n`)
}
writeFilesAtomic([{ path: out, write: w => writeSafetensorsTo(w, [
  { name: 'params', dtype: 'F32', shape: [params.length], data: params },
  { name: 'tokens', dtype: 'I32', shape: [S, accum, B, T], data: xs },
  { name: 'targets', dtype: 'I32', shape: [S, accum, B, T], data: ys },
], { config: JSON.stringify(cfg), layout: JSON.stringify(gpt.layout.specs.map(s => [s.name, s.shape, s.offset])),
     train: JSON.stringify({ ...sch, accum, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: d.weightDecay,
                             gradClip: d.gradClip, losses, norms }) }) }])
process.exit(0)
"""


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    meta = head.pop('__metadata__', {})
    types = {'F32': np.float32, 'I32': np.int32}
    return {k: np.frombuffer(data[v['data_offsets'][0]:v['data_offsets'][1]], dtype=types[v['dtype']]).reshape(v['shape'])
            for k, v in head.items()}, meta


def param_slots(model):
    """Our layout's name -> the torch parameters stacked by rows in it (the inverse of R.our_layout)."""
    cfg, slots = model.cfg, {'wte': [model.wte.weight]}
    if model.wpe is not None:
        slots['wpe'] = [model.wpe.weight]

    def norm(prefix, n):
        slots[prefix + '.weight'] = [n.weight]
        if n.bias is not None:
            slots[prefix + '.bias'] = [n.bias]

    for l, b in enumerate(model.blocks):
        p, a, m = f'h.{l}.', b.attn, b.mlp
        norm(p + 'ln1', b.ln1)
        slots[p + 'attn.qkv.weight'] = [a.q.weight, a.k.weight, a.v.weight]
        if cfg['attnBias']:
            slots[p + 'attn.qkv.bias'] = [a.q.bias, a.k.bias, a.v.bias]
        slots[p + 'attn.proj.weight'] = [a.o.weight]
        if cfg['attnBias']:
            slots[p + 'attn.proj.bias'] = [a.o.bias]
        norm(p + 'ln2', b.ln2)
        fc = [m.gate, m.up] if m.swiglu else [m.fc]
        slots[p + 'mlp.fc.weight'] = [x.weight for x in fc]
        if cfg['mlpBias']:
            slots[p + 'mlp.fc.bias'] = [x.bias for x in fc]
        slots[p + 'mlp.proj.weight'] = [m.down.weight]
        if cfg['mlpBias']:
            slots[p + 'mlp.proj.bias'] = [m.down.bias]
    norm('lnf', model.lnf)
    if model.lm_head is not None:
        slots['lmHead'] = [model.lm_head.weight]
    return slots


def set_flat(model, layout, flat):
    slots = param_slots(model)
    with torch.no_grad():
        for name, shape, off in layout:
            v = torch.from_numpy(flat[off:off + int(np.prod(shape))].copy()).reshape(shape)
            row = 0
            for p in slots[name]:
                p.copy_(v[row:row + p.shape[0]].to(p.dtype))
                row += p.shape[0]


def torch_trajectory(model, xs, ys, tc):
    """Like R.train_trajectory, with the schedule's warmup/steps from tc and a line per step."""
    params = list(model.parameters())
    groups = [{'params': [p for p in params if p.dim() >= 2], 'weight_decay': tc['weightDecay']},
              {'params': [p for p in params if p.dim() < 2], 'weight_decay': 0.0}]
    opt = torch.optim.AdamW(groups, lr=tc['lr'], betas=(tc['beta1'], tc['beta2']), eps=tc['eps'])
    losses, norms = [], []
    for s in range(xs.shape[0]):
        lr = R.schedule(s, tc['lr'], tc['minLrFrac'] * tc['lr'], tc['warmupSteps'], tc['steps'])
        for g in opt.param_groups:
            g['lr'] = lr
        opt.zero_grad()
        total = 0.0
        for k in range(tc['accum']):
            _, loss, _ = model(xs[s, k], ys[s, k])
            (loss / tc['accum']).backward()
            total += loss.item() / tc['accum']
        norms.append(torch.nn.utils.clip_grad_norm_(params, tc['gradClip']).item())
        opt.step()
        losses.append(total)
        print(f'torch step {s + 1}: loss {total:.4f} norm {norms[-1]:.3f}', file=sys.stderr, flush=True)
    return losses, norms


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dist', default='dist', help='our build (tsc --outDir), relative to the repo root')
    ap.add_argument('--model', default='tiny-gpt2')
    ap.add_argument('--lr', type=float, default=2e-3, help='peak learning rate (default run: 2e-3)')
    ap.add_argument('--sched', type=int, default=135, help="the run's total steps, for the schedule (default run: calibrated, 135 on 2 cores)")
    ap.add_argument('--steps', type=int, default=30, help='steps to compare')
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dtype = torch.float64   # torch's float32 CPU path drifts ~1e-4 from float64 per step (measured), ours ~1e-7
    torch.set_default_dtype(dtype)
    with tempfile.TemporaryDirectory() as tmp:
        path, script = os.path.join(tmp, 'spike.safetensors'), os.path.join(tmp, 'export.mjs')
        with open(script, 'w') as f:   # a file, not `node -e`: the CPU backend's worker threads need a script
            f.write(NODE_EXPORT)
        subprocess.run(['node', script, a.dist, path, a.model, str(a.lr), str(a.sched), str(a.steps)], cwd=ROOT, check=True)
        t, meta = read_safetensors(path)
    cfg, layout, tc = json.loads(meta['config']), json.loads(meta['layout']), json.loads(meta['train'])
    model = R.GPT(cfg).to(dtype)
    set_flat(model, layout, t['params'])
    xs, ys = (torch.from_numpy(t[k].astype(np.int64)) for k in ('tokens', 'targets'))
    losses, norms = torch_trajectory(model, xs, ys, tc)
    print(f'{a.model}, lr {a.lr:g}, schedule of {a.sched} steps (warmup {tc["warmupSteps"]}), torch float64')
    print(' step       lr   loss ours  loss torch   norm ours  norm torch')
    for s, (lo, lt, no, nt) in enumerate(zip(tc['losses'], losses, tc['norms'], norms)):
        lr = R.schedule(s, tc['lr'], tc['minLrFrac'] * tc['lr'], tc['warmupSteps'], tc['steps'])
        flag = '  <- spike' if lt > 10.9 or nt > 8 else ''
        print(f'{s + 1:5d} {lr:8.2e} {lo:11.5f} {lt:11.5f} {no:11.4f} {nt:11.4f}{flag}')
    dl = max(abs(x - y) for x, y in zip(tc['losses'], losses))
    dn = max(abs(x - y) / y for x, y in zip(tc['norms'], norms))
    print(f'max |loss ours - torch| = {dl:.2e}, max relative grad-norm difference = {dn:.2e}')
    # ours (float32) vs float64 over 30 steps, spikes included: 3e-6 (loss), 1e-5 (norm) measured; a bug moves them by >1e-2
    if dl > 1e-3 or dn > 1e-2:
        raise SystemExit('spike_check: ours and PyTorch DISAGREE')
    print('spike_check: ours and PyTorch agree (spikes included)')


if __name__ == '__main__':
    main()
