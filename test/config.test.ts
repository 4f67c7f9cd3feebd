// Presets and the parameter table against published figures: GPT-2 124M has 124,439,808 parameters and
// 350M has 354,823,168 (Hugging Face's counts, tied embeddings); the report's variant-124m is ≈116.5M.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { configFromJson, presetConfig, presets, swigluHidden, validateConfig, type ModelConfig } from '../src/config.js'
import { ParamLayout, hfFamily, initParams } from '../src/model/params.js'
import { InputError } from '../src/util/errors.js'

test('GPT-2 presets have the published parameter counts', () => {
  assert.equal(new ParamLayout(presetConfig('gpt2-124m')).countReal(), 124_439_808)
  assert.equal(new ParamLayout(presetConfig('gpt2-350m')).countReal(), 354_823_168)
})

test('variant-124m is about 116.5M parameters, with the report\'s SwiGLU width', () => {
  const c = presetConfig('variant-124m')
  assert.equal(swigluHidden(768), 2048)
  assert.equal(swigluHidden(1024), 2816)
  const n = new ParamLayout(c).countReal()
  assert.ok(Math.abs(n - 116.5e6) < 0.1e6, `variant-124m has ${n} parameters`)
  assert.equal(c.kvHeads, 6)
})

test('tiny presets match the issue: 4 layers, 256 wide, 8 heads; variant 4 K/V heads, SwiGLU 768', () => {
  const t = presetConfig('tiny-variant')
  assert.deepEqual([t.layers, t.channels, t.heads, t.kvHeads, t.mlpHidden, t.paddedVocabSize], [4, 256, 8, 4, 768, 50_304])
  const g = presetConfig('tiny-gpt2')
  assert.deepEqual([g.layers, g.channels, g.heads, g.kvHeads, g.mlpHidden], [4, 256, 8, 8, 1024])
})

test('every preset validates and maps to a Hugging Face family', () => {
  for (const [name, c] of Object.entries(presets)) {
    validateConfig({ ...c }, name)
    assert.notEqual(hfFamily(c).family, null, name)
  }
})

test('bad configs are refused with the reason', () => {
  const c = presetConfig('tiny-variant')
  assert.throws(() => validateConfig({ ...c, heads: 7 }), (e: Error) => e instanceof InputError && /heads \(7\) must divide channels/.test(e.message))
  assert.throws(() => validateConfig({ ...c, kvHeads: 3 }), /kvHeads \(3\) must divide heads/)
  assert.throws(() => configFromJson({ preset: 'nope' }, 'x.json'), /unknown model preset "nope"/)
  assert.throws(() => configFromJson({ widht: 3 }, 'x.json'), /unknown key "widht"/)
  assert.throws(() => configFromJson([], 'x.json'), /must be a JSON object/)
  const small = configFromJson({ preset: 'tiny-gpt2', vocabSize: 96 }, 'x.json')
  assert.equal(small.paddedVocabSize, 128)
})

test('RoPE needs an even head size; at most 1024 layers', () => {
  const v = presetConfig('tiny-variant'), g = presetConfig('tiny-gpt2')
  // 264 / 8 = 33: odd, so RoPE's (even, odd) pairs do not fit; learned positions do not care
  assert.throws(() => validateConfig({ ...v, channels: 264 }), (e: Error) => e instanceof InputError && /RoPE needs an even head size, got 33/.test(e.message))
  validateConfig({ ...g, channels: 264 })
  assert.throws(() => validateConfig({ ...g, layers: 1025 }), (e: Error) => e instanceof InputError && /layers must be at most 1024, got 1025/.test(e.message))
  validateConfig({ ...g, layers: 1024 })
})

test('derived sizes: K/V heads keep the preset\'s grouping, the MLP width follows channels and MLP type', () => {
  const cfg = (o: Record<string, unknown>): ModelConfig => configFromJson(o, 'x.json')
  // variant-124m groups 12 heads over 6 K/V heads (2 per K/V head); tiny-variant 8 over 4; GPT-2 has one per head
  assert.equal(cfg({ preset: 'variant-124m', heads: 24 }).kvHeads, 12)
  assert.equal(cfg({ preset: 'tiny-variant', heads: 4 }).kvHeads, 2)
  assert.equal(cfg({ preset: 'tiny-variant', heads: 2 }).kvHeads, 1)
  assert.equal(cfg({ preset: 'tiny-gpt2', heads: 4 }).kvHeads, 4)
  assert.equal(cfg({ preset: 'variant-124m', heads: 24, kvHeads: 24 }).kvHeads, 24, 'given, not derived')
  // GELU: 4·C. SwiGLU: the report's 2/3·4·C rounded up to a multiple of 128: C=128 → 341.3 → 384,
  // C=320 → 853.3 → 896, C=768 → 2048 (variant-124m's width)
  assert.equal(cfg({ preset: 'tiny-gpt2', channels: 128, heads: 4 }).mlpHidden, 512)
  assert.equal(cfg({ preset: 'tiny-variant', channels: 128, heads: 4 }).mlpHidden, 384)
  assert.equal(cfg({ preset: 'tiny-variant', channels: 320, heads: 4 }).mlpHidden, 896)
  assert.equal(cfg({ mlp: 'swiglu' }).mlpHidden, 2048, 'gpt2-124m with a SwiGLU MLP')
  assert.equal(cfg({ preset: 'tiny-variant', mlp: 'gelu' }).mlpHidden, 1024)
  assert.equal(cfg({ preset: 'tiny-variant', channels: 128, heads: 4, mlpHidden: 100 }).mlpHidden, 100, 'given, not derived')
})

test('the layout covers the flat buffer exactly once, in order', () => {
  for (const c of Object.values(presets)) {
    const layout = new ParamLayout(c)
    let off = 0
    for (const s of layout.specs) {
      assert.equal(s.offset, off, s.name)
      assert.equal(s.size, s.shape.reduce((a, b) => a * b, 1))
      off += s.size
    }
    assert.equal(off, layout.total)
  }
})

test('weight decay applies to matrices and embeddings only', () => {
  const layout = new ParamLayout(presetConfig('tiny-gpt2'))
  for (const s of layout.specs) assert.equal(s.decay, s.shape.length >= 2, s.name)
})

test('initialization: seeded, std 0.02 / residual 0.02/sqrt(2L), norms 1, biases 0, padded rows 0', () => {
  const c = configFromJson({ preset: 'tiny-gpt2', layers: 2, channels: 64, heads: 4, mlpHidden: 256, vocabSize: 1000 }, 't')
  const layout = new ParamLayout(c)
  const a = new Float32Array(layout.total), b = new Float32Array(layout.total)
  initParams(layout, a, 7)
  initParams(layout, b, 7)
  assert.deepEqual(a, b)
  initParams(layout, b, 8)
  assert.notDeepEqual(a, b)
  const std = (name: string): number => {
    const s = layout.get(name)
    const v = a.subarray(s.offset, s.offset + s.size)
    let ss = 0
    for (const x of v) ss += x * x
    return Math.sqrt(ss / v.length)
  }
  assert.ok(Math.abs(std('h.0.attn.qkv.weight') - 0.02) < 0.001)
  assert.ok(Math.abs(std('h.1.mlp.proj.weight') - 0.02 / Math.sqrt(4)) < 0.0005)
  const ln = layout.get('h.0.ln1.weight'), bias = layout.get('h.0.attn.qkv.bias'), wte = layout.get('wte')
  assert.ok(a.subarray(ln.offset, ln.offset + ln.size).every(x => x === 1))
  assert.ok(a.subarray(bias.offset, bias.offset + bias.size).every(x => x === 0))
  assert.ok(a.subarray(wte.offset + 1000 * 64, wte.offset + wte.size).every(x => x === 0))
})
