// Which tensors get weight decay: exactly those of two or more dimensions (matrices and embeddings), never
// norms or biases — checked on the parameter table of every preset, and on what AdamW actually does to
// each tensor when the gradient is zero (a decayed weight shrinks by lr·wd·w, any other stays put).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { configFromJson, presets } from '../../src/config.js'
import { GPT } from '../../src/model/gpt.js'
import { ParamLayout } from '../../src/model/params.js'
import { AdamW } from '../../src/train/optimizer.js'

const withEverything = configFromJson({
  preset: 'tiny-gpt2', vocabSize: 96, contextLength: 16, layers: 2, channels: 16, heads: 4, kvHeads: 2,
  tiedEmbeddings: false, attnBias: true, mlpBias: true,
}, 'test')

test('the parameter table marks decay exactly on tensors of 2+ dimensions', () => {
  for (const [name, c] of [...Object.entries(presets), ['tiny, untied, biases', withEverything] as const]) {
    for (const s of new ParamLayout(c).specs) {
      assert.equal(s.decay, s.shape.length >= 2, `${name}: ${s.name} [${s.shape}] decay=${s.decay}`)
    }
  }
})

test('AdamW with zero gradients decays matrices and embeddings only', () => {
  const model = new GPT(new CpuBackend(), withEverything, { maxBatch: 1, maxSeqLen: 4 })
  model.setParams(new Float32Array(model.layout.total).fill(1))
  model.zeroGrad()
  const opt = new AdamW(model, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.5 })
  opt.update(0.1, { gradClip: 1, gradNorm: 0 })
  const p = model.getParams()
  const seen = { decayed: [] as string[], kept: [] as string[] }
  for (const s of model.layout.specs) {
    const v = p.subarray(s.offset, s.offset + s.size)
    const want = s.shape.length >= 2 ? 1 - 0.1 * 0.5 : 1
    for (let i = 0; i < v.length; i++) assert.ok(Math.abs(v[i]! - want) < 1e-6, `${s.name}[${i}] = ${v[i]}, expected ${want}`)
    ;(s.shape.length >= 2 ? seen.decayed : seen.kept).push(s.name)
  }
  assert.ok(seen.decayed.includes('wte') && seen.decayed.includes('lmHead') && seen.decayed.includes('wpe'))
  assert.ok(seen.kept.includes('h.0.attn.qkv.bias') && seen.kept.includes('lnf.weight') && seen.kept.includes('lnf.bias'))
})
