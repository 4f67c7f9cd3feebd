// Conformance of the per-row ops: embeddings, layernorm, rmsnorm, matmul, gelu, swiglu, residual, and the residual
// add fused with either norm. Forward outputs are compared with PyTorch (the fused ops with a float64 reference
// computed here); backward gradients are accumulated onto prior values and (result - prior) is compared with
// PyTorch's gradient. Backward ops consume the backend's own saved statistics.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Backend, Tensor } from '../../src/backend/backend.js'
import { Rng } from '../../src/util/rng.js'
import { assertClose } from './compare.js'
import type { Harness } from './harness.js'
import { loadOpCases, type OpCase } from './opfixtures.js'

export function registerLayerOps(h: () => Harness): void {
  for (const c of loadOpCases('encoder')) registerEncoder(h, c)
  for (const c of loadOpCases('layernorm')) registerLayernorm(h, c)
  for (const c of loadOpCases('rmsnorm')) registerRmsnorm(h, c)
  for (const c of loadOpCases('matmul')) registerMatmul(h, c)
  for (const c of loadOpCases('gelu')) registerGelu(h, c)
  for (const c of loadOpCases('swiglu')) registerSwiglu(h, c)
  for (const c of loadOpCases('residual')) registerResidual(h, c)
  registerResidualNorms(h)
}

function registerEncoder(h: () => Harness, c: OpCase): void {
  const B = c.n('B'), T = c.n('T'), C = c.n('C'), Vp = c.n('Vp'), maxT = c.n('maxT'), pos = c.n('posStart')
  const learned = c.dims['learned'] === true
  test(`encoder forward [${c.name}] (B=${B} T=${T} C=${C} posStart=${pos}, ${learned ? 'wte+wpe' : 'wte only'})`, () => {
    const { be } = h()
    const out = be.alloc(B * T * C)
    const wpe = learned ? h().up(c.f32('wpe')) : null
    be.encoderForward(out, h().upInt(c.i32('tokens')), h().up(c.f32('wte')), wpe, B, T, C, pos)
    h().check('out', out, c.f32('out'))
  })
  if (c.dims['backward'] !== true) return
  test(`encoder backward [${c.name}] (repeated tokens add up)`, () => {
    const { be } = h()
    const dwte = h().prior(Vp * C), dwpe = learned ? h().prior(maxT * C) : null
    be.encoderBackward(dwte.t, dwpe === null ? null : dwpe.t, h().up(c.f32('dout')), h().upInt(c.i32('tokens')), B, T, C)
    h().checkGrad('dwte', dwte, c.f32('dwte'))
    if (dwpe !== null) h().checkGrad('dwpe', dwpe, c.f32('dwpe'))
  })
}

function registerLayernorm(h: () => Harness, c: OpCase): void {
  const N = c.n('N'), C = c.n('C'), eps = c.n('eps')
  test(`layernorm forward + backward [${c.name}] (N=${N} C=${C})`, () => {
    const { be } = h()
    const out = be.alloc(N * C), mean = be.alloc(N), rstd = be.alloc(N)
    const inp = h().up(c.f32('inp')), w = h().up(c.f32('weight'))
    be.layernormForward(out, mean, rstd, inp, w, h().up(c.f32('bias')), N, C, eps)
    h().check('out', out, c.f32('out'))
    h().check('mean', mean, c.f32('mean'))
    h().check('rstd', rstd, c.f32('rstd'))
    const dinp = h().prior(N * C), dw = h().prior(C), db = h().prior(C)
    be.layernormBackward(dinp.t, dw.t, db.t, h().up(c.f32('dout')), inp, w, mean, rstd, N, C)
    h().checkGrad('dinp', dinp, c.f32('dinp'))
    h().checkGrad('dweight', dw, c.f32('dweight'))
    h().checkGrad('dbias', db, c.f32('dbias'))
  })
}

function registerRmsnorm(h: () => Harness, c: OpCase): void {
  const N = c.n('N'), C = c.n('C'), eps = c.n('eps')
  test(`rmsnorm forward + backward [${c.name}] (N=${N} C=${C} eps=${eps})`, () => {
    const { be } = h()
    const out = be.alloc(N * C), rstd = be.alloc(N)
    const inp = h().up(c.f32('inp')), w = h().up(c.f32('weight'))
    be.rmsnormForward(out, rstd, inp, w, N, C, eps)
    h().check('out', out, c.f32('out'))
    h().check('rstd', rstd, c.f32('rstd'))
    const dinp = h().prior(N * C), dw = h().prior(C)
    be.rmsnormBackward(dinp.t, dw.t, h().up(c.f32('dout')), inp, w, rstd, N, C)
    h().checkGrad('dinp', dinp, c.f32('dinp'))
    h().checkGrad('dweight', dw, c.f32('dweight'))
  })
}

function registerMatmul(h: () => Harness, c: OpCase): void {
  const N = c.n('N'), C = c.n('C'), OC = c.n('OC'), hasBias = c.dims['bias'] === true
  test(`matmul forward (overwrites out) + backward [${c.name}] (N=${N} C=${C} OC=${OC}${hasBias ? ', bias' : ''})`, () => {
    const { be } = h()
    const out = h().up(new Float32Array(N * OC).fill(7))   // garbage: the forward overwrites, bias or not
    const inp = h().up(c.f32('inp')), w = h().up(c.f32('weight'))
    const bias = hasBias ? h().up(c.f32('bias')) : null
    be.matmulForward(out, inp, w, bias, N, C, OC)
    h().check('out', out, c.f32('out'))
    const dout = h().up(c.f32('dout'))
    const dinp = h().prior(N * C), dw = h().prior(OC * C), db = hasBias ? h().prior(OC) : null
    be.matmulBackward(dinp.t, dw.t, db === null ? null : db.t, dout, inp, w, N, C, OC)
    h().checkGrad('dinp', dinp, c.f32('dinp'))
    h().checkGrad('dweight', dw, c.f32('dweight'))
    if (db !== null) h().checkGrad('dbias', db, c.f32('dbias'))
    // dinp = null (the first layer's input needs no gradient): the weight gradient is unchanged
    const dw2 = h().prior(OC * C)
    be.matmulBackward(null, dw2.t, null, dout, inp, w, N, C, OC)
    h().checkGrad('dweight with dinp = null', dw2, c.f32('dweight'))
  })
}

function registerGelu(h: () => Harness, c: OpCase): void {
  const n = c.n('n')
  test(`gelu forward + backward [${c.name}] (n=${n}, x in [-6, 6])`, () => {
    const { be } = h()
    const out = be.alloc(n), inp = h().up(c.f32('inp'))
    be.geluForward(out, inp, n)
    h().check('out', out, c.f32('out'))
    const dinp = h().prior(n)
    be.geluBackward(dinp.t, h().up(c.f32('dout')), inp, n)
    h().checkGrad('dinp', dinp, c.f32('dinp'))
  })
}

function registerSwiglu(h: () => Harness, c: OpCase): void {
  const N = c.n('N'), H = c.n('H')
  test(`swiglu forward + backward [${c.name}] (N=${N} H=${H})`, () => {
    const { be } = h()
    const out = be.alloc(N * H), inp = h().up(c.f32('inp'))
    be.swigluForward(out, inp, N, H)
    h().check('out', out, c.f32('out'))
    const dinp = h().prior(N * 2 * H)
    be.swigluBackward(dinp.t, h().up(c.f32('dout')), inp, N, H)
    h().checkGrad('dinp', dinp, c.f32('dinp'))
  })
}

function registerResidual(h: () => Harness, c: OpCase): void {
  const n = c.n('n')
  test(`residual forward [${c.name}], also with out aliasing a and b`, () => {
    const { be } = h()
    const want = c.f32('out'), out = be.alloc(n)
    be.residualForward(out, h().up(c.f32('a')), h().up(c.f32('b')), n)
    h().check('out', out, want)
    const a = h().up(c.f32('a'))
    be.residualForward(a, a, h().up(c.f32('b')), n)
    h().check('out = a', a, want)
    const b = h().up(c.f32('b'))
    be.residualForward(b, h().up(c.f32('a')), b, n)
    h().check('out = b', b, want)
  })
}

// ---- residual add fused with the next norm ----------------------------------------------------------------

type NormKind = 'rmsnorm' | 'layernorm'

/** Normal samples (shift + scale·N(0,1)) from their own seed, so one test's data never depends on another's. */
function randomF32(seed: number, n: number, scale: number, shift = 0): Float32Array {
  const rng = new Rng(seed), a = new Float32Array(n)
  for (let i = 0; i < n; i++) a[i] = shift + scale * rng.normal()
  return a
}

// a, b, res, out: (N,C)   weight, bias: (C)   mean, rstd: (N)
interface ResidualNormData { a: Float32Array; b: Float32Array; weight: Float32Array; bias: Float32Array }
interface ResidualNormResult {
  res: ArrayLike<number>; out: ArrayLike<number>; mean: ArrayLike<number>; rstd: ArrayLike<number>
}

/** res = a + b, then RMSNorm or LayerNorm (biased variance) of res, all in float64. mean is 0 for RMSNorm. */
function residualNormReference(norm: NormKind, d: ResidualNormData, N: number, C: number,
                               eps: number): ResidualNormResult {
  const res = new Float64Array(N * C), out = new Float64Array(N * C)
  const mean = new Float64Array(N), rstd = new Float64Array(N)
  for (let n = 0; n < N; n++) {
    const x = n * C
    for (let c = 0; c < C; c++) res[x + c] = d.a[x + c]! + d.b[x + c]!
    let m = 0
    if (norm === 'layernorm') { for (let c = 0; c < C; c++) m += res[x + c]!; m /= C }
    let q = 0
    for (let c = 0; c < C; c++) q += (res[x + c]! - m) ** 2
    const r = 1 / Math.sqrt(q / C + eps)
    for (let c = 0; c < C; c++) {
      const y = (res[x + c]! - m) * r * d.weight[c]!
      out[x + c] = norm === 'layernorm' ? y + d.bias[c]! : y
    }
    mean[n] = m
    rstd[n] = r
  }
  return { res, out, mean, rstd }
}

/** The fused op, or with `unfused` residualForward followed by the norm's forward; res may be the a or b tensor. */
function runResidualNorm(be: Backend, norm: NormKind, res: Tensor, a: Tensor, b: Tensor, d: ResidualNormData,
                         N: number, C: number, eps: number, opts: { unfused?: boolean } = {}): ResidualNormResult {
  const out = be.alloc(N * C), mean = be.alloc(N), rstd = be.alloc(N), w = be.alloc(C), bias = be.alloc(C)
  be.upload(w, d.weight)
  be.upload(bias, d.bias)
  if (opts.unfused === true) {
    be.residualForward(res, a, b, N * C)
    if (norm === 'rmsnorm') be.rmsnormForward(out, rstd, res, w, N, C, eps)
    else be.layernormForward(out, mean, rstd, res, w, bias, N, C, eps)
  } else if (norm === 'rmsnorm') be.residualRmsnormForward(res, out, rstd, a, b, w, N, C, eps)
  else be.residualLayernormForward(res, out, mean, rstd, a, b, w, bias, N, C, eps)
  return { res: be.download(res), out: be.download(out), mean: be.download(mean), rstd: be.download(rstd) }
}

/** got and want hold the same float32 values, bit for bit (the first difference is reported). */
function assertSameBits(label: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  assert.equal(got.length, want.length, `${label}: length ${got.length}, expected ${want.length}`)
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) assert.fail(`${label}: first difference at index ${i}: ${got[i]} vs ${want[i]}`)
  }
}

// Widths: 768 (the model's: three 256-column chunks of CUDA's fused kernel), 264 (a last chunk that only lane 0
// reaches) and 36 (not a multiple of 8: CUDA runs the two unfused kernels instead).
const residualNormShapes = [[6, 768], [5, 264], [4, 36]] as const

function registerResidualNorms(h: () => Harness): void {
  for (const norm of ['rmsnorm', 'layernorm'] as const) {
    for (const [N, C] of residualNormShapes) {
      const name = `residual + ${norm} forward (N=${N} C=${C}): float64 reference, res aliasing a or b, equals the unfused ops`
      test(name, () => {
        const { be } = h(), eps = 1e-5, seed = 10 * C + (norm === 'rmsnorm' ? 1 : 2)
        const d: ResidualNormData = { a: randomF32(seed, N * C, 2, 0.5), b: randomF32(seed + 1, N * C, 1),
          weight: randomF32(seed + 2, C, 0.5, 1), bias: randomF32(seed + 3, C, 0.3) }
        const want = residualNormReference(norm, d, N, C, eps)
        const runs: [string, ResidualNormResult][] = []
        for (const alias of ['none', 'a', 'b'] as const) {
          const a = h().up(d.a), b = h().up(d.b), res = alias === 'a' ? a : alias === 'b' ? b : be.alloc(N * C)
          const label = alias === 'none' ? 'res separate' : `res = ${alias}`
          runs.push([label, runResidualNorm(be, norm, res, a, b, d, N, C, eps)])
        }
        const stats = norm === 'layernorm' ? ['res', 'out', 'mean', 'rstd'] as const : ['res', 'out', 'rstd'] as const
        for (const [label, got] of runs) {
          for (const k of stats) assertClose(`${k} (${label})`, got[k], want[k], h().tol)
        }
        // the unfused pair reads res as stored: the fused op must give the same float32 values (the model's goldens
        // stay exact whichever it calls; on CUDA the fused kernel sums in the unfused kernels' order)
        const unfused = runResidualNorm(be, norm, be.alloc(N * C), h().up(d.a), h().up(d.b), d, N, C, eps,
          { unfused: true })
        for (const [label, got] of runs) {
          for (const k of stats) assertSameBits(`${k} (${label}) vs the unfused ops`, got[k], unfused[k])
        }
      })
    }
  }
}
