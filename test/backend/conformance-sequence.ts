// Conformance of the sequence and loss ops: RoPE (by token position, posStart > 0, in place), causal GQA
// attention (KVH = NH, NH/2, 1 and groups of 3), attention with a KV cache against the full forward,
// cross-entropy over a padded vocabulary with ignored targets and aliasing, and AdamW steps.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Tensor } from '../../src/backend/backend.js'
import type { Harness } from './harness.js'
import { loadOpCases, type OpCase } from './opfixtures.js'

export function registerSequenceOps(h: () => Harness): void {
  for (const c of loadOpCases('rope')) registerRope(h, c)
  for (const c of loadOpCases('attention')) registerAttention(h, c)
  for (const c of loadOpCases('crossentropy')) registerCrossEntropy(h, c)
  for (const c of loadOpCases('adamw')) registerAdamW(h, c)
  registerAdamWSpans(h)
  registerAdamWEps(h)
}

function registerRope(h: () => Harness, c: OpCase): void {
  const B = c.n('B'), T = c.n('T'), NH = c.n('NH'), KVH = c.n('KVH'), HS = c.n('HS'), theta = c.n('theta'), pos = c.n('posStart')
  const n = B * T * (NH + 2 * KVH) * HS
  const shape = `B=${B} T=${T} NH=${NH} KVH=${KVH} HS=${HS} theta=${theta} posStart=${pos}`
  test(`rope forward, separate and in place [${c.name}] (${shape})`, () => {
    const { be } = h()
    const out = be.alloc(n)
    be.ropeForward(out, h().up(c.f32('qkv')), B, T, NH, KVH, HS, theta, pos)
    h().check('out', out, c.f32('out'))
    const qkv = h().up(c.f32('qkv'))
    be.ropeForward(qkv, qkv, B, T, NH, KVH, HS, theta, pos)
    h().check('out aliasing qkv', qkv, c.f32('out'))
  })
  test(`rope backward [${c.name}] (${shape})`, () => {
    const dqkv = h().prior(n)
    h().be.ropeBackward(dqkv.t, h().up(c.f32('dout')), B, T, NH, KVH, HS, theta, pos)
    h().checkGrad('dqkv', dqkv, c.f32('dqkv'))
  })
}

function registerAttention(h: () => Harness, c: OpCase): void {
  const B = c.n('B'), T = c.n('T'), NH = c.n('NH'), KVH = c.n('KVH'), HS = c.n('HS')
  const QKV = (NH + 2 * KVH) * HS, C = NH * HS
  const shape = `B=${B} T=${T} NH=${NH} KVH=${KVH} HS=${HS}`
  test(`attention forward + backward [${c.name}] (${shape})`, () => {
    const { be } = h()
    const out = be.alloc(B * T * C), lse = be.alloc(B * NH * T), qkv = h().up(c.f32('qkv'))
    be.attentionForward(out, lse, qkv, B, T, NH, KVH, HS)
    h().check('out', out, c.f32('out'))
    h().check('lse', lse, c.f32('lse'))
    const dqkv = h().prior(B * T * QKV)
    be.attentionBackward(dqkv.t, h().up(c.f32('dout')), qkv, out, lse, B, T, NH, KVH, HS)
    // ×4: the gradient is a difference of O(1) terms (dS = P·(dP - D)) summed over keys and over the heads of
    // a K/V group, and a backend may keep scores and probabilities in float32 (as PyTorch's float32 path does)
    h().checkGrad('dqkv', dqkv, c.f32('dqkv'), 4)
  })
  test(`attention backward with RoPE folded in equals attentionBackward, then ropeBackward [${c.name}] (${shape})`, () => {
    const { be } = h(), rope = { theta: 500, posStart: 3 }, n = B * T * QKV
    const out = be.alloc(B * T * C), lse = be.alloc(B * NH * T), qkv = h().up(c.f32('qkv')), dout = h().up(c.f32('dout'))
    be.attentionForward(out, lse, qkv, B, T, NH, KVH, HS)
    const after = be.alloc(n), want = h().prior(n)   // the two ops, accumulating onto a prior
    be.attentionBackward(after, dout, qkv, out, lse, B, T, NH, KVH, HS)
    be.ropeBackward(want.t, after, B, T, NH, KVH, HS, rope.theta, rope.posStart)
    const got = h().prior(n)
    be.attentionBackward(got.t, dout, qkv, out, lse, B, T, NH, KVH, HS, rope)
    h().check('dqkv before RoPE', got.t, h().down(want.t))
  })
  test(`attentionInference with a KV cache equals the full forward [${c.name}] (${shape})`, () => {
    const qkv = c.f32('qkv'), want = c.f32('out')
    // (posStart, Tq) splits; the cache is longer than T and rows at or after posStart+Tq hold NaN
    const splits: [number, number][] = [[0, T], [0, 1], [2, T - 2], [T - 1, 1], [3, 1]]
    const Tmax = T + 2
    for (const [posStart, Tq] of splits) {
      const cache = new Float32Array(B * Tmax * QKV).fill(NaN)
      for (let b = 0; b < B; b++) {
        cache.set(qkv.subarray(b * T * QKV, (b * T + posStart + Tq) * QKV), b * Tmax * QKV)
      }
      const expected = new Float32Array(B * Tq * C)
      for (let b = 0; b < B; b++) {
        expected.set(want.subarray((b * T + posStart) * C, (b * T + posStart + Tq) * C), b * Tq * C)
      }
      const out = h().be.alloc(B * Tq * C)
      h().be.attentionInference(out, h().up(cache), B, Tq, posStart, Tmax, NH, KVH, HS)
      h().check(`out of positions [${posStart}, ${posStart + Tq})`, out, expected)
    }
  })
}

function registerCrossEntropy(h: () => Harness, c: OpCase): void {
  const N = c.n('N'), V = c.n('V'), Vp = c.n('Vp'), scale = c.n('dlossScale')
  const shape = `N=${N} V=${V} Vp=${Vp}, padded columns hold 50, targets ${Array.from(c.i32('targets')).join(',')}`
  test(`crossentropy forward [${c.name}] (${shape}), probs separate and aliasing logits`, () => {
    const { be } = h()
    const targets = h().upInt(c.i32('targets'))
    const losses = be.alloc(N), probs = be.alloc(N * Vp)
    be.crossEntropyForward(losses, probs, h().up(c.f32('logits')), targets, N, V, Vp)
    h().check('losses', losses, c.f32('losses'))
    h().check('probs', probs, c.f32('probs'))
    const inPlace = h().up(c.f32('logits')), losses2 = be.alloc(N)
    be.crossEntropyForward(losses2, inPlace, inPlace, targets, N, V, Vp)
    h().check('losses (probs aliasing logits)', losses2, c.f32('losses'))
    h().check('probs (aliasing logits)', inPlace, c.f32('probs'))
  })
  test(`crossentropy backward [${c.name}] (${shape}) overwrites, also aliasing probs; 0 on padded columns`, () => {
    const { be } = h()
    const targets = h().upInt(c.i32('targets'))
    // probs holding 0.5 past V (not probabilities): dlogits is still exactly 0 there, the contract, whatever probs holds
    const probsIn = c.f32('probs')
    for (let r = 0; r < N; r++) probsIn.fill(0.5, r * Vp + V, (r + 1) * Vp)
    const padded = (label: string, t: Tensor): void => {
      const got = be.download(t)
      for (let i = 0; i < N * Vp; i++) {
        if (i % Vp >= V) assert.equal(got[i], 0, `${label}: row ${Math.floor(i / Vp)}, padded column ${i % Vp}`)
      }
    }
    const dlogits = h().up(new Float32Array(N * Vp).fill(7))   // garbage: the op overwrites, never accumulates
    be.crossEntropyBackward(dlogits, h().up(probsIn), targets, scale, N, V, Vp)
    padded('dlogits', dlogits)
    h().check('dlogits', dlogits, c.f32('dlogits'))
    const probs = h().up(probsIn)
    be.crossEntropyBackward(probs, probs, targets, scale, N, V, Vp)
    padded('dlogits aliasing probs', probs)
    h().check('dlogits aliasing probs', probs, c.f32('dlogits'))
  })
  test(`crossentropy forward with dlossScale [${c.name}] (${shape}): losses, and dlogits in place of probs`, () => {
    const { be } = h()
    const targets = h().upInt(c.i32('targets'))
    const losses = be.alloc(N), dlogits = be.alloc(N * Vp)
    be.crossEntropyForward(losses, dlogits, h().up(c.f32('logits')), targets, N, V, Vp, scale)
    h().check('losses', losses, c.f32('losses'))
    h().check('dlogits', dlogits, c.f32('dlogits'))
    const inPlace = h().up(c.f32('logits')), losses2 = be.alloc(N)
    be.crossEntropyForward(losses2, inPlace, inPlace, targets, N, V, Vp, scale)
    h().check('losses (in place)', losses2, c.f32('losses'))
    h().check('dlogits (in place of the logits)', inPlace, c.f32('dlogits'))
  })
}

function registerAdamW(h: () => Harness, c: OpCase): void {
  const n = c.n('n'), steps = c.n('steps')
  const opts = { lr: c.n('lr'), beta1: c.n('beta1'), beta2: c.n('beta2'), eps: c.n('eps'), weightDecay: c.n('weightDecay'),
    gradScale: c.n('gradScale') }
  test(`adamw ${steps} steps [${c.name}] (torch.optim.AdamW: ${JSON.stringify(opts)})`, () => {
    const { be } = h()
    const params = h().up(c.f32('params')), grads = be.alloc(n), m = be.alloc(n), v = be.alloc(n)
    for (let s = 1; s <= steps; s++) {
      be.upload(grads, c.f32(`grads${s}`))
      be.adamwUpdate(params, grads, m, v, { ...opts, step: s })
      h().check(`params after step ${s}`, params, c.f32(`params${s}`))
      h().check(`m after step ${s}`, m, c.f32(`m${s}`))
      h().check(`v after step ${s}`, v, c.f32(`v${s}`))
    }
  })
}

/** AdamW over one buffer whose noDecay spans (inside and across 8-element groups, adjacent, at the end) take no weight
 *  decay, against the update written out in float64 here; and spans that overlap are a caller error. */
function registerAdamWSpans(h: () => Harness): void {
  test('adamw with noDecay spans: one call, weight decay 0 inside the spans (float64 reference)', () => {
    const { be } = h(), n = 100, lr = 0.01, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weightDecay = 0.5, gradScale = 0.7
    const noDecay = [{ offset: 3, length: 5 }, { offset: 8, length: 1 }, { offset: 9, length: 2 }, { offset: 40, length: 27 },
      { offset: 97, length: 3 }]
    const wave = (k: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(0.37 * i * k + k))
    const p = Float64Array.from(wave(1), x => 2 * x), m = new Float64Array(n), v = new Float64Array(n)
    const params = h().up(Float32Array.from(p)), grads = be.alloc(n), mt = be.alloc(n), vt = be.alloc(n)
    // step 3 moves every span by one: as many spans as before, other elements; step 4 keeps step 3's offsets with
    // other lengths (a backend caching span tables must notice both)
    const moved = noDecay.map(s => ({ offset: s.offset - 1, length: s.length }))
    const resized = moved.map((s, i) => ({ offset: s.offset, length: [4, 1, 1, 20, 4][i]! }))
    const spansAt = (step: number): typeof noDecay => step < 3 ? noDecay : step === 3 ? moved : resized
    const free = (i: number, step: number): boolean => spansAt(step).some(s => i >= s.offset && i < s.offset + s.length)
    for (let step = 1; step <= 4; step++) {
      const g = wave(step + 1)
      be.upload(grads, g)
      be.adamwUpdate(params, grads, mt, vt, { lr, beta1, beta2, eps, weightDecay, noDecay: spansAt(step), step, gradScale })
      for (let i = 0; i < n; i++) {
        const gi = g[i]! * gradScale, wd = free(i, step) ? 0 : weightDecay
        m[i] = beta1 * m[i]! + (1 - beta1) * gi
        v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi
        p[i] = p[i]! - lr * ((m[i]! / (1 - beta1 ** step)) / (Math.sqrt(v[i]! / (1 - beta2 ** step)) + eps) + wd * p[i]!)
      }
      h().check(`params after step ${step}`, params, Float32Array.from(p))
      h().check(`m after step ${step}`, mt, Float32Array.from(m))
      h().check(`v after step ${step}`, vt, Float32Array.from(v))
    }
    const bad = { lr, beta1, beta2, eps, weightDecay, step: 5, gradScale, noDecay: [{ offset: 5, length: 5 }, { offset: 7, length: 1 }] }
    assert.throws(() => be.adamwUpdate(params, grads, mt, vt, bad), /unsorted, overlapping or outside/)
  })
}

/** Gradients the size of eps, where the fixtures' O(1) gradients cannot tell where eps goes: at step 1 with zero moments
 *  m̂ = g and v̂ = g², so torch's update is lr·g / (|g| + eps) — with |g| = eps·{1, 3, 1/3} that is lr·{1/2, 3/4, 1/4}.
 *  (eps inside the sqrt would give lr·g/1e-4, another eps lr·g/|g|). gradScale halves the stored gradients first. */
function registerAdamWEps(h: () => Harness): void {
  test('adamw with gradients of the size of eps: eps is added to sqrt(v̂), after gradScale (hand-computed step 1)', () => {
    const { be } = h(), eps = 1e-8, lr = 1e-2
    const params = h().up(new Float32Array(4)), m = be.alloc(4), v = be.alloc(4)
    const grads = h().up(Float32Array.from([2, 6, 2 / 3, -2], x => x * eps))
    be.adamwUpdate(params, grads, m, v, { lr, beta1: 0.9, beta2: 0.95, eps, weightDecay: 0, step: 1, gradScale: 0.5 })
    h().check('params after step 1', params, Float32Array.from([-1 / 2, -3 / 4, -1 / 4, 1 / 2], x => x * lr))
  })
}
