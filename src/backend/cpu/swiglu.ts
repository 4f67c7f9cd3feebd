// SwiGLU activation over the fused MLP row [gate | up]: out = silu(gate)·up, silu(g) = g·sigmoid(g)
// (Llama's act(gate_proj(x)) · up_proj(x)). The matmul before it produces both halves in one (N, 2H) row.

import type { FloatArray } from './types.js'

// out: (N,H)   inp: (N,2H)
export function swigluForward(out: FloatArray, inp: FloatArray, N: number, H: number): void {
  for (let n = 0; n < N; n++) {
    const gi = n * 2 * H, ui = gi + H, o = n * H
    for (let j = 0; j < H; j++) {
      const g = inp[gi + j]!
      out[o + j] = (g / (1 + Math.exp(-g))) * inp[ui + j]!
    }
  }
}

// dinp: (N,2H) +=   dout: (N,H)   inp: (N,2H)
export function swigluBackward(dinp: FloatArray, dout: FloatArray, inp: FloatArray, N: number, H: number): void {
  for (let n = 0; n < N; n++) {
    const gi = n * 2 * H, ui = gi + H, o = n * H
    for (let j = 0; j < H; j++) {
      const g = inp[gi + j]!, u = inp[ui + j]!, d = dout[o + j]!
      const sig = 1 / (1 + Math.exp(-g))
      dinp[gi + j] += d * u * sig * (1 + g * (1 - sig))
      dinp[ui + j] += d * g * sig
    }
  }
}
