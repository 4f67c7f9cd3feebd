// Rotary position embedding, Hugging Face rotate-half convention: in every q and k head, dimension i pairs
// with i + HS/2 and rotates by angle (posStart + t)·theta^(-2i/HS) — the TOKEN's position, never the head
// index. v passes through. Angles and cos/sin are computed in float64 once per position per call.

import type { FloatArray } from './types.js'

let cosBuf = new Float64Array(0)
let sinBuf = new Float64Array(0)

/** cos/sin for one position: (HS/2) each. */
function fillAngles(pos: number, half: number, HS: number, theta: number): void {
  if (cosBuf.length < half) { cosBuf = new Float64Array(half); sinBuf = new Float64Array(half) }
  for (let i = 0; i < half; i++) {
    const angle = pos * Math.pow(theta, (-2 * i) / HS)
    cosBuf[i] = Math.cos(angle)
    sinBuf[i] = Math.sin(angle)
  }
}

// out, qkv: (B,T,QKV) with QKV = (NH + 2·KVH)·HS; out may alias qkv
export function ropeForward(out: FloatArray, qkv: FloatArray, B: number, T: number, NH: number, KVH: number,
                            HS: number, theta: number, posStart: number): void {
  if (HS % 2 !== 0) throw new Error(`ropeForward: head size ${HS} must be even`)
  const half = HS / 2, QKV = (NH + 2 * KVH) * HS, rotated = (NH + KVH) * HS
  for (let t = 0; t < T; t++) {
    fillAngles(posStart + t, half, HS, theta)
    for (let b = 0; b < B; b++) {
      const row = (b * T + t) * QKV
      for (let h0 = row; h0 < row + rotated; h0 += HS) {
        for (let i = 0; i < half; i++) {
          const x1 = qkv[h0 + i]!, x2 = qkv[h0 + i + half]!, c = cosBuf[i]!, s = sinBuf[i]!
          out[h0 + i] = x1 * c - x2 * s
          out[h0 + i + half] = x2 * c + x1 * s
        }
      }
      if (out !== qkv) for (let j = row + rotated; j < row + QKV; j++) out[j] = qkv[j]!
    }
  }
}

// dqkv, dout: (B,T,QKV). dqkv += Rᵀ·dout on q and k heads, += dout on v heads.
export function ropeBackward(dqkv: FloatArray, dout: FloatArray, B: number, T: number, NH: number, KVH: number,
                             HS: number, theta: number, posStart: number): void {
  if (HS % 2 !== 0) throw new Error(`ropeBackward: head size ${HS} must be even`)
  const half = HS / 2, QKV = (NH + 2 * KVH) * HS, rotated = (NH + KVH) * HS
  for (let t = 0; t < T; t++) {
    fillAngles(posStart + t, half, HS, theta)
    for (let b = 0; b < B; b++) {
      const row = (b * T + t) * QKV
      for (let h0 = row; h0 < row + rotated; h0 += HS) {
        for (let i = 0; i < half; i++) {
          const g1 = dout[h0 + i]!, g2 = dout[h0 + i + half]!, c = cosBuf[i]!, s = sinBuf[i]!
          dqkv[h0 + i] += g1 * c + g2 * s
          dqkv[h0 + i + half] += g2 * c - g1 * s
        }
      }
      for (let j = row + rotated; j < row + QKV; j++) dqkv[j] += dout[j]!
    }
  }
}
