// Causal GQA attention, forward and backward, on the WebAssembly kernels: the same contract as ../attention.ts
// (blocks of QB queries, only the log-sum-exp saved), but each sequence's qkv (and dout) is copied into module memory
// once and everything after runs there: K and V packed once per K/V head, scores made by gemm_block as query strips
// (attention.wat), softmax and its backward vectorized over 8 queries.

import type { KernelInstance } from './module.js'

const QB = 64   // query rows per block

const up = (x: number, m: number): number => Math.ceil(x / m) * m

/** Module memory layout (float offsets) for one sequence of T tokens. */
function layout(T: number, HS: number, QKV: number, C: number) {
  let at = 0
  const take = (n: number): number => { const o = at; at += up(n, 16); return o }
  const H4 = up(HS, 4), T8 = up(T, 8)
  const L = {
    TMP: take(32),                     // gemm_block's edge tile
    SEQ: take(T * QKV),                // (T, QKV): this sequence's qkv rows
    DO: take(T * C),                   // (T, C): this sequence's dout rows (backward)
    KA: take(up(T, 4) * HS),           // K as A panels (4 keys × HS)
    VA: take(up(T, 4) * HS),           // V as A panels (backward)
    KTA: take(H4 * T),                 // Kᵀ as A panels (4 dims × T keys) (backward)
    VTA: take(H4 * T),                 // Vᵀ as A panels (forward)
    XB: take(QB * HS),                 // the block's Qᵀ or dOᵀ as B panels (HS × 8 queries)
    XA: take(H4 * QB),                 // the block's Qᵀ or dOᵀ as A panels (4 dims × r queries)
    ST: take(QB * T + 64),             // scores, then P: query strips (n × 8), 64 floats of slack
    DPT: take(QB * T + 64),            // dP, then dS: query strips
    PK: take(T8 * QB),                 // P as key panels (r × 8 keys)
    DSK: take(T8 * QB),                // dS as key panels
    OT: take(H4 * QB),                 // Oᵀ or dQᵀ of the block: (HS, r)
    DKT: take(HS * T),                 // dKᵀ, dVᵀ of the K/V head: (HS, T)
    DVT: take(HS * T),
    MAX: take(QB),                     // per query: max score (float32)
    SUM: take(2 * QB),                 // per query: Σ exp (float64)
    LSE: take(QB),                     // per query: log-sum-exp (backward's input)
    total: 0,
  }
  L.total = at
  return L
}
type Layout = ReturnType<typeof layout>

/** Query strips at dst (floats) = A-panelled keys · (rows of X at byte src, stride ld)ᵀ, for queries [0, r), n keys. */
function strips(k: KernelInstance, L: Layout, dst: number, a: number, src: number, ld: number, r: number, n: number,
                HS: number): void {
  k.f32.fill(0, dst, dst + up(r, 8) * n)
  k.x.pack_b_t(src, ld, r, HS, L.XB * 4)
  for (let j = 0; j < r; j += 8) k.x.gemm_block(a * 4, (L.XB + j * HS) * 4, (dst + j * n) * 4, 8, n, 8, HS, L.TMP * 4)
}

/** OT (HS, r) = (A panels of Mᵀ at a, (HS, T) panel stride T)[:, :n] · (query strips at b). The products over keys
 *  read the strips as they are, so their results come out transposed (Oᵀ, dQᵀ, dKᵀ, dVᵀ): the JS loops that move
 *  results out turn them back, O(T·HS) per head next to the O(T²·HS) products. */
function transposedProduct(k: KernelInstance, L: Layout, a: number, b: number, r: number, n: number, T: number, HS: number): void {
  k.f32.fill(0, L.OT, L.OT + HS * r)
  for (let i = 0; i < HS; i += 4) {
    k.x.gemm_block((a + i * T) * 4, b * 4, (L.OT + i * r) * 4, r, Math.min(4, HS - i), r, n, L.TMP * 4)
  }
}

// out: (B,T,NH·HS)   lse: (B,NH,T)   qkv: (B,T,QKV)
export function attentionForwardWasm(k: KernelInstance, out: Float32Array, lse: Float32Array, qkv: Float32Array,
                                     B: number, T: number, NH: number, KVH: number, HS: number): void {
  const QKV = (NH + 2 * KVH) * HS, C = NH * HS, group = NH / KVH, scale = 1 / Math.sqrt(HS)
  const L = layout(T, HS, QKV, C)
  const mem = k.reserve(L.total), sums = new Float64Array(mem.buffer, L.SUM * 4, QB)
  for (let b = 0; b < B; b++) {
    mem.set(qkv.subarray(b * T * QKV, (b + 1) * T * QKV), L.SEQ)
    for (let g = 0; g < KVH; g++) {
      k.x.pack_a_n((L.SEQ + (NH + g) * HS) * 4, QKV, T, HS, L.KA * 4)
      k.x.pack_a_t((L.SEQ + (NH + KVH + g) * HS) * 4, QKV, HS, T, L.VTA * 4)
      for (let h = g * group; h < (g + 1) * group; h++) {
        for (let b0 = 0; b0 < T; b0 += QB) {
          const r = Math.min(QB, T - b0), n = b0 + r
          strips(k, L, L.ST, L.KA, (L.SEQ + b0 * QKV + h * HS) * 4, QKV, r, n, HS)      // Sᵀ = K·Qᵀ
          k.x.attn_softmax_fwd(L.ST * 4, n, r, b0, scale, L.MAX * 4, L.SUM * 4)
          transposedProduct(k, L, L.VTA, L.ST, r, n, T, HS)                            // Oᵀ = Vᵀ·Pᵀ, unnormalized
          for (let i = 0; i < r; i++) {
            const sum = sums[i]!, inv = 1 / sum, o = (b * T + b0 + i) * C + h * HS
            lse[(b * NH + h) * T + b0 + i] = mem[L.MAX + i]! * scale + Math.log(sum)
            for (let d = 0; d < HS; d++) out[o + d] = mem[L.OT + d * r + i]! * inv
          }
        }
      }
    }
  }
}

// dqkv: (B,T,QKV) +=   dout: (B,T,NH·HS)   qkv: (B,T,QKV)   lse: (B,NH,T)
export function attentionBackwardWasm(k: KernelInstance, dqkv: Float32Array, dout: Float32Array, qkv: Float32Array,
                                      lse: Float32Array, B: number, T: number, NH: number, KVH: number, HS: number): void {
  const QKV = (NH + 2 * KVH) * HS, C = NH * HS, group = NH / KVH, scale = 1 / Math.sqrt(HS)
  const L = layout(T, HS, QKV, C)
  const mem = k.reserve(L.total), x = k.x
  for (let b = 0; b < B; b++) {
    mem.set(qkv.subarray(b * T * QKV, (b + 1) * T * QKV), L.SEQ)
    mem.set(dout.subarray(b * T * C, (b + 1) * T * C), L.DO)
    for (let g = 0; g < KVH; g++) {
      const kAt = (L.SEQ + (NH + g) * HS) * 4, vAt = (L.SEQ + (NH + KVH + g) * HS) * 4
      x.pack_a_n(kAt, QKV, T, HS, L.KA * 4)
      x.pack_a_n(vAt, QKV, T, HS, L.VA * 4)
      x.pack_a_t(kAt, QKV, HS, T, L.KTA * 4)
      mem.fill(0, L.DKT, L.DVT + HS * T)
      for (let h = g * group; h < (g + 1) * group; h++) {
        for (let b0 = 0; b0 < T; b0 += QB) {
          const r = Math.min(QB, T - b0), n = b0 + r
          const qAt = (L.SEQ + b0 * QKV + h * HS) * 4, oAt = (L.DO + b0 * C + h * HS) * 4, l0 = (b * NH + h) * T + b0
          strips(k, L, L.ST, L.KA, qAt, QKV, r, n, HS)                                  // Sᵀ = K·Qᵀ
          strips(k, L, L.DPT, L.VA, oAt, C, r, n, HS)                                   // dPᵀ = V·dOᵀ
          mem.set(lse.subarray(l0, l0 + r), L.LSE)
          mem.fill(0, L.LSE + r, L.LSE + up(r, 8))
          x.attn_softmax_bwd(L.ST * 4, L.DPT * 4, n, r, b0, scale, L.LSE * 4)          // Pᵀ, dSᵀ
          transposedProduct(k, L, L.KTA, L.DPT, r, n, T, HS)                           // dQᵀ = Kᵀ·dSᵀ
          for (let i = 0; i < r; i++) {
            const o = (b * T + b0 + i) * QKV + h * HS
            for (let d = 0; d < HS; d++) dqkv[o + d]! += mem[L.OT + d * r + i]!
          }
          x.strips_to_panels(L.ST * 4, n, r, L.PK * 4)
          x.strips_to_panels(L.DPT * 4, n, r, L.DSK * 4)
          x.pack_a_t(oAt, C, HS, r, L.XA * 4)
          x.gemm_block(L.XA * 4, L.PK * 4, L.DVT * 4, T, HS, n, r, L.TMP * 4)           // dVᵀ += dOᵀ·P
          x.pack_a_t(qAt, QKV, HS, r, L.XA * 4)
          x.gemm_block(L.XA * 4, L.DSK * 4, L.DKT * 4, T, HS, n, r, L.TMP * 4)          // dKᵀ += Qᵀ·dS
        }
      }
      for (let t = 0; t < T; t++) {
        const o = (b * T + t) * QKV + (NH + g) * HS, ov = o + KVH * HS
        for (let d = 0; d < HS; d++) {
          dqkv[o + d]! += mem[L.DKT + d * T + t]!
          dqkv[ov + d]! += mem[L.DVT + d * T + t]!
        }
      }
    }
  }
}
