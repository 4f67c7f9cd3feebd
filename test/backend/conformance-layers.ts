// Conformance of the per-row ops: embeddings, layernorm, rmsnorm, matmul, gelu, swiglu, residual.
// Forward outputs are compared with PyTorch; backward gradients are accumulated onto prior values and
// (result - prior) is compared with PyTorch's gradient. Backward ops consume the backend's own saved statistics.

import { test } from 'node:test'
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
  test(`matmul forward + backward [${c.name}] (N=${N} C=${C} OC=${OC}${hasBias ? ', bias' : ''})`, () => {
    const { be } = h()
    const out = be.alloc(N * OC), inp = h().up(c.f32('inp')), w = h().up(c.f32('weight'))
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
