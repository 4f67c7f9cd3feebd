// The model on the CUDA backend: every PyTorch golden (logits, per-parameter gradients, 10 AdamW steps with
// accumulation and clipping) in float32 storage with fp32 matmuls (near-CPU tolerances) and in the default
// mixed precision (bf16 tolerances); KV-cache decoding; and 10 training steps of a small model tracking the
// CPU backend's losses. Tolerances are stated with their reason; they are first estimates until measured.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Backend } from '../../src/backend/backend.js'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { CudaBackend, type CudaBackendOptions } from '../../src/backend/cuda/index.js'
import { presetConfig, type ModelConfig } from '../../src/config.js'
import { GPT } from '../../src/model/gpt.js'
import { AdamW } from '../../src/train/optimizer.js'
import { Rng } from '../../src/util/rng.js'
import { assertClose, closeReport, maxAbs } from '../model/close.js'
import { goldenNames, loadGolden, trainGolden, type Golden } from '../model/golden.js'
import { forwardRest, packedGroups, poolSize, sharedRest } from '../model/packed.js'

interface Mode { name: string; opts: CudaBackendOptions; k: number }
// k scales every tolerance: f32 storage differs from the float64 reference by float32 rounding in a different
// summation order (CPU tolerances ×10); bf16 activations round every matmul input/output to 8 bits (2^-9 relative)
const modes: Mode[] = [
  { name: 'f32 storage, fp32 matmuls', opts: { storage: 'f32', tf32: false }, k: 1 },
  { name: 'mixed precision (bf16 activations)', opts: {}, k: 1000 },
]

function makeModel(be: Backend, g: Golden): GPT {
  const model = new GPT(be, g.config, { maxBatch: g.B, maxSeqLen: g.T })
  model.setParams(g.params)
  return model
}

function registerGolden(mode: Mode, name: string): void {
  describe(`cuda golden ${name} (${mode.name})`, () => {
    const g = loadGolden(name), k = mode.k
    test('forward: logits and loss', (t) => {
      const model = makeModel(new CudaBackend(mode.opts), g)
      const loss = model.forward(g.tokens, g.targets, g.B, g.T)
      const logits = model.lastLogits()
      t.diagnostic(`logits max|diff| ${closeReport(logits, g.logits, { atol: 0, rtol: 0 }).maxAbs.toExponential(2)} ` +
        `of max|ref| ${maxAbs(g.logits).toExponential(2)}`)
      assertClose('logits', logits, g.logits, { atol: 1e-5 * k * maxAbs(g.logits), rtol: 1e-5 * k })
      assertClose('loss', [loss], [g.loss], { atol: 0, rtol: 1e-5 * k })
    })
    test('backward: the gradient of every parameter', (t) => {
      const model = makeModel(new CudaBackend(mode.opts), g)
      model.zeroGrad()
      model.forward(g.tokens, g.targets, g.B, g.T)
      model.backward(1)
      const grads = model.getGrads()
      let worst = 0
      for (const [pname, , refOffset] of g.layout) {
        const spec = model.layout.get(pname)
        const ours = grads.subarray(spec.offset, spec.offset + spec.size), ref = g.grads.subarray(refOffset, refOffset + spec.size)
        worst = Math.max(worst, closeReport(ours, ref, { atol: 0, rtol: 0 }).maxAbs / (maxAbs(ref) || 1))
        // ×5 over the forward: a backward chains more rounded products
        assertClose(`grad ${pname}`, ours, ref, { atol: 5e-5 * k * maxAbs(ref), rtol: 5e-5 * k })
      }
      t.diagnostic(`worst gradient error: ${worst.toExponential(2)} of the tensor's max|ref|`)
    })
    test('10 AdamW steps with accumulation and clipping: losses and grad norms', (t) => {
      const r = trainGolden(makeModel(new CudaBackend(mode.opts), g), g)
      t.diagnostic(`loss diff ${closeReport(r.losses, g.train.losses, { atol: 0, rtol: 0 }).maxAbs.toExponential(2)}`)
      assertClose('train losses', r.losses, g.train.losses, { atol: 0, rtol: 2e-5 * k })
      assertClose('grad norms', r.norms, g.train.gradNorms, { atol: 0, rtol: 1e-4 * Math.min(k, 300) })
    })
  })
}

/** A small model with a real-sized padded vocabulary, for the CPU-vs-CUDA trajectory. */
function smallConfig(base: string): ModelConfig {
  return { ...presetConfig(base), vocabSize: 1000, paddedVocabSize: 1024, contextLength: 64, layers: 2, channels: 128,
    heads: 2, kvHeads: base.startsWith('variant') ? 1 : 2, mlpHidden: base.startsWith('variant') ? 384 : 512 }
}

function trajectory(be: Backend, config: ModelConfig, steps: number): number[] {
  const B = 4, T = 64, model = new GPT(be, config, { maxBatch: B, maxSeqLen: T })
  model.initWeights(1)
  const opt = new AdamW(model, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 })
  const rng = new Rng(3), losses: number[] = []
  // a noisy cycle over 50 of the 1000 tokens: the loss falls from ~6.9 to ~4 in 10 steps (a trajectory worth tracking)
  const seq = Int32Array.from({ length: B * T + 1 + steps * B * T }, (_, i) => (i * 7 + rng.int(3)) % 50)
  for (let s = 0; s < steps; s++) {
    const at = s * B * T
    model.zeroGrad()
    losses.push(model.forward(seq.subarray(at, at + B * T), seq.subarray(at + 1, at + 1 + B * T), B, T))
    model.backward(1)
    opt.update(3e-3, { gradClip: 1, gradNorm: opt.gradNorm() })
  }
  return losses
}

export function registerModelChecks(): void {
  for (const mode of modes) for (const name of goldenNames()) registerGolden(mode, name)

  test('KV-cache decode on CUDA equals the full forward (variant golden, f32 storage)', () => {
    const g = loadGolden('variant'), B = g.B, T = g.T, V = g.config.vocabSize
    const model = makeModel(new CudaBackend({ storage: 'f32', tf32: false }), g)
    model.forward(g.tokens, null, B, T)
    const full = model.lastLogits(), cache = model.createCache(B, T)
    let pos = 0
    for (const Tq of [5, 1, 1, 3]) {
      const chunk = new Int32Array(B * Tq)
      for (let b = 0; b < B; b++) chunk.set(g.tokens.subarray(b * T + pos, b * T + pos + Tq), b * Tq)
      const got = model.decode(cache, chunk, B, Tq)
      pos += Tq
      const want = new Float32Array(B * V)
      for (let b = 0; b < B; b++) want.set(full.subarray((b * T + pos - 1) * V, (b * T + pos) * V), b * V)
      assertClose(`decode logits at ${pos - 1}`, got, want, { atol: 1e-4 * maxAbs(full), rtol: 1e-4 })
    }
    model.releaseCache(cache)
  })

  test('HellaSwag\'s path on CUDA: a shared prefix (decodeShared), then every row\'s rest scored (decodeLosses), gives one ' +
    'forward\'s per-position losses', (t) => {
    // 12 rows of 32 whose first 8 tokens agree and have no targets (a context); the rest, 12·24 = 288 rows, is more
    // than the cache's 256-row logits scratch: two classifier chunks. k: f32 storage differs from the forward in
    // float32 summation order only; mixed precision's forward rounds matmul inputs/outputs to bf16 (2^-9 relative),
    // the cache's scratch is f32 (measured on the emulator: equal in f32, max|diff| 1.8e-3 in bf16)
    const B = 12, T = 32, P = 8, rng = new Rng(5)
    for (const { opts, k } of [{ opts: { storage: 'f32', tf32: false } as const, k: 1 }, { opts: {}, k: 1000 }]) {
      for (const name of ['variant', 'gpt2']) {
        const g = loadGolden(name), V = g.config.vocabSize, what = `${name} (${k === 1 ? 'f32' : 'bf16'})`
        const model = new GPT(new CudaBackend(opts), g.config, { maxBatch: B, maxSeqLen: T })
        model.setParams(g.params)
        const inputs = Int32Array.from({ length: B * T }, (_, i) => i % T < P ? (i % T) * 7 % V : rng.int(V))
        const targets = Int32Array.from({ length: B * T }, (_, i) => i % T < P || i % 5 === 0 ? -1 : rng.int(V))
        model.forward(inputs, targets, B, T)
        const full = model.lastLosses(), cache = model.createCache(B, T)
        model.decodeShared(cache, inputs.subarray(0, P), P)
        const rest = (x: Int32Array | Float32Array): Float32Array => Float32Array.from({ length: B * (T - P) },
          (_, i) => x[Math.floor(i / (T - P)) * T + P + i % (T - P)]!)
        const got = model.decodeLosses(cache, Int32Array.from(rest(inputs)), Int32Array.from(rest(targets)), B, T - P)
        model.releaseCache(cache)
        assert.equal(cache.length, cache.maxLen)
        const ignored = rest(targets).reduce((n, t, i) => t < 0 ? (assert.equal(got[i], 0, `${what}: ignored ${i}`), n + 1) : n, 0)
        assert.ok(ignored > 0 && ignored < got.length)
        t.diagnostic(`${what}: max|diff| ${closeReport(got, rest(full), { atol: 0, rtol: 0 }).maxAbs.toExponential(2)}`)
        assertClose(`${what}: losses after the shared prefix`, got, rest(full), { atol: 1e-5 * k, rtol: 1e-5 * k })
      }
    }
  })

  test('HellaSwag\'s packed path on CUDA: groups of different prefix and row lengths in one forward (decodePacked) give ' +
    'each group\'s own forward\'s losses, and its unbatched decode\'s', (t) => {
    // k as the test above; the unbatched decode (decodeShared, decodeLosses) runs the same ops on fewer rows: equal in
    // f32 where cuBLAS sums a row in the same order whatever the row count (the emulator), else float32 rounding
    for (const { opts, k } of [{ opts: { storage: 'f32', tf32: false } as const, k: 1 }, { opts: {}, k: 1000 }]) {
      for (const name of ['variant', 'gpt2']) {
        const g = loadGolden(name), groups = packedGroups(g.config.vocabSize), what = `${name} (${k === 1 ? 'f32' : 'bf16'})`
        const model = new GPT(new CudaBackend(opts), g.config, { maxBatch: 4, maxSeqLen: g.config.contextLength })
        model.setParams(g.params)
        const { kvRows, rows } = poolSize(groups), pool = model.createPool(kvRows, rows)
        const got = model.decodePacked(pool, groups)
        model.releaseCache(pool)
        groups.forEach((grp, i) => {
          const want = forwardRest(model, grp), shared = sharedRest(model, grp)
          t.diagnostic(`${what} group ${i}: max|diff| ${closeReport(got[i]!, want, { atol: 0, rtol: 0 }).maxAbs.toExponential(2)} ` +
            `(forward), ${closeReport(got[i]!, shared, { atol: 0, rtol: 0 }).maxAbs.toExponential(2)} (unbatched)`)
          assertClose(`${what} group ${i}: against its forward`, got[i]!, want, { atol: 1e-5 * k, rtol: 1e-5 * k })
          assertClose(`${what} group ${i}: against decodeShared + decodeLosses`, got[i]!, shared, { atol: 1e-6 * k, rtol: 1e-6 * k })
          grp.targets.forEach((x, j) => { if (x < 0) assert.equal(got[i]![j], 0, `${what} group ${i}: ignored ${j}`) })
        })
      }
    }
  })

  test('inference mode on CUDA (eval: one layer\'s activations, shared by all): the training forward\'s losses bit for bit', () => {
    for (const opts of [{ storage: 'f32', tf32: false } as const, {}]) {
      for (const name of ['variant', 'gpt2']) {
        const g = loadGolden(name), be = new CudaBackend(opts)
        const run = (mode: 'train' | 'inference'): [number, Float32Array] => {
          const m = new GPT(be, g.config, { maxBatch: g.B, maxSeqLen: g.T, mode })
          m.setParams(g.params)
          return [m.forward(g.tokens, g.targets, g.B, g.T), m.lastLosses()]
        }
        const [loss, losses] = run('train'), what = `${name} (${opts.storage ?? 'bf16'})`
        const [infLoss, infLosses] = run('inference')
        assert.equal(infLoss, loss, `${what}: loss`)
        assert.deepEqual(infLosses, losses, `${what}: per-position losses`)
      }
    }
  })

  test('classifier in 5-row chunks on CUDA: the losses and gradients of one chunk, fused or not', () => {
    // k: f32 storage differs only in float32 summation order (chunked dweight sums); bf16 logits/dlogits may round
    // one unit (2^-8) differently when a chunk's GEMM sums in another order
    for (const { opts, k } of [{ opts: { storage: 'f32', tf32: false } as const, k: 1 }, { opts: {}, k: 1000 }]) {
      for (const name of ['variant', 'gpt2']) {
        const g = loadGolden(name), be = new CudaBackend(opts)
        const run = (classifierRows: number | undefined, scale: number | undefined): [number, Float32Array, Float32Array] => {
          const m = new GPT(be, g.config, { maxBatch: g.B, maxSeqLen: g.T, classifierRows })
          m.setParams(g.params)
          m.zeroGrad()
          const loss = m.forward(g.tokens, g.targets, g.B, g.T, scale)
          const losses = m.lastLosses()
          m.backward(1)
          return [loss, losses, m.getGrads()]
        }
        const [l0, ls0, g0] = run(undefined, 1)
        for (const scale of [1, undefined]) {
          const [l1, ls1, g1] = run(5, scale), what = `${name} (${k === 1 ? 'f32' : 'bf16'}, ${scale === undefined ? 'unfused' : 'fused'})`
          assertClose(`${what}: loss`, [l1], [l0], { atol: 0, rtol: 1e-6 * k })
          assertClose(`${what}: per-position losses`, ls1, ls0, { atol: 1e-6 * k, rtol: 1e-6 * k })
          assertClose(`${what}: gradients`, g1, g0, { atol: 1e-5 * k * maxAbs(g0), rtol: 1e-5 * k })
        }
      }
    }
  })

  // on the CPU emulator (cuda-emu.test.ts) these take minutes: only with LLMTS_CUDA_EMU_FULL=1
  const emulated = new CudaBackend().ctx.info.name.includes('emulator') && process.env['LLMTS_CUDA_EMU_FULL'] !== '1'
  for (const base of ['variant-124m', 'gpt2-124m']) {
    test(`10 training steps of a small ${base}-style model track the CPU backend's losses`, (t) => {
      if (emulated) { t.skip('CPU emulator: set LLMTS_CUDA_EMU_FULL=1 to run it'); return }
      const config = smallConfig(base)
      const cpu = trajectory(new CpuBackend(), config, 10)
      const f32 = trajectory(new CudaBackend({ storage: 'f32', tf32: false }), config, 10)
      const mixed = trajectory(new CudaBackend(), config, 10)
      t.diagnostic(`cpu ${cpu.map(x => x.toFixed(4)).join(' ')}`)
      t.diagnostic(`f32 ${f32.map(x => x.toFixed(4)).join(' ')}`)
      t.diagnostic(`bf16 ${mixed.map(x => x.toFixed(4)).join(' ')}`)
      assert.ok(cpu[9]! < cpu[0]! - 1, 'the fixture must actually learn')
      // f32: AdamW's first steps turn float32-vs-float64 rounding of near-zero gradients into ~1e-4 parameter
      // differences that a loss spike magnifies (2e-5 measured on the emulator, 2.5e-4 with 4 heads); bf16: 2e-3
      // measured on the emulator (which sums in float64; tensor cores sum bf16 products in float32).
      assertClose('f32 losses vs cpu', f32, cpu, { atol: 0, rtol: 1e-3 })
      assertClose('bf16 losses vs cpu', mixed, cpu, { atol: 0, rtol: 2e-2 })
    })
  }
}
