// Matmul in PyTorch Linear layout: out (N,OC) = inp (N,C) · weight (OC,C)ᵀ + bias. Everything is one kernel,
// gemmNT (out += A·Bᵀ with both operands row-contiguous along the reduction), register-tiled 4×4 with float64
// accumulators; the backward passes transpose a chunk of one operand into scratch so they reuse that kernel.
// float32 work goes first to the backend's fast GEMM (native BLAS / WebAssembly, gemm.ts); this is the reference.

import { tryGemmNT, tryMatmulBackwardProducts, tryMatmulForward } from './gemm.js'
import type { FloatArray } from './types.js'

const JBLOCK_FLOATS = 64 * 1024   // rows of B per cache block: ~256 KB of float32 stays in L2
const CHUNK = 64                  // reduction chunk of the backward passes (transposed into scratch)

// ---- scratch (grown on demand, one per element type, so the kernel stays monomorphic per type) --------
let scratch32 = new Float32Array(0)
let scratch64 = new Float64Array(0)
let biasAcc = new Float64Array(0)  // (OC) float64 column sums of dout for dbias
function scratchLike(like: FloatArray, n: number): FloatArray {
  if (like instanceof Float64Array) {
    if (scratch64.length < n) scratch64 = new Float64Array(n)
    return scratch64
  }
  if (scratch32.length < n) scratch32 = new Float32Array(n)
  return scratch32
}

/**
 * out[oOff + i·ldo + j] += Σ_k a[aOff + i·lda + k] · b[bOff + j·ldb + k]   for i < M, j < NN, k < K.
 * The workhorse: 4×4 register tiles (16 float64 accumulators), B blocked so a block stays in cache.
 */
export function gemmNT(out: FloatArray, oOff: number, ldo: number, a: FloatArray, aOff: number, lda: number,
                       b: FloatArray, bOff: number, ldb: number, M: number, NN: number, K: number): void {
  if (tryGemmNT(out, oOff, ldo, a, aOff, lda, b, bOff, ldb, M, NN, K)) return   // BLAS / WebAssembly (gemm.ts)
  const M4 = M - (M % 4), N4 = NN - (NN % 4)
  const JB = Math.max(4, Math.floor(JBLOCK_FLOATS / Math.max(K, 1)) & ~3)
  for (let jb = 0; jb < N4; jb += JB) {
    const je = Math.min(N4, jb + JB)
    for (let i = 0; i < M4; i += 4) {
      for (let j = jb; j < je; j += 4) {
        tile4x4(out, oOff + i * ldo + j, ldo, a, aOff + i * lda, lda, b, bOff + j * ldb, ldb, K)
      }
    }
  }
  // the last M % 4 rows (all of them when M < 4, as in sampling) in 1×4 tiles
  for (let i = M4; i < M; i++) {
    for (let j = 0; j < N4; j += 4) tile1x4(out, oOff + i * ldo + j, a, aOff + i * lda, b, bOff + j * ldb, ldb, K)
  }
  // the last NN % 4 columns of every row
  for (let i = 0; i < M; i++) {
    for (let j = N4; j < NN; j++) {
      let s = 0
      const ao = aOff + i * lda, bo = bOff + j * ldb
      for (let k = 0; k < K; k++) s += a[ao + k]! * b[bo + k]!
      out[oOff + i * ldo + j] += s
    }
  }
}

function tile4x4(out: FloatArray, o: number, ldo: number, a: FloatArray, a0: number, lda: number,
                 b: FloatArray, b0: number, ldb: number, K: number): void {
  const a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda
  const b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0
  for (let k = 0; k < K; k++) {
    const x0 = a[a0 + k]!, x1 = a[a1 + k]!, x2 = a[a2 + k]!, x3 = a[a3 + k]!
    let y = b[b0 + k]!
    c00 += x0 * y; c10 += x1 * y; c20 += x2 * y; c30 += x3 * y
    y = b[b1 + k]!
    c01 += x0 * y; c11 += x1 * y; c21 += x2 * y; c31 += x3 * y
    y = b[b2 + k]!
    c02 += x0 * y; c12 += x1 * y; c22 += x2 * y; c32 += x3 * y
    y = b[b3 + k]!
    c03 += x0 * y; c13 += x1 * y; c23 += x2 * y; c33 += x3 * y
  }
  out[o] += c00; out[o + 1] += c01; out[o + 2] += c02; out[o + 3] += c03; o += ldo
  out[o] += c10; out[o + 1] += c11; out[o + 2] += c12; out[o + 3] += c13; o += ldo
  out[o] += c20; out[o + 1] += c21; out[o + 2] += c22; out[o + 3] += c23; o += ldo
  out[o] += c30; out[o + 1] += c31; out[o + 2] += c32; out[o + 3] += c33
}

function tile1x4(out: FloatArray, o: number, a: FloatArray, a0: number, b: FloatArray, b0: number, ldb: number,
                 K: number): void {
  const b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb
  let c0 = 0, c1 = 0, c2 = 0, c3 = 0
  for (let k = 0; k < K; k++) {
    const x = a[a0 + k]!
    c0 += x * b[b0 + k]!; c1 += x * b[b1 + k]!; c2 += x * b[b2 + k]!; c3 += x * b[b3 + k]!
  }
  out[o] += c0; out[o + 1] += c1; out[o + 2] += c2; out[o + 3] += c3
}

/** dst (cols, rows) = src[off + r·ld + c] for r < rows, c < cols: a transposed copy of a row block. */
export function transposeInto(dst: FloatArray, src: FloatArray, off: number, ld: number, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const s = off + r * ld
    for (let c = 0; c < cols; c++) dst[c * rows + r] = src[s + c]!
  }
}

// out: (N,OC)   inp: (N,C)   weight: (OC,C)   bias: (OC) or null
export function matmulForward(out: FloatArray, inp: FloatArray, weight: FloatArray, bias: FloatArray | null,
                              N: number, C: number, OC: number): void {
  if (tryMatmulForward(out, inp, weight, bias, N, C, OC)) return
  for (let n = 0; n < N; n++) {
    const o = n * OC
    if (bias === null) out.fill(0, o, o + OC)
    else for (let j = 0; j < OC; j++) out[o + j] = bias[j]!
  }
  gemmNT(out, 0, OC, inp, 0, C, weight, 0, C, N, OC, C)
}

// dinp: (N,C) += or null   dweight: (OC,C) +=   dbias: (OC) += or null   dout: (N,OC)   inp: (N,C)   weight: (OC,C)
export function matmulBackward(dinp: FloatArray | null, dweight: FloatArray, dbias: FloatArray | null,
                               dout: FloatArray, inp: FloatArray, weight: FloatArray,
                               N: number, C: number, OC: number): void {
  if (!tryMatmulBackwardProducts(dinp, dweight, dout, inp, weight, N, C, OC)) {
    if (dinp !== null) matmulBackwardInput(dinp, dout, weight, N, C, OC)
    matmulBackwardWeight(dweight, dout, inp, N, C, OC)
  }
  if (dbias !== null) {
    if (biasAcc.length < OC) biasAcc = new Float64Array(OC)
    const acc = biasAcc
    acc.fill(0, 0, OC)
    for (let n = 0; n < N; n++) {
      const o = n * OC
      for (let j = 0; j < OC; j++) acc[j] += dout[o + j]!
    }
    for (let j = 0; j < OC; j++) dbias[j] += acc[j]!
  }
}

// dinp (N,C) += dout (N,OC) · weight (OC,C): per chunk of outputs, transpose weight rows to (C, chunk).
function matmulBackwardInput(dinp: FloatArray, dout: FloatArray, weight: FloatArray, N: number, C: number, OC: number): void {
  const wt = scratchLike(weight, C * CHUNK)
  for (let o0 = 0; o0 < OC; o0 += CHUNK) {
    const k = Math.min(CHUNK, OC - o0)
    transposeInto(wt, weight, o0 * C, C, k, C)
    gemmNT(dinp, 0, C, dout, o0, OC, wt, 0, k, N, C, k)
  }
}

// dweight (OC,C) += dout (N,OC)ᵀ · inp (N,C): per chunk of rows, transpose both to (OC, chunk), (C, chunk).
function matmulBackwardWeight(dweight: FloatArray, dout: FloatArray, inp: FloatArray, N: number, C: number, OC: number): void {
  const s = scratchLike(inp, (OC + C) * CHUNK)
  for (let n0 = 0; n0 < N; n0 += CHUNK) {
    const k = Math.min(CHUNK, N - n0)
    transposeInto(s, dout, n0 * OC, OC, k, OC)            // s[0 .. OC·k): (OC, k)
    const it = s.subarray(OC * k) as FloatArray
    transposeInto(it, inp, n0 * C, C, k, C)               // (C, k)
    gemmNT(dweight, 0, C, s, 0, k, it, 0, k, OC, C, k)
  }
}
