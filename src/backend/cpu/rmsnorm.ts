// RMSNorm over the last dimension: out = x·rstd·weight, rstd = 1/sqrt(mean(x²) + eps) (Llama's, no bias,
// no mean subtraction). The sum of squares is accumulated in a float64 local; rstd is saved for backward.

import type { FloatArray } from './types.js'

// out, inp: (N,C)   rstd: (N)   weight: (C)
export function rmsnormForward(out: FloatArray, rstd: FloatArray, inp: FloatArray, weight: FloatArray,
                               N: number, C: number, eps: number): void {
  for (let n = 0; n < N; n++) {
    const x = n * C
    let ss = 0
    for (let c = 0; c < C; c++) { const v = inp[x + c]!; ss += v * v }
    const r = 1 / Math.sqrt(ss / C + eps)
    for (let c = 0; c < C; c++) out[x + c] = inp[x + c]! * r * weight[c]!
    rstd[n] = r
  }
}

// dinp: (N,C) +=   dweight: (C) +=   dout, inp: (N,C)   weight: (C)   rstd: (N)
// With xhat = x·rstd and g = dout·weight:  dx = rstd·(g - xhat·mean(g·xhat)).
export function rmsnormBackward(dinp: FloatArray, dweight: FloatArray, dout: FloatArray, inp: FloatArray,
                                weight: FloatArray, rstd: FloatArray, N: number, C: number): void {
  for (let n = 0; n < N; n++) {
    const x = n * C, r = rstd[n]!
    let dot = 0
    for (let c = 0; c < C; c++) dot += dout[x + c]! * weight[c]! * inp[x + c]! * r
    dot /= C
    for (let c = 0; c < C; c++) {
      const xhat = inp[x + c]! * r
      const g = dout[x + c]!
      dweight[c] += g * xhat
      dinp[x + c] += (g * weight[c]! - xhat * dot) * r
    }
  }
}
