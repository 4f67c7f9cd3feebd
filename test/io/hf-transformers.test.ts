// Importing what the real `transformers` writes: tiny LlamaForCausalLM (tied, rope_theta 500000 under
// transformers 5's rope_parameters; untied, rms_norm_eps 1e-6) and GPT2LMHeadModel checkpoints saved by
// save_pretrained (transformers 5.17.0, reference/hf_transformers_fixtures.py) load through resolveModel and
// give transformers' logits. A wrong theta, eps or tensor mapping moves them far beyond the tolerance.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { test } from 'node:test'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { GPT } from '../../src/model/gpt.js'
import { resolveModel } from '../../src/model/load.js'

const dir = resolve(process.cwd(), 'test/fixtures/hf-transformers')
const manifest = JSON.parse(readFileSync(resolve(dir, 'manifest.json'), 'utf8')) as {
  transformers: string; ids: number[]; models: Record<string, { logits: number[] }>
}

for (const [name, want] of Object.entries(manifest.models)) {
  test(`${name} saved by transformers ${manifest.transformers}: our logits equal transformers' (rtol 1e-5 of the max)`, () => {
    const { config, params } = resolveModel(resolve(dir, name))
    const T = manifest.ids.length
    const model = new GPT(new CpuBackend({ threads: 1 }), config, { maxBatch: 1, maxSeqLen: T })
    model.setParams(params!)
    model.forward(Int32Array.from(manifest.ids), null, 1, T)
    const ours = model.lastLogits()
    assert.equal(ours.length, want.logits.length)
    let worst = 0, at = 0, max = 0
    for (let i = 0; i < ours.length; i++) {
      const d = Math.abs(ours[i]! - want.logits[i]!)
      if (d > worst) { worst = d; at = i }
      max = Math.max(max, Math.abs(want.logits[i]!))
    }
    assert.ok(worst <= 1e-5 * max, `${name}: worst |diff| ${worst} at ${at} (ours ${ours[at]}, transformers ${want.logits[at]}), max ${max}`)
  })
}

test('the fixtures exercise what they claim: theta 500000, eps 1e-6, tied and untied', () => {
  const tied = resolveModel(resolve(dir, 'llama-tied')).config, untied = resolveModel(resolve(dir, 'llama-untied')).config
  assert.equal(tied.ropeTheta, 500_000)
  assert.equal(tied.tiedEmbeddings, true)
  assert.equal(untied.tiedEmbeddings, false)
  assert.equal(untied.normEps, 1e-6)
})
