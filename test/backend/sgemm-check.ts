// Shared check of a Gemm implementation (BLAS binding, WebAssembly kernel): every transpose combination, on
// views at nonzero offsets with padded leading dimensions, beta 0 and 1, sizes that are not multiples of any
// tile, against a float64 triple loop. Fails with the worst element.

import type { Gemm, Trans } from '../../src/backend/cpu/gemm.js'
import { assertClose } from './compare.js'

type Make = (n: number) => Float32Array

function pattern(n: number, seed: number, make: Make): Float32Array {
  const a = make(n)
  for (let i = 0; i < n; i++) a[i] = Math.sin(seed * 1.3 + i * 0.7) * 0.5
  return a
}

/** make: how operands are allocated (plain or SharedArrayBuffer-backed Float32Arrays). */
export function checkSgemm(g: Gemm, sizes: [number, number, number][] = [[5, 7, 3], [37, 53, 300], [130, 70, 257]],
                           make: Make = n => new Float32Array(n)): void {
  for (const [M, N, K] of sizes) {
    for (const ta of ['N', 'T'] as Trans[]) {
      for (const tb of ['N', 'T'] as Trans[]) {
        for (const beta of [0, 1]) {
          const lda = (ta === 'N' ? K : M) + 3, ldb = (tb === 'N' ? N : K) + 1, ldc = N + 2
          const aOff = 5, bOff = 7, cOff = 9
          const a = pattern(aOff + (ta === 'N' ? M : K) * lda, 1, make), b = pattern(bOff + (tb === 'N' ? K : N) * ldb, 2, make)
          const c = pattern(cOff + M * ldc + 4, 3, make)
          const want = Float64Array.from(c)
          for (let i = 0; i < M; i++) {
            for (let j = 0; j < N; j++) {
              let s = 0
              for (let k = 0; k < K; k++) {
                const x = a[aOff + (ta === 'N' ? i * lda + k : k * lda + i)]!
                const y = b[bOff + (tb === 'N' ? k * ldb + j : j * ldb + k)]!
                s += x * y
              }
              want[cOff + i * ldc + j] = s + beta * c[cOff + i * ldc + j]!
            }
          }
          g.sgemm(ta, tb, M, N, K, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc)
          // float32 sums of K products of magnitude <= 0.25 (plus the prior): atol covers cancellation
          assertClose(`sgemm ${ta}${tb} M=${M} N=${N} K=${K} beta=${beta}`, c, want, { rtol: 1e-5, atol: 2e-6 * Math.sqrt(K) })
        }
      }
    }
  }
}
