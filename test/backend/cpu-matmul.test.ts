// The tiled CPU matmul against a naive triple loop on shapes that exercise every code path: ragged 4×4
// tile edges, several cache blocks of B and several 64-row/column backward chunks; both element types.

import { test } from 'node:test'
import { matmulBackward, matmulForward, gemmNT } from '../../src/backend/cpu/matmul.js'
import { Rng } from '../../src/util/rng.js'
import { addArrays, assertClose } from './compare.js'

const rng = new Rng(11)
const rand = (n: number): Float64Array => Float64Array.from({ length: n }, () => 2 * rng.uniform() - 1)
const SHAPES: [number, number, number][] = [[1, 1, 1], [3, 5, 2], [2, 37, 9], [67, 130, 69], [129, 33, 257], [8, 600, 120]]

function naive(inp: Float64Array, w: Float64Array, bias: Float64Array, dout: Float64Array, N: number, C: number, OC: number) {
  const out = new Float64Array(N * OC), dinp = new Float64Array(N * C), dw = new Float64Array(OC * C), db = new Float64Array(OC)
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < OC; o++) {
      let s = bias[o]!
      for (let c = 0; c < C; c++) s += inp[n * C + c]! * w[o * C + c]!
      out[n * OC + o] = s
      const g = dout[n * OC + o]!
      db[o] += g
      for (let c = 0; c < C; c++) { dinp[n * C + c] += g * w[o * C + c]!; dw[o * C + c] += g * inp[n * C + c]! }
    }
  }
  return { out, dinp, dw, db }
}

for (const [N, C, OC] of SHAPES) {
  test(`matmul N=${N} C=${C} OC=${OC} equals the naive loop (float64 and float32 paths, accumulating backward)`, () => {
    const inp = rand(N * C), w = rand(OC * C), bias = rand(OC), dout = rand(N * OC)
    const want = naive(inp, w, bias, dout, N, C, OC)
    for (const [type, make, tol] of [['f64', (a: Float64Array) => Float64Array.from(a), { rtol: 1e-12, atol: 1e-12 }],
                                     ['f32', (a: Float64Array) => Float32Array.from(a), { rtol: 1e-5, atol: 1e-5 }]] as const) {
      const out = make(new Float64Array(N * OC).fill(NaN))   // forward overwrites whatever the buffer held
      matmulForward(out, make(inp), make(w), make(bias), N, C, OC)
      assertClose(`${type} out`, out, want.out, tol)
      const noBias = make(new Float64Array(N * OC).fill(NaN))
      matmulForward(noBias, make(inp), make(w), null, N, C, OC)
      assertClose(`${type} out without bias`, noBias, want.out.map((v, i) => v - bias[i % OC]!), tol)
      const pI = rand(N * C), pW = rand(OC * C), pB = rand(OC)
      const dinp = make(pI), dw = make(pW), db = make(pB)
      matmulBackward(dinp, dw, db, make(dout), make(inp), make(w), N, C, OC)
      assertClose(`${type} dinp`, dinp, addArrays(pI, want.dinp), tol)
      assertClose(`${type} dweight`, dw, addArrays(pW, want.dw), tol)
      assertClose(`${type} dbias`, db, addArrays(pB, want.db), tol)
    }
  })
}

test('gemmNT honours offsets and leading dimensions (a sub-block of larger matrices)', () => {
  // out[2.., 1..] (ld 9) += a[1.., 3..] (ld 10) · b[0.., 2..] (ld 7)ᵀ, M=5 NN=6 K=4
  const a = rand(10 * 10), b = rand(8 * 7), out = rand(9 * 9), want = Float64Array.from(out)
  for (let i = 0; i < 5; i++) {
    for (let j = 0; j < 6; j++) {
      let s = 0
      for (let k = 0; k < 4; k++) s += a[(1 + i) * 10 + 3 + k]! * b[j * 7 + 2 + k]!
      want[(2 + i) * 9 + 1 + j] += s
    }
  }
  gemmNT(out, 2 * 9 + 1, 9, a, 10 + 3, 10, b, 2, 7, 5, 6, 4)
  assertClose('out', out, want, { rtol: 1e-12, atol: 1e-12 })
})
