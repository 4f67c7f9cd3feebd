// Causal self-attention with grouped-query heads over the fused qkv rows (q heads | k heads | v heads).
// Query head h reads K/V head floor(h / (NH/KVH)); scale 1/sqrt(HS). Work is done in blocks of QB queries
// with the tiled gemmNT of matmul.ts (scores, P·V, and the four backward products), so no T×T buffer exists:
// forward saves only each row's log-sum-exp, backward recomputes the probabilities from it.

import { gemmNT, transposeInto } from './matmul.js'
import type { FloatArray } from './types.js'

const QB = 64   // query rows per block: scratch is (QB, T), the masked waste is under QB/2 keys per row

// ---- scratch, one set per element type (slots: 0 scores/P, 1 dP/dS, 2 Kᵀ or Vᵀ, 3 a transposed block, 4 another)
const pool32: Float32Array[] = []
const pool64: Float64Array[] = []
function scratch(slot: number, like: FloatArray, n: number): FloatArray {
  if (like instanceof Float64Array) {
    if ((pool64[slot]?.length ?? -1) < n) pool64[slot] = new Float64Array(n)
    return pool64[slot]!
  }
  if ((pool32[slot]?.length ?? -1) < n) pool32[slot] = new Float32Array(n)
  return pool32[slot]!
}

/** Where one (sequence, query head) lives: row p of q at buf[q + p·stride], of k and v likewise. */
interface HeadRows { buf: FloatArray; q: number; k: number; v: number; stride: number }

function headRows(buf: FloatArray, base: number, h: number, g: number, NH: number, KVH: number, HS: number): HeadRows {
  return { buf, q: base + h * HS, k: base + (NH + g) * HS, v: base + (NH + KVH + g) * HS, stride: (NH + 2 * KVH) * HS }
}

/** S (rows, keys) = Q[q0, q0+rows) · K[0, keys)ᵀ, unscaled. */
function scoresInto(S: FloatArray, r: HeadRows, q0: number, rows: number, keys: number, HS: number): void {
  S.fill(0, 0, rows * keys)
  gemmNT(S, 0, keys, r.buf, r.q + q0 * r.stride, r.stride, r.buf, r.k, r.stride, rows, keys, HS)
}

/**
 * Queries at positions [p0, p0+nq) attend keys/values [0, position]. Vt: (HS, ≥ p0+nq) with row length vtLd.
 * out row of query p at out[outOff + (p-p0)·ldo]; lse (if given) at lse[lseOff + p - p0].
 */
function attendHead(out: FloatArray, outOff: number, ldo: number, lse: FloatArray | null, lseOff: number,
                    r: HeadRows, Vt: FloatArray, vtLd: number, p0: number, nq: number, HS: number): void {
  const scale = 1 / Math.sqrt(HS)
  for (let b0 = p0; b0 < p0 + nq; b0 += QB) {
    const b1 = Math.min(p0 + nq, b0 + QB), rows = b1 - b0, keys = b1
    const S = scratch(0, r.buf, QB * keys)
    scoresInto(S, r, b0, rows, keys, HS)
    for (let i = 0; i < rows; i++) {
      const p = b0 + i, s = i * keys
      let max = -Infinity
      for (let j = 0; j <= p; j++) { const x = S[s + j]! * scale; if (x > max) max = x }
      let sum = 0
      for (let j = 0; j <= p; j++) { const e = Math.exp(S[s + j]! * scale - max); S[s + j] = e; sum += e }
      const inv = 1 / sum
      for (let j = 0; j <= p; j++) S[s + j]! *= inv
      S.fill(0, s + p + 1, s + keys)
      if (lse !== null) lse[lseOff + p - p0] = max + Math.log(sum)
      const o = outOff + (p - p0) * ldo
      out.fill(0, o, o + HS)
    }
    gemmNT(out, outOff + (b0 - p0) * ldo, ldo, S, 0, keys, Vt, 0, vtLd, rows, HS, keys)
  }
}

// out: (B,T,NH·HS)   lse: (B,NH,T)   qkv: (B,T,QKV)
export function attentionForward(out: FloatArray, lse: FloatArray, qkv: FloatArray, B: number, T: number,
                                 NH: number, KVH: number, HS: number): void {
  attendAll(out, lse, qkv, B, T, 0, T, NH, KVH, HS)
}

// out: (B,Tq,NH·HS)   cache: (B,Tmax,QKV) holding rope'd rows of positions [0, posStart+Tq); later rows unread
export function attentionInference(out: FloatArray, cache: FloatArray, B: number, Tq: number, posStart: number,
                                   Tmax: number, NH: number, KVH: number, HS: number): void {
  if (posStart + Tq > Tmax) throw new Error(`attentionInference: positions up to ${posStart + Tq} exceed the cache (${Tmax})`)
  attendAll(out, null, cache, B, Tq, posStart, Tmax, NH, KVH, HS)
}

// out: (B,Tq,NH·HS)   lse: (B,NH,Tq) or null   src: (B,Tbuf,QKV); queries at positions [posStart, posStart+Tq)
function attendAll(out: FloatArray, lse: FloatArray | null, src: FloatArray, B: number, Tq: number, posStart: number,
                   Tbuf: number, NH: number, KVH: number, HS: number): void {
  const QKV = (NH + 2 * KVH) * HS, group = NH / KVH, C = NH * HS, nk = posStart + Tq
  const Vt = scratch(2, src, HS * nk)
  for (let b = 0; b < B; b++) {
    for (let g = 0; g < KVH; g++) {
      transposeInto(Vt, src, b * Tbuf * QKV + (NH + KVH + g) * HS, QKV, nk, HS)
      for (let h = g * group; h < (g + 1) * group; h++) {
        const r = headRows(src, b * Tbuf * QKV, h, g, NH, KVH, HS)
        attendHead(out, b * Tq * C + h * HS, C, lse, (b * NH + h) * Tq, r, Vt, nk, posStart, Tq, HS)
      }
    }
  }
}

// dqkv: (B,T,QKV) +=   dout: (B,T,NH·HS)   qkv: (B,T,QKV)   lse: (B,NH,T)
// (The forward output is not needed: D = Σ_j p_j·dp_j is recomputed from the probabilities.)
export function attentionBackward(dqkv: FloatArray, dout: FloatArray, qkv: FloatArray, lse: FloatArray,
                                  B: number, T: number, NH: number, KVH: number, HS: number): void {
  const QKV = (NH + 2 * KVH) * HS, group = NH / KVH
  const Kt = scratch(2, qkv, HS * T)
  for (let b = 0; b < B; b++) {
    for (let g = 0; g < KVH; g++) {
      transposeInto(Kt, qkv, b * T * QKV + (NH + g) * HS, QKV, T, HS)
      for (let h = g * group; h < (g + 1) * group; h++) {
        const r = headRows(qkv, b * T * QKV, h, g, NH, KVH, HS)
        const d = headRows(dqkv, b * T * QKV, h, g, NH, KVH, HS)
        for (let b0 = 0; b0 < T; b0 += QB) {
          backwardBlock(d, r, Kt, dout, (b * T + b0) * NH * HS + h * HS, NH * HS, lse, (b * NH + h) * T, b0, Math.min(T, b0 + QB), T, HS)
        }
      }
    }
  }
}

/** Gradients of queries [b0, b1) of one head: dQ of those rows, dK and dV of keys [0, b1). */
function backwardBlock(d: HeadRows, r: HeadRows, Kt: FloatArray, dout: FloatArray, dOff: number, ldd: number,
                       lse: FloatArray, lseOff: number, b0: number, b1: number, T: number, HS: number): void {
  const scale = 1 / Math.sqrt(HS), rows = b1 - b0, keys = b1
  const P = scratch(0, r.buf, QB * keys), dS = scratch(1, r.buf, QB * keys)
  scoresInto(P, r, b0, rows, keys, HS)
  dS.fill(0, 0, rows * keys)
  gemmNT(dS, 0, keys, dout, dOff, ldd, r.buf, r.v, r.stride, rows, keys, HS)          // dP = dO·Vᵀ
  for (let i = 0; i < rows; i++) {
    const p = b0 + i, s = i * keys, l = lse[lseOff + p]!
    let D = 0
    for (let j = 0; j <= p; j++) { const pr = Math.exp(P[s + j]! * scale - l); P[s + j] = pr; D += pr * dS[s + j]! }
    for (let j = 0; j <= p; j++) dS[s + j] = P[s + j]! * (dS[s + j]! - D) * scale
    P.fill(0, s + p + 1, s + keys)
    dS.fill(0, s + p + 1, s + keys)
  }
  gemmNT(d.buf, d.q + b0 * d.stride, d.stride, dS, 0, keys, Kt, 0, T, rows, HS, keys)  // dQ += dS·K
  const At = scratch(3, r.buf, keys * QB), Bt = scratch(4, r.buf, HS * QB)
  transposeInto(At, dS, 0, keys, rows, keys)                                           // dSᵀ: (keys, rows)
  transposeInto(Bt, r.buf, r.q + b0 * r.stride, r.stride, rows, HS)                    // Qᵀ: (HS, rows)
  gemmNT(d.buf, d.k, d.stride, At, 0, rows, Bt, 0, rows, keys, HS, rows)              // dK += dSᵀ·Q
  transposeInto(At, P, 0, keys, rows, keys)                                            // Pᵀ
  transposeInto(Bt, dout, dOff, ldd, rows, HS)                                         // dOᵀ
  gemmNT(d.buf, d.v, d.stride, At, 0, rows, Bt, 0, rows, keys, HS, rows)              // dV += Pᵀ·dO
}
