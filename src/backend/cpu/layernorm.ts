// LayerNorm over the last dimension: out = (x - mean)·rstd·weight + bias, rstd = 1/sqrt(var + eps) with the
// biased variance (PyTorch's). Row statistics are accumulated in float64 locals; mean and rstd are saved.

import type { FloatArray } from './types.js'

// out, inp: (N,C)   mean, rstd: (N)   weight, bias: (C)
export function layernormForward(out: FloatArray, mean: FloatArray, rstd: FloatArray, inp: FloatArray,
                                 weight: FloatArray, bias: FloatArray, N: number, C: number, eps: number): void {
  for (let n = 0; n < N; n++) {
    const x = n * C
    let s = 0
    for (let c = 0; c < C; c++) s += inp[x + c]!
    const m = s / C
    let v = 0
    for (let c = 0; c < C; c++) { const d = inp[x + c]! - m; v += d * d }
    const r = 1 / Math.sqrt(v / C + eps)
    for (let c = 0; c < C; c++) out[x + c] = (inp[x + c]! - m) * r * weight[c]! + bias[c]!
    mean[n] = m
    rstd[n] = r
  }
}

// dinp: (N,C) +=   dweight, dbias: (C) +=   dout, inp: (N,C)   weight: (C)   mean, rstd: (N)
export function layernormBackward(dinp: FloatArray, dweight: FloatArray, dbias: FloatArray, dout: FloatArray,
                                  inp: FloatArray, weight: FloatArray, mean: FloatArray, rstd: FloatArray,
                                  N: number, C: number): void {
  for (let n = 0; n < N; n++) {
    const x = n * C, m = mean[n]!, r = rstd[n]!
    // two row reductions: mean(dnorm) and mean(dnorm · norm), dnorm = dout·weight
    let dnormMean = 0, dnormNormMean = 0
    for (let c = 0; c < C; c++) {
      const norm = (inp[x + c]! - m) * r
      const dnorm = dout[x + c]! * weight[c]!
      dnormMean += dnorm
      dnormNormMean += dnorm * norm
    }
    dnormMean /= C
    dnormNormMean /= C
    for (let c = 0; c < C; c++) {
      const norm = (inp[x + c]! - m) * r
      const g = dout[x + c]!
      dbias[c] += g
      dweight[c] += norm * g
      dinp[x + c] += (g * weight[c]! - dnormMean - norm * dnormNormMean) * r
    }
  }
}
