// GELU, tanh approximation (GPT-2's and PyTorch's approximate='tanh'):
//   gelu(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). Elementwise; out may alias inp.

import type { FloatArray } from './types.js'

const K = Math.sqrt(2 / Math.PI)
const A = 0.044715

// out, inp: (n)
export function geluForward(out: FloatArray, inp: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = inp[i]!
    out[i] = 0.5 * x * (1 + Math.tanh(K * (x + A * x * x * x)))
  }
}

// dinp: (n) +=   dout, inp: (n)
export function geluBackward(dinp: FloatArray, dout: FloatArray, inp: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = inp[i]!
    const th = Math.tanh(K * (x + A * x * x * x))
    const sech2 = 1 - th * th
    const local = 0.5 * (1 + th) + 0.5 * x * sech2 * K * (1 + 3 * A * x * x)
    dinp[i] += local * dout[i]!
  }
}
