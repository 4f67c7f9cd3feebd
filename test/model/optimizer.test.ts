// AdamW (src/train/optimizer.ts) against a float64 transcription of torch.optim.AdamW and clip_grad_norm_,
// with weight decay on >= 2-D tensors only (the PyTorch reference's rule, not the layout's decay flag),
// clipping off, active and inactive; and an exact resume through getState/setState.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { GPT } from '../../src/model/gpt.js'
import { AdamW, type AdamWConfig } from '../../src/train/optimizer.js'
import { assertClose } from './close.js'
import { loadGolden, type Golden } from './golden.js'

const cfg: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }

function setup(g: Golden): { model: GPT; opt: AdamW } {
  const model = new GPT(new CpuBackend(), g.config, { maxBatch: g.B, maxSeqLen: g.T })
  model.setParams(g.params)
  return { model, opt: new AdamW(model, cfg) }
}

function computeGrads(model: GPT, g: Golden, step: number): void {
  const BT = g.B * g.T, at = step * BT
  model.zeroGrad()
  model.forward(g.trainTokens.subarray(at, at + BT), g.trainTargets.subarray(at, at + BT), g.B, g.T)
  model.backward(1)
}

test('AdamW equals the PyTorch update step by step (clip off, active, inactive)', () => {
  const g = loadGolden('gpt2')   // has every kind of tensor: embeddings, matrices, norms, biases
  const { model, opt } = setup(g)
  const runs = [{ lr: 1e-3, clip: 0 }, { lr: 2e-3, clip: 0.5 }, { lr: 5e-4, clip: 1e9 }]
  for (const [s, { lr, clip }] of runs.entries()) {
    computeGrads(model, g, s)
    // the mirror starts each step from the stored float32 state, so only this step's rounding differs
    const grads = model.getGrads(), p = Float64Array.from(model.getParams()), before = opt.getState()
    const m = Float64Array.from(before.m), v = Float64Array.from(before.v)
    const norm = Math.sqrt(grads.reduce((acc, x) => acc + x * x, 0))
    assertClose(`grad norm, step ${s + 1}`, [opt.gradNorm()], [norm], { atol: 0, rtol: 1e-6 })
    const scale = clip > 0 ? Math.min(1, clip / (norm + 1e-6)) : 1   // clip_grad_norm_: clip_coef clamped at 1
    if (s === 1) assert.ok(scale < 1, 'the second step clips')
    opt.update(lr, { gradClip: clip, gradNorm: norm })
    const t = s + 1
    for (const spec of model.layout.specs) {
      const wd = spec.shape.length >= 2 ? cfg.weightDecay : 0
      for (let i = spec.offset; i < spec.offset + spec.size; i++) {
        const gi = grads[i]! * scale
        m[i] = cfg.beta1 * m[i]! + (1 - cfg.beta1) * gi
        v[i] = cfg.beta2 * v[i]! + (1 - cfg.beta2) * gi * gi
        const mhat = m[i]! / (1 - cfg.beta1 ** t), vhat = v[i]! / (1 - cfg.beta2 ** t)
        p[i] = p[i]! * (1 - lr * wd) - lr * mhat / (Math.sqrt(vhat) + cfg.eps)
      }
    }
    // float32 storage: one rounding (6e-8 relative) per value; atol covers values near 0
    assertClose(`params after step ${t}`, model.getParams(), p, { atol: 1e-9, rtol: 1e-6 })
    const st = opt.getState()
    assertClose(`m after step ${t}`, st.m, m, { atol: 1e-12, rtol: 1e-6 })
    assertClose(`v after step ${t}`, st.v, v, { atol: 1e-18, rtol: 1e-6 })
    assert.equal(st.step, t)
  }
})

test('getState/setState resumes exactly', () => {
  const g = loadGolden('variant')
  const a = setup(g), b = setup(g)
  for (let s = 0; s < 2; s++) {
    computeGrads(a.model, g, s)
    a.opt.update(1e-2, { gradClip: 1, gradNorm: a.opt.gradNorm() })
  }
  b.model.setParams(a.model.getParams())
  b.opt.setState(a.opt.getState())
  for (const { model, opt } of [a, b]) {
    computeGrads(model, g, 2)
    opt.update(1e-2, { gradClip: 1, gradNorm: opt.gradNorm() })
  }
  assert.deepEqual(b.model.getParams(), a.model.getParams())
  assert.equal(b.opt.step, 3)
  assert.throws(() => b.opt.setState({ m: new Float32Array(3), v: new Float32Array(3), step: 1 }), /checkpoint of another model/)
})
