// The fast GEMM hook of the CPU backend: a Gemm is a row-major sgemm (native BLAS or our WebAssembly kernel);
// CpuBackend runs each matmul/attention op inside withGemm(its kernel), and matmul.ts asks tryGemm* first. float32
// operands with enough work go to the fast kernel; everything else (Float64Array in the finite-difference
// tests, tiny products where a call costs more than the loop) stays on the pure-JS reference kernel.

import type { Trans } from './blas.js'
import type { FloatArray } from './types.js'

export type { Trans } from './blas.js'

export interface Gemm {
  /** Products with fewer output rows than this are faster on the JS loops (the wasm kernel's 4-row tiles). */
  readonly minRows?: number
  /**
   * c[cOff + i·ldc + j] = Σ_k op(A)[i,k]·op(B)[k,j] + beta·c[...], op(A): (M,K), op(B): (K,N). A stored (M,K)
   * with row stride lda for 'N', (K,M) for 'T'; B likewise (K,N) for 'N', (N,K) for 'T'. beta is 0 or 1.
   */
  sgemm(ta: Trans, tb: Trans, M: number, N: number, K: number, a: Float32Array, aOff: number, lda: number,
        b: Float32Array, bOff: number, ldb: number, beta: number, c: Float32Array, cOff: number, ldc: number): void
}

/** Multiply-adds below which a native/wasm call costs more than the JS loop (tests lower it to 0). */
export const DEFAULT_MIN_WORK = 8 * 1024

let active: Gemm | null = null
let minWork = DEFAULT_MIN_WORK

/** Runs fn with g as the kernel of every GEMM inside it (null: pure JS), then restores the previous one. */
export function withGemm<T>(g: Gemm | null, gemmMinWork: number, fn: () => T): T {
  const prev = active, prevMin = minWork
  active = g
  minWork = gemmMinWork
  try {
    return fn()
  } finally {
    active = prev
    minWork = prevMin
  }
}

function usable(...xs: (FloatArray | null)[]): boolean {
  for (const x of xs) if (x !== null && !(x instanceof Float32Array)) return false
  return true
}

/** out[oOff + i·ldo + j] += Σ_k a[aOff + i·lda + k]·b[bOff + j·ldb + k] on the fast kernel; false: caller's job. */
export function tryGemmNT(out: FloatArray, oOff: number, ldo: number, a: FloatArray, aOff: number, lda: number,
                          b: FloatArray, bOff: number, ldb: number, M: number, NN: number, K: number): boolean {
  if (active === null || M * NN * K < minWork || M < (active.minRows ?? 0) || !usable(out, a, b)) return false
  const f = (x: FloatArray): Float32Array => x as Float32Array
  active.sgemm('N', 'T', M, NN, K, f(a), aOff, lda, f(b), bOff, ldb, 1, f(out), oOff, ldo)
  return true
}

// out: (N,OC) = inp: (N,C) · weight: (OC,C)ᵀ + bias: (OC) or null
export function tryMatmulForward(out: FloatArray, inp: FloatArray, weight: FloatArray, bias: FloatArray | null,
                                 N: number, C: number, OC: number): boolean {
  if (active === null || N * C * OC < minWork || N < (active.minRows ?? 0) || !usable(out, inp, weight, bias)) return false
  if (bias !== null) for (let n = 0; n < N; n++) out.set(bias.subarray(0, OC), n * OC)
  active.sgemm('N', 'T', N, OC, C, inp as Float32Array, 0, C, weight as Float32Array, 0, C, bias === null ? 0 : 1,
    out as Float32Array, 0, OC)
  return true
}

// dinp: (N,C) += dout·weight, or null   dweight: (OC,C) += doutᵀ·inp   dout: (N,OC)   inp: (N,C)   weight: (OC,C)
// (dbias stays with the caller: a float64 column sum is cheap and exact)
export function tryMatmulBackwardProducts(dinp: FloatArray | null, dweight: FloatArray, dout: FloatArray,
                                          inp: FloatArray, weight: FloatArray, N: number, C: number, OC: number): boolean {
  if (active === null || N * C * OC < minWork || N < (active.minRows ?? 0)) return false
  if (!usable(dinp, dweight, dout, inp, weight)) return false
  const f = (x: FloatArray): Float32Array => x as Float32Array
  if (dinp !== null) active.sgemm('N', 'N', N, C, OC, f(dout), 0, OC, f(weight), 0, C, 1, f(dinp), 0, C)
  active.sgemm('T', 'N', OC, C, N, f(dout), 0, OC, f(inp), 0, C, 1, f(dweight), 0, C)
  return true
}
