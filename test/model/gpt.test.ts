// GPT orchestration beyond the golden numbers: KV-cache decoding equals the full forward pass, seeded
// initialization, parameter counts against the architecture formula (and GPT-2's published 124,439,808),
// and the errors a caller gets for bad batches and misuse.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { headSize, presetConfig, type ModelConfig } from '../../src/config.js'
import { GPT } from '../../src/model/gpt.js'
import { classifierRows, rowWidths } from '../../src/model/activations.js'
import { ParamLayout } from '../../src/model/params.js'
import { InputError } from '../../src/util/errors.js'
import { assertClose, maxAbs } from './close.js'
import { loadGolden } from './golden.js'
import { forwardRest, packedGroups, poolSize, sharedRest } from './packed.js'

describe('KV-cache decode', () => {
  for (const name of ['gpt2', 'variant', 'variant-mqa-bias-untied']) {
    test(`${name}: prompt, then chunks and single tokens, equal the full forward logits`, () => {
      const g = loadGolden(name), V = g.config.vocabSize, B = g.B, T = g.T
      const model = new GPT(new CpuBackend(), g.config, { maxBatch: B, maxSeqLen: T })
      model.setParams(g.params)
      model.forward(g.tokens, null, B, T)
      const full = model.lastLogits()   // (B,T,V)
      const tol = { atol: 1e-5 * maxAbs(full), rtol: 1e-5 }   // same float32 ops, different summation order
      const cache = model.createCache(B, T)
      const steps = [5, 3, 1, 1, 1, 1, 1, 1, 1, 1]   // positions [0,5), [5,8), then one at a time up to T
      let pos = 0
      for (const Tq of steps) {
        const chunk = new Int32Array(B * Tq)
        for (let b = 0; b < B; b++) chunk.set(g.tokens.subarray(b * T + pos, b * T + pos + Tq), b * Tq)
        const got = model.decode(cache, chunk, B, Tq)   // (B,V) at position pos + Tq - 1
        pos += Tq
        const want = new Float32Array(B * V)
        for (let b = 0; b < B; b++) want.set(full.subarray((b * T + pos - 1) * V, (b * T + pos) * V), b * V)
        assertClose(`decode logits at position ${pos - 1}`, got, want, tol)
      }
      assert.equal(cache.length, T)
      assert.throws(() => model.decode(cache, new Int32Array(B), B, 1), InputError)   // the cache is full
      model.releaseCache(cache)
      assert.throws(() => model.decode(model.createCache(B + 1, T), new Int32Array(B), B, 1), /differs from the cache/)
    })
  }
})

describe('packed decode (several groups of sequences in one forward, each with its own shared prefix)', () => {
  for (const name of ['gpt2', 'variant', 'variant-mqa-bias-untied']) {
    test(`${name}: every group's losses equal its own forward's and, bit for bit, its unbatched decode's`, () => {
      const g = loadGolden(name), groups = packedGroups(g.config.vocabSize)
      // js kernels: float64 sums per output whatever the row count; BLAS may round a row differently in a bigger
      // matmul (measured: a loss 1 unit in the last place apart)
      const model = new GPT(new CpuBackend({ kernels: 'js' }), g.config, { maxBatch: 4, maxSeqLen: g.config.contextLength })
      model.setParams(g.params)
      const { kvRows, rows } = poolSize(groups), pool = model.createPool(kvRows, rows)
      const got = model.decodePacked(pool, groups)
      groups.forEach((grp, i) => {
        const want = forwardRest(model, grp)
        // same float32 ops, attention summed in another order (as the KV-cache decode test's)
        assertClose(`group ${i} against its forward`, got[i]!, want, { atol: 1e-5 * maxAbs(want), rtol: 1e-5 })
        assert.deepEqual(got[i], sharedRest(model, grp), `group ${i} against decodeShared + decodeLosses`)
        grp.targets.forEach((t, j) => { if (t < 0) assert.equal(got[i]![j], 0, `group ${i}: ignored ${j}`) })
      })
      assert.throws(() => model.decodePacked(pool, [...groups, groups[0]!]), /needs 512 key\/value rows, the pool has 384/)
      assert.throws(() => model.decode(pool, new Int32Array(1), 1, 1), /got a pool/)
      model.releaseCache(pool)
      assert.throws(() => model.decodePacked(pool, groups), /needs a live pool/)
    })
  }
})

describe('initialization', () => {
  const config = loadGolden('variant').config
  test('the same seed gives the same weights, another seed different ones', () => {
    const a = new GPT(new CpuBackend(), config, { maxBatch: 1, maxSeqLen: 8 })
    const b = new GPT(new CpuBackend(), config, { maxBatch: 1, maxSeqLen: 8 })
    a.initWeights(1234)
    b.initWeights(1234)
    assert.deepEqual(a.getParams(), b.getParams())
    b.initWeights(1235)
    assert.notDeepEqual(a.getParams(), b.getParams())
  })

  test('GPT-2 scheme: N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)), norms 1, padded rows 0', () => {
    const c: ModelConfig = { ...presetConfig('tiny-gpt2'), vocabSize: 1000, paddedVocabSize: 1024 }   // 4 layers, C=256
    const m = new GPT(new CpuBackend(), c, { maxBatch: 1, maxSeqLen: 8 })
    m.initWeights(7)
    const p = m.getParams()
    const view = (name: string): Float32Array => { const s = m.layout.get(name); return p.subarray(s.offset, s.offset + s.size) }
    const std = (x: Float32Array): number => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length)
    const wte = view('wte')
    assert.ok(Math.abs(std(wte.subarray(0, c.vocabSize * c.channels)) - 0.02) < 0.0005)
    assert.ok(wte.subarray(c.vocabSize * c.channels).every(v => v === 0), 'padded vocabulary rows are zero')
    assert.ok(Math.abs(std(view('h.0.attn.proj.weight')) - 0.02 / Math.sqrt(2 * c.layers)) < 0.0005)
    assert.ok(view('h.3.ln2.weight').every(v => v === 1) && view('h.3.mlp.fc.bias').every(v => v === 0))
  })
})

describe('parameter counts', () => {
  /** Counted from the architecture, not from ParamLayout: embeddings, per block (norms, qkv, proj, MLP), final norm. */
  function countFromFormula(c: ModelConfig): number {
    const C = c.channels, HS = headSize(c), H = c.mlpHidden, normParams = c.norm === 'layernorm' ? 2 * C : C
    const qkvOut = (c.heads + 2 * c.kvHeads) * HS, fcOut = c.mlp === 'swiglu' ? 2 * H : H
    const block = 2 * normParams + C * qkvOut + (c.attnBias ? qkvOut : 0) + c.heads * HS * C + (c.attnBias ? C : 0)
      + C * fcOut + (c.mlpBias ? fcOut : 0) + H * C + (c.mlpBias ? C : 0)
    const embeddings = c.vocabSize * C * (c.tiedEmbeddings ? 1 : 2) + (c.positions === 'learned' ? c.contextLength * C : 0)
    return embeddings + c.layers * block + normParams
  }

  test('gpt2-124m has GPT-2 small\'s published 124,439,808 parameters', () => {
    assert.equal(countFromFormula(presetConfig('gpt2-124m')), 124_439_808)
    assert.equal(new ParamLayout(presetConfig('gpt2-124m')).countReal(), 124_439_808)
  })

  test('variant-124m has about 116.5M parameters', () => {
    const n = countFromFormula(presetConfig('variant-124m'))
    assert.ok(Math.abs(n - 116.5e6) < 0.05e6, `variant-124m: ${n}`)
    assert.equal(new ParamLayout(presetConfig('variant-124m')).countReal(), n)
  })

  test('every preset: the layout agrees with the formula; the flat buffer adds only padded rows', () => {
    for (const name of ['gpt2-350m', 'variant-350m', 'tiny-gpt2', 'tiny-variant']) {
      const c = presetConfig(name), layout = new ParamLayout(c)
      assert.equal(layout.countReal(), countFromFormula(c), name)
      const padded = (c.paddedVocabSize - c.vocabSize) * c.channels * (c.tiedEmbeddings ? 1 : 2)
      assert.equal(layout.total, countFromFormula(c) + padded, name)
    }
  })
})

/** A golden's model on a CPU backend that counts the floats it allocates (activations are allocated up front). */
function countedModel(g: ReturnType<typeof loadGolden>, opts: { recompute?: boolean; classifierRows?: number; mode?: 'train' | 'inference' }): { model: GPT; floats: number } {
  let floats = 0
  const be = new CpuBackend()
  const alloc = be.alloc.bind(be)
  be.alloc = (n: number) => { floats += n; return alloc(n) }
  const model = new GPT(be, g.config, { maxBatch: g.B, maxSeqLen: g.T, ...opts })
  model.setParams(g.params)
  return { model, floats }
}

describe('recompute (activation checkpointing of norm outputs and the MLP activation)', () => {
  for (const name of ['gpt2', 'variant', 'mixed-ln-rope-swiglu', 'mixed-rms-learned-gelu']) {
    test(`${name}: the same loss and gradients as keeping them, in less memory`, () => {
      const g = loadGolden(name), c = g.config
      const keep = countedModel(g, { recompute: false }), re = countedModel(g, { recompute: true })
      const N = g.B * g.T, { C, H } = rowWidths(c)
      for (const m of [keep.model, re.model]) m.zeroGrad()
      assert.equal(re.model.forward(g.tokens, g.targets, g.B, g.T, 1), keep.model.forward(g.tokens, g.targets, g.B, g.T, 1))
      keep.model.backward(1); re.model.backward(1)
      assert.deepEqual(re.model.getGrads(), keep.model.getGrads())
      // ln1, ln2 (C each) and the MLP activation (H) are held for one layer instead of every layer
      assert.equal(keep.floats - re.floats, (c.layers - 1) * N * (2 * C + H))
    })
  }
})

describe('inference mode (evaluation: no backward, one layer\'s activations)', () => {
  for (const name of ['gpt2', 'variant', 'mixed-ln-rope-swiglu', 'mixed-rms-learned-gelu']) {
    test(`${name}: the training forward's losses and logits bit for bit, without per-layer activations or gradients`, () => {
      const g = loadGolden(name), c = g.config
      const train = countedModel(g, {}), inf = countedModel(g, { mode: 'inference' })
      for (const [B, T] of [[g.B, g.T], [1, g.T / 2], [g.B, g.T]] as const) {   // other shapes between, then back
        const tokens = g.tokens.subarray(0, B * T), targets = g.targets.subarray(0, B * T)
        assert.equal(inf.model.forward(tokens, targets, B, T), train.model.forward(tokens, targets, B, T))
        assert.deepEqual(inf.model.lastLosses(), train.model.lastLosses())
        inf.model.forward(tokens, null, B, T); train.model.forward(tokens, null, B, T)
        assert.deepEqual(inf.model.lastLogits(), train.model.lastLogits())
      }
      // every per-layer kind (ln1, its mean and rstd, qkv, atty, lse, res2, ln2, its mean and rstd, fch, fchAct, res3)
      // is held for one layer instead of L, and there is no gradient vector
      const N = g.B * g.T, { C, QKV, AH, FC, H } = rowWidths(c), stats = c.norm === 'layernorm' ? 2 : 1
      const perLayer = 4 * C + QKV + AH + c.heads + FC + H + 2 * stats
      assert.equal(train.floats - inf.floats, new ParamLayout(c).total + (c.layers - 1) * N * perLayer)
      assert.throws(() => inf.model.backward(1), /gpt: backward\(\) of a model built for inference/)
      assert.throws(() => inf.model.forward(g.tokens, g.targets, g.B, g.T, 1), /forward\(\.\.\., backwardScale\) of a model built for inference/)
      assert.throws(() => inf.model.zeroGrad(), /gpt: grads of a model built for inference/)
    })
  }
})

describe('classifier in row chunks (the (N,Vp) logits never whole)', () => {
  test('chunk rows: the fewest equal chunks under the 2^28-float budget, enough for every smaller batch', () => {
    assert.equal(classifierRows(16 * 1024, 50304), 4096)   // B=16, T=1024: four chunks, 0.38 GiB of bf16 logits
    assert.equal(classifierRows(8 * 1024, 50304), 4096)    // two: 8192 rows exceed the budget (5,336)
    assert.equal(classifierRows(32 * 1024, 50304), 4682)   // seven
    assert.equal(classifierRows(5000, 50304), 5000)        // one
    assert.equal(classifierRows(100, 50304, 7), 7)         // 15 chunks of 7 (the last of 2)
    for (let N = 1; N <= 100; N++) assert.ok(N / Math.ceil(N / 7) <= 7)
    // inference: 2^25 floats, 667 rows at Vp = 50304; eval loss's B=4, T=1024 in 7 chunks of 586 (118 MiB in f32)
    assert.equal(classifierRows(4 * 1024, 50304, undefined, 'inference'), 586)
    assert.equal(classifierRows(667, 50304, undefined, 'inference'), 667)   // one
    assert.equal(classifierRows(668, 50304, undefined, 'inference'), 334)   // two
  })

  test('inference: a logits buffer of 2^25 floats at most, and the losses of one whole chunk bit for bit', () => {
    // GPT-2's padded vocabulary on a one-layer model 16 wide: N = 1024 rows need two chunks of 512 in inference.
    // js kernels: float64 sums per output whatever the row count (BLAS may round a row differently in a GEMM of
    // another row count: OpenBLAS, 2 threads, eval loss at gpt2-124m moved in its 11th digit; bench/RESULTS.md)
    const c: ModelConfig = { ...presetConfig('tiny-gpt2'), layers: 1, channels: 16, heads: 4, kvHeads: 4 }, Vp = c.paddedVocabSize
    const built = (classifierRows?: number): { model: GPT; sizes: number[] } => {
      const be = new CpuBackend({ kernels: 'js' }), alloc = be.alloc.bind(be), sizes: number[] = []
      be.alloc = (n: number) => { sizes.push(n); return alloc(n) }
      const model = new GPT(be, c, { maxBatch: 1, maxSeqLen: 1024, mode: 'inference', ...(classifierRows ? { classifierRows } : {}) })
      model.initWeights(5)
      return { model, sizes }
    }
    const chunked = built(), whole = built(1024)
    assert.equal(Vp, 50304)
    assert.ok(chunked.sizes.includes(512 * Vp) && !chunked.sizes.includes(1024 * Vp), `allocations ${chunked.sizes.join(', ')}`)
    assert.ok(whole.sizes.includes(1024 * Vp))
    const tokens = Int32Array.from({ length: 1025 }, (_, i) => (i * 7919) % c.vocabSize)
    const inputs = tokens.subarray(0, 1024), targets = tokens.slice(1)
    targets[600] = -1   // an ignored position in the second chunk
    assert.equal(chunked.model.forward(inputs, targets, 1, 1024), whole.model.forward(inputs, targets, 1, 1024))
    assert.deepEqual(chunked.model.lastLosses(), whole.model.lastLosses())
  })

  for (const name of ['gpt2', 'variant']) {
    test(`${name}: 5-row chunks give the unchunked losses, logits and gradients, fused or not, in less memory`, () => {
      const g = loadGolden(name), c = g.config, N = g.B * g.T
      const whole = countedModel(g, {}), chunked = countedModel(g, { classifierRows: 5 })
      assert.equal(whole.floats - chunked.floats, (N - 5) * c.paddedVocabSize)   // ceil(32/7) = 5 rows of logits
      const targets = g.targets.slice()
      targets[7] = -1   // an ignored position inside a chunk
      for (const fused of [false, true]) {
        const scale = fused ? 0.5 : undefined
        for (const m of [whole.model, chunked.model]) m.zeroGrad()
        const lw = whole.model.forward(g.tokens, targets, g.B, g.T, scale), lc = chunked.model.forward(g.tokens, targets, g.B, g.T, scale)
        assert.ok(Math.abs(lc - lw) <= 1e-6 * Math.abs(lw), `loss ${lc} vs ${lw}`)
        assertClose('per-position losses', chunked.model.lastLosses(), whole.model.lastLosses(), { atol: 1e-6, rtol: 1e-6 })
        for (const m of [whole.model, chunked.model]) m.backward(0.5)
        const gw = whole.model.getGrads()
        // dweight of the classifier summed chunk by chunk: float32 sums in another order
        assertClose(`gradients (fused: ${fused})`, chunked.model.getGrads(), gw, { atol: 1e-6 * maxAbs(gw), rtol: 1e-5 })
      }
      whole.model.forward(g.tokens, null, g.B, g.T); chunked.model.forward(g.tokens, null, g.B, g.T)
      const want = whole.model.lastLogits()
      assertClose('logits (computed in a temporary beyond one chunk)', chunked.model.lastLogits(), want, { atol: 1e-6 * maxAbs(want), rtol: 1e-6 })
    })
  }
})

describe('misuse and bad input', () => {
  const g = loadGolden('variant')
  const make = (): GPT => { const m = new GPT(new CpuBackend(), g.config, { maxBatch: 2, maxSeqLen: 16 }); m.setParams(g.params); return m }

  test('batches beyond the buffers, ids outside the vocabulary, wrong parameter vectors are InputErrors', () => {
    const m = make()
    assert.throws(() => m.forward(new Int32Array(3 * 16), null, 3, 16), InputError)
    assert.throws(() => m.forward(new Int32Array(2 * 17), null, 2, 17), InputError)
    assert.throws(() => m.forward(Int32Array.from([0, 96]), null, 1, 2), /inputs\[1\] = 96 is outside the vocabulary/)
    assert.throws(() => m.forward(Int32Array.from([0, 1]), Int32Array.from([1, 200]), 1, 2), InputError)
    assert.throws(() => m.setParams(new Float32Array(5)), InputError)
    assert.throws(() => new GPT(new CpuBackend(), g.config, { maxBatch: 1, maxSeqLen: 33 }), /context length 32/)
  })

  test('backward needs a forward with targets, once', () => {
    const m = make()
    assert.throws(() => m.backward(1), /before any forward/)
    m.forward(g.tokens, null, 2, 16)
    assert.throws(() => m.backward(1), /needs a forward with targets/)
    m.forward(g.tokens, g.targets, 2, 16)
    m.backward(1)
    assert.throws(() => m.backward(1), /twice/)
  })

  test('forward with backwardScale (the fused classifier) gives the same loss and gradients; backward must match it', () => {
    const a = make(), b = make(), targets = g.targets.slice()
    targets[3] = -1   // an ignored position: dlossScale divides by the valid count
    a.zeroGrad(); b.zeroGrad()
    const la = a.forward(g.tokens, targets, 2, 16), lb = b.forward(g.tokens, targets, 2, 16, 0.5)
    assert.equal(lb, la)
    a.backward(0.5); b.backward(0.5)
    assert.deepEqual(b.getGrads(), a.getGrads())
    b.forward(g.tokens, targets, 2, 16, 0.5)
    assert.throws(() => b.backward(0.25), /scales must match/)
    const all = make()
    all.zeroGrad()
    assert.ok(Number.isNaN(all.forward(g.tokens, new Int32Array(32).fill(-1), 2, 16, 1)))
    all.backward(1)
    assert.equal(maxAbs(all.getGrads()), 0)
  })

  test('all targets ignored: NaN loss, zero gradient', () => {
    const m = make()
    m.zeroGrad()
    const loss = m.forward(g.tokens, new Int32Array(32).fill(-1), 2, 16)
    assert.ok(Number.isNaN(loss))
    m.backward(1)
    assert.equal(maxAbs(m.getGrads()), 0)
  })
})
