// Float64 central finite differences of every CPU backward op, run on the very same op functions as the
// backend (they are written over Float32Array | Float64Array). loss = Σ out·W with random W, so each
// backward gets dout = W; gradients accumulate onto zeros. Large tensors check a random subset of entries.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { attentionBackward, attentionForward } from '../../src/backend/cpu/attention.js'
import { crossEntropyBackward, crossEntropyForward } from '../../src/backend/cpu/crossentropy.js'
import { encoderBackward, encoderForward } from '../../src/backend/cpu/encoder.js'
import { geluBackward, geluForward } from '../../src/backend/cpu/gelu.js'
import { layernormBackward, layernormForward } from '../../src/backend/cpu/layernorm.js'
import { matmulBackward, matmulForward } from '../../src/backend/cpu/matmul.js'
import { rmsnormBackward, rmsnormForward } from '../../src/backend/cpu/rmsnorm.js'
import { ropeBackward, ropeForward } from '../../src/backend/cpu/rope.js'
import { swigluBackward, swigluForward } from '../../src/backend/cpu/swiglu.js'
import { Rng } from '../../src/util/rng.js'

const rng = new Rng(7)
const H = 1e-6                  // step: float64 central differences are accurate to ~1e-9 here
const TOL = { rtol: 1e-6, atol: 1e-8 }
const MAX_COORDS = 60           // entries checked per tensor (all of them when the tensor is smaller)

function randn(n: number, scale = 1): Float64Array {
  const a = new Float64Array(n)
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale
  return a
}
function dot(a: Float64Array, b: Float64Array): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!
  return s
}

/** Checks analytic[name] against central differences of loss() in each input (mutated and restored). */
function gradcheck(label: string, loss: () => number, inputs: Record<string, Float64Array>,
                   analytic: Record<string, Float64Array>): void {
  for (const [name, x] of Object.entries(inputs)) {
    const g = analytic[name]!
    const coords = x.length <= MAX_COORDS ? [...x.keys()] : Array.from({ length: MAX_COORDS }, () => rng.int(x.length))
    let worst = { i: -1, num: 0, ana: 0, ratio: 0 }
    for (const i of coords) {
      const x0 = x[i]!
      x[i] = x0 + H
      const lp = loss()
      x[i] = x0 - H
      const lm = loss()
      x[i] = x0
      const num = (lp - lm) / (2 * H)
      const ratio = Math.abs(num - g[i]!) / (TOL.atol + TOL.rtol * Math.abs(num))
      if (!(ratio <= worst.ratio)) worst = { i, num, ana: g[i]!, ratio }
    }
    assert.ok(worst.ratio <= 1, `${label}: d${name}[${worst.i}] analytic ${worst.ana}, finite difference ${worst.num}`)
  }
}

test('gradcheck encoder (wte, wpe; repeated tokens)', () => {
  const B = 2, T = 3, C = 4, Vp = 6, maxT = 5
  const tokens = new Int32Array([1, 4, 1, 0, 4, 4])
  const wte = randn(Vp * C), wpe = randn(maxT * C), W = randn(B * T * C), out = new Float64Array(B * T * C)
  const loss = (): number => { encoderForward(out, tokens, wte, wpe, B, T, C, 0); return dot(out, W) }
  const dwte = new Float64Array(Vp * C), dwpe = new Float64Array(maxT * C)
  encoderBackward(dwte, dwpe, W, tokens, B, T, C)
  gradcheck('encoder', loss, { wte, wpe }, { wte: dwte, wpe: dwpe })
})

test('gradcheck layernorm (inp, weight, bias)', () => {
  const N = 5, C = 9
  const inp = randn(N * C, 2), weight = randn(C), bias = randn(C), W = randn(N * C)
  const out = new Float64Array(N * C), mean = new Float64Array(N), rstd = new Float64Array(N)
  const loss = (): number => { layernormForward(out, mean, rstd, inp, weight, bias, N, C, 1e-5); return dot(out, W) }
  loss()
  const dinp = new Float64Array(N * C), dweight = new Float64Array(C), dbias = new Float64Array(C)
  layernormBackward(dinp, dweight, dbias, W, inp, weight, mean, rstd, N, C)
  gradcheck('layernorm', loss, { inp, weight, bias }, { inp: dinp, weight: dweight, bias: dbias })
})

test('gradcheck rmsnorm (inp, weight)', () => {
  const N = 5, C = 9
  const inp = randn(N * C, 2), weight = randn(C), W = randn(N * C)
  const out = new Float64Array(N * C), rstd = new Float64Array(N)
  const loss = (): number => { rmsnormForward(out, rstd, inp, weight, N, C, 1e-5); return dot(out, W) }
  loss()
  const dinp = new Float64Array(N * C), dweight = new Float64Array(C)
  rmsnormBackward(dinp, dweight, W, inp, weight, rstd, N, C)
  gradcheck('rmsnorm', loss, { inp, weight }, { inp: dinp, weight: dweight })
})

test('gradcheck matmul (inp, weight, bias; ragged tiles, several backward chunks)', () => {
  for (const [N, C, OC] of [[5, 3, 7], [70, 21, 67], [130, 9, 131]] as const) {
    const inp = randn(N * C), weight = randn(OC * C), bias = randn(OC), W = randn(N * OC)
    const out = new Float64Array(N * OC)
    const loss = (): number => { matmulForward(out, inp, weight, bias, N, C, OC); return dot(out, W) }
    const dinp = new Float64Array(N * C), dweight = new Float64Array(OC * C), dbias = new Float64Array(OC)
    matmulBackward(dinp, dweight, dbias, W, inp, weight, N, C, OC)
    gradcheck(`matmul N=${N} C=${C} OC=${OC}`, loss, { inp, weight, bias }, { inp: dinp, weight: dweight, bias: dbias })
  }
})

test('gradcheck rope (GQA, posStart 3)', () => {
  const B = 2, T = 4, NH = 4, KVH = 2, HS = 6, n = B * T * (NH + 2 * KVH) * HS
  const qkv = randn(n), W = randn(n), out = new Float64Array(n)
  const loss = (): number => { ropeForward(out, qkv, B, T, NH, KVH, HS, 10000, 3); return dot(out, W) }
  const dqkv = new Float64Array(n)
  ropeBackward(dqkv, W, B, T, NH, KVH, HS, 10000, 3)
  gradcheck('rope', loss, { qkv }, { qkv: dqkv })
})

test('gradcheck attention (KVH = NH, NH/2, 1; T = 70 spans two query blocks)', () => {
  for (const [B, T, NH, KVH, HS] of [[2, 6, 4, 4, 4], [2, 6, 4, 2, 4], [2, 6, 4, 1, 4], [1, 70, 2, 1, 4]] as const) {
    const n = B * T * (NH + 2 * KVH) * HS
    const qkv = randn(n, 1.5), W = randn(B * T * NH * HS)
    const out = new Float64Array(B * T * NH * HS), lse = new Float64Array(B * NH * T)
    const loss = (): number => { attentionForward(out, lse, qkv, B, T, NH, KVH, HS); return dot(out, W) }
    loss()
    const dqkv = new Float64Array(n)
    attentionBackward(dqkv, W, qkv, lse, B, T, NH, KVH, HS)
    gradcheck(`attention T=${T} KVH=${KVH}`, loss, { qkv }, { qkv: dqkv })
  }
})

test('gradcheck gelu', () => {
  const n = 40, inp = randn(n, 2.5), W = randn(n), out = new Float64Array(n)
  const loss = (): number => { geluForward(out, inp, n); return dot(out, W) }
  const dinp = new Float64Array(n)
  geluBackward(dinp, W, inp, n)
  gradcheck('gelu', loss, { inp }, { inp: dinp })
})

test('gradcheck swiglu', () => {
  const N = 3, Hd = 7, inp = randn(N * 2 * Hd, 2), W = randn(N * Hd), out = new Float64Array(N * Hd)
  const loss = (): number => { swigluForward(out, inp, N, Hd); return dot(out, W) }
  const dinp = new Float64Array(N * 2 * Hd)
  swigluBackward(dinp, W, inp, N, Hd)
  gradcheck('swiglu', loss, { inp }, { inp: dinp })
})

test('gradcheck crossentropy (padded vocabulary, ignored target, loss = scale · Σ losses)', () => {
  const N = 4, V = 7, Vp = 9, scale = 0.3
  const logits = randn(N * Vp, 2), targets = new Int32Array([3, -1, 0, 6])
  const probs = new Float64Array(N * Vp), losses = new Float64Array(N)
  const loss = (): number => {
    crossEntropyForward(losses, probs, logits, targets, N, V, Vp)
    let s = 0
    for (const l of losses) s += l
    return scale * s
  }
  loss()
  const dlogits = new Float64Array(N * Vp)
  crossEntropyBackward(dlogits, probs, targets, scale, N, V, Vp)
  gradcheck('crossentropy', loss, { logits }, { logits: dlogits })
})
