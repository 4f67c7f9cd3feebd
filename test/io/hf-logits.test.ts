// Logits of Hugging Face directories loaded into our GPT (CPU backend) against those PyTorch computed for the
// same weights (reference/hf_fixtures.py); then export -> import must give identical logits (f32 exactly, and
// bf16 exactly for weights that already are bf16) and logits within bf16 rounding for a bf16 export of f32 weights.

import { test } from 'node:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import assert from 'node:assert/strict'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import type { ModelConfig } from '../../src/config.js'
import { exportHf, loadHfDir, type HfDtype } from '../../src/io/hf.js'
import { readSafetensors, toFloat32, toInt32 } from '../helpers/safetensors.js'
import { GPT } from '../../src/model/gpt.js'
import { assertClose, maxAbs } from '../model/close.js'

const fixture = (name: string): string => resolve(process.cwd(), 'test/fixtures', name)

function logitsOf(config: ModelConfig, params: Float32Array, tokens: Int32Array, B: number, T: number): Float32Array {
  const model = new GPT(new CpuBackend(), config, { maxBatch: B, maxSeqLen: T })
  model.setParams(params)
  model.forward(tokens, null, B, T)
  return model.lastLogits()
}

function roundTrip(t: { after(fn: () => void): void }, config: ModelConfig, params: Float32Array, dtype: HfDtype): Float32Array {
  const dir = mkdtempSync(join(tmpdir(), 'llmts-hf-logits-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  exportHf(dir, config, params, { dtype, tokenizer: 'none' })
  return loadHfDir(dir).params
}

for (const name of ['hf-llama', 'hf-gpt2', 'hf-llama-bf16']) {
  test(`${name}: logits match PyTorch; export -> import keeps them`, t => {
    const expected = readSafetensors(join(fixture(name), 'expected_logits.safetensors'))
    const tokensEntry = expected.tensors.get('tokens')!
    const [B, T] = tokensEntry.shape as [number, number]
    const tokens = toInt32(expected, 'tokens')
    const ref = toFloat32(expected, 'logits') // (B,T,V) real vocabulary, float32 PyTorch
    const { config, params } = loadHfDir(fixture(name))
    const logits = logitsOf(config, params, tokens, B, T)
    // float32 both sides; summation order differs, so allow a few ulps of the logits' scale
    assertClose(`${name} logits`, logits, ref, { atol: 1e-6 * maxAbs(ref), rtol: 1e-5 })
    const dtype: HfDtype = name.endsWith('bf16') ? 'bf16' : 'f32'
    const again = logitsOf(config, roundTrip(t, config, params, dtype), tokens, B, T)
    assert.ok(again.every((v, i) => v === logits[i]), `${name}: logits changed after an ${dtype} round trip`)
  })
}

test('a bf16 export of f32 weights changes logits only by bf16 rounding', t => {
  const expected = readSafetensors(join(fixture('hf-llama'), 'expected_logits.safetensors'))
  const tokens = toInt32(expected, 'tokens')
  const { config, params } = loadHfDir(fixture('hf-llama'))
  const f32 = logitsOf(config, params, tokens, 2, 8)
  const bf16 = logitsOf(config, roundTrip(t, config, params, 'bf16'), tokens, 2, 8)
  // weights perturbed by <= 2^-8 relative: logits move by a few 2^-8 of their scale, never more
  assertClose('bf16 logits', bf16, f32, { atol: 4 * 2 ** -8 * maxAbs(f32), rtol: 0 })
  assert.ok(bf16.some((v, i) => v !== f32[i]), 'bf16 rounding must change something')
})
