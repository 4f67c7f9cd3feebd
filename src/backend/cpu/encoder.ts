// Token (+ learned position) embedding: out[b,t] = wte[tokens[b,t]] + wpe[posStart + t].
// RoPE models pass wpe = null. Backward scatters dout into the rows that were read (+=, repeated tokens add up).

import type { FloatArray } from './types.js'

// out: (B,T,C)   tokens: (B,T)   wte: (Vp,C)   wpe: (maxT,C) or null
export function encoderForward(out: FloatArray, tokens: Int32Array, wte: FloatArray, wpe: FloatArray | null,
                               B: number, T: number, C: number, posStart: number): void {
  const Vp = Math.floor(wte.length / C)
  if (wpe !== null && (posStart + T) * C > wpe.length) {
    throw new Error(`encoderForward: positions up to ${posStart + T} exceed the position table (${wpe.length / C} rows)`)
  }
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const tok = tokens[b * T + t]!
      if (tok < 0 || tok >= Vp) throw new Error(`encoderForward: token ${tok} at (${b},${t}) is outside [0, ${Vp})`)
      const o = (b * T + t) * C, w = tok * C, p = (posStart + t) * C
      if (wpe === null) {
        for (let c = 0; c < C; c++) out[o + c] = wte[w + c]!
      } else {
        for (let c = 0; c < C; c++) out[o + c] = wte[w + c]! + wpe[p + c]!
      }
    }
  }
}

// dwte: (Vp,C) +=   dwpe: (maxT,C) += or null   dout: (B,T,C)   tokens: (B,T)
export function encoderBackward(dwte: FloatArray, dwpe: FloatArray | null, dout: FloatArray, tokens: Int32Array,
                                B: number, T: number, C: number, posStart = 0): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * C, w = tokens[b * T + t]! * C
      for (let c = 0; c < C; c++) dwte[w + c] += dout[o + c]!
      if (dwpe !== null) {
        const p = (posStart + t) * C
        for (let c = 0; c < C; c++) dwpe[p + c] += dout[o + c]!
      }
    }
  }
}
