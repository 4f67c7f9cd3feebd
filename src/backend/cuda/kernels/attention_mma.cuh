// Tile primitives of the tensor-core flash attention (attention_mma.cu): 64-row bf16 tiles in shared memory loaded
// with cp.async, mma.sync m16n8k16 products of a warp's 16-row fragments against them, the online-softmax helpers,
// and the bf16 stores of a warp's output and gradient rows (with RoPE's transposed rotation when given the tables).
// Fragment layouts: common.cuh.
#pragma once

#include "common.cuh"

#define FA_ROWS 64     // rows per block and per streamed tile
// 16 bytes of padding per shared row: the rows' banks shift, so ldmatrix reads are conflict-free
#define FA_PAD 8       // bf16 of padding per shared row
#define FA_LOG2E 1.4426950408889634f
#define FA_LN2 0.6931471805599453f

/** Starts copying rows [r0, r0+64) of a (rows, ld) bf16 matrix at `base` (D columns) into sh[64][D+PAD] with
 *  cp.async (complete after the caller's commit + wait + __syncthreads); rows >= rEnd are zeroed directly. */
template <int D>
__device__ __forceinline__ void fa_load(llm_bf16* sh, const llm_bf16* base, long long ld, int r0, int rEnd) {
  for (int i = threadIdx.x; i < FA_ROWS * (D / 8); i += blockDim.x) {
    int r = i / (D / 8), c = (i % (D / 8)) * 8;
    llm_bf16* dst = sh + r * (D + FA_PAD) + c;
    if (r0 + r < rEnd) llm_cp_async16(dst, base + (long long)(r0 + r) * ld + c);
    else *(uint4*)dst = make_uint4(0u, 0u, 0u, 0u);
  }
}

/** A fragments (16 rows from `row0`, all D columns) of a shared tile: f[kk] covers columns 16kk..16kk+15. */
template <int D>
__device__ __forceinline__ void fa_afrags(unsigned (*f)[4], const llm_bf16* sh, int row0) {
  int lane = threadIdx.x & 31;
  for (int kk = 0; kk < D / 16; kk++) llm_ldmatrix_x4(f[kk], sh + (row0 + (lane & 15)) * (D + FA_PAD) + kk * 16 + (lane >> 4) * 8);
}

/** acc[j] (16 x 8N, N n8 tiles) = A (16 x D, fragments) · sh[0..8N)ᵀ: sh rows are the 8N columns of the result. */
template <int D, int N = 8>
__device__ __forceinline__ void fa_mul_bt(float (*acc)[4], const unsigned (*a)[4], const llm_bf16* sh) {
  int lane = threadIdx.x & 31, m = lane >> 3;
  for (int j = 0; j < N; j++) for (int e = 0; e < 4; e++) acc[j][e] = 0.f;
  for (int kk = 0; kk < D / 16; kk++) {
    for (int jj = 0; jj < N / 2; jj++) {
      unsigned b[4];
      llm_ldmatrix_x4(b, sh + (16 * jj + (m >> 1) * 8 + (lane & 7)) * (D + FA_PAD) + 16 * kk + (m & 1) * 8);
      llm_mma_bf16(acc[2 * jj], a[kk], b);
      llm_mma_bf16(acc[2 * jj + 1], a[kk], b + 2);
    }
  }
}

/** out[t] (16 x D, D/8 n8 tiles) += A (16 x 16, fragments) · sh rows 16kk..16kk+15 (16 x D). */
template <int D>
__device__ __forceinline__ void fa_mma_rows(float (*out)[4], const unsigned* a, const llm_bf16* sh, int kk) {
  int lane = threadIdx.x & 31, m = lane >> 3;
  for (int nn = 0; nn < D / 16; nn++) {
    unsigned b[4];
    llm_ldmatrix_x4_trans(b, sh + (16 * kk + (m & 1) * 8 + (lane & 7)) * (D + FA_PAD) + 16 * nn + (m >> 1) * 8);
    llm_mma_bf16(out[2 * nn], a, b);
    llm_mma_bf16(out[2 * nn + 1], a, b + 2);
  }
}

/** out[t] (16 x D) += P (16 x 8N, as the C fragments p[N]) · sh (8N x D). */
template <int D, int N = 8>
__device__ __forceinline__ void fa_mul_acc(float (*out)[4], const float (*p)[4], const llm_bf16* sh) {
  for (int kk = 0; kk < N / 2; kk++) {
    unsigned a[4] = { llm_pack2(p[2 * kk][0], p[2 * kk][1]), llm_pack2(p[2 * kk][2], p[2 * kk][3]),
                      llm_pack2(p[2 * kk + 1][0], p[2 * kk + 1][1]), llm_pack2(p[2 * kk + 1][2], p[2 * kk + 1][3]) };
    fa_mma_rows<D>(out, a, sh, kk);
  }
}

/** out[t] (16 x D) = rows m0..m0+15 of A · sh (64 x D), where A (64 x 64) is stored TRANSPOSED in st[64][64+PAD]
 *  (ldmatrix .trans turns st's 8x8 blocks into A's fragments). */
template <int D>
__device__ __forceinline__ void fa_mul_trans(float (*out)[4], const llm_bf16* st, int m0, const llm_bf16* sh) {
  int lane = threadIdx.x & 31, m = lane >> 3;
  for (int t = 0; t < D / 8; t++) for (int e = 0; e < 4; e++) out[t][e] = 0.f;
  for (int kk = 0; kk < 4; kk++) {
    unsigned a[4];   // matrices: (rows m0+0..7 | m0+8..15) x (columns 16kk+0..7 | 16kk+8..15), column-major order
    llm_ldmatrix_x4_trans(a, st + (16 * kk + (m >> 1) * 8 + (lane & 7)) * (FA_ROWS + FA_PAD) + m0 + (m & 1) * 8);
    fa_mma_rows<D>(out, a, sh, kk);
  }
}

__device__ __forceinline__ float fa_quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}
__device__ __forceinline__ float fa_quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

/** One online-softmax step of a row tile (rows A and B = A + 8 of this thread): given the tile's scores s (16 x 8N,
 *  log2 units, masked) and this thread's maxima mx0/mx1 over them, moves the running maxima m and sums l to the tile,
 *  rescales o (16 x D) to match and turns s into the probabilities exp2(s - m). */
template <int D, int N = 8>
__device__ __forceinline__ void fa_online(float (*s)[4], float (*o)[4], float& m0, float& m1, float& l0, float& l1, float mx0,
                                          float mx1) {
  float n0 = fmaxf(m0, fa_quad_max(mx0)), n1 = fmaxf(m1, fa_quad_max(mx1));
  float a0 = exp2f(m0 - n0), a1 = exp2f(m1 - n1);
  l0 *= a0;
  l1 *= a1;
  for (int t = 0; t < D / 8; t++) { o[t][0] *= a0; o[t][1] *= a0; o[t][2] *= a1; o[t][3] *= a1; }
  for (int j = 0; j < N; j++) {
    for (int e = 0; e < 2; e++) {
      s[j][e] = exp2f(s[j][e] - n0);
      s[j][2 + e] = exp2f(s[j][2 + e] - n1);
      l0 += s[j][e];
      l1 += s[j][2 + e];
    }
  }
  m0 = n0;
  m1 = n1;
}

/** dst[row][col..col+1] (+)= (x, y) in bf16 at a 4-byte-aligned pair. */
__device__ __forceinline__ void fa_store2(llm_bf16* p, float x, float y, bool accumulate) {
  if (accumulate) { unsigned old = *(unsigned*)p; x += llm_bf2f((llm_bf16)(old & 0xffffu)); y += llm_bf2f((llm_bf16)(old >> 16)); }
  *(unsigned*)p = llm_pack2(x, y);
}

/** The forward's end for one row tile: out rows rowA and rowA + 8 of head h (those below T) = o / l in bf16, and
 *  their log-sum-exp (natural log) from the running maxima m and the partial sums l (summed over the quad here). */
template <int D>
__device__ __forceinline__ void fa_store_out(llm_bf16* out, float* lse, const float (*o)[4], float m0, float m1, float l0,
                                             float l1, int rowA, int b, int h, int T, int NH) {
  const int tq = threadIdx.x & 3;
  l0 = fa_quad_sum(l0);
  l1 = fa_quad_sum(l1);
  const int rows[2] = { rowA, rowA + 8 };
  const float inv[2] = { 1.f / l0, 1.f / l1 }, mm[2] = { m0, m1 }, ll[2] = { l0, l1 };
  for (int r = 0; r < 2; r++) {
    if (rows[r] >= T) continue;
    llm_bf16* dst = out + ((long long)b * T + rows[r]) * NH * D + h * D;
    for (int t = 0; t < D / 8; t++) fa_store2(dst + 8 * t + 2 * tq, o[t][2 * r] * inv[r], o[t][2 * r + 1] * inv[r], false);
    if (tq == 0) lse[((long long)b * NH + h) * T + rows[r]] = (mm[r] + log2f(ll[r])) * FA_LN2;
  }
}

/** One row of a q or k gradient (this thread's columns 8t + 2tq + e of the C fragments, c[t][2r + e]) times `mul`,
 *  stored (+=) at dst; with cosT/sinT (T, D/2) the transposed RoPE rotation of position `pos` is applied first
 *  (the gradient before RoPE: column i pairs with i + D/2, which this thread also holds, in tile t + D/16). */
template <int D>
__device__ __forceinline__ void fa_store_row(llm_bf16* dst, const float (*c)[4], int r, float mul, const float* cosT,
                                             const float* sinT, int pos, bool accumulate) {
  const int tq = threadIdx.x & 3;
  if (cosT == nullptr) {
    for (int t = 0; t < D / 8; t++) fa_store2(dst + 8 * t + 2 * tq, c[t][2 * r] * mul, c[t][2 * r + 1] * mul, accumulate);
    return;
  }
  const float* cs = cosT + (long long)pos * (D / 2);
  const float* sn = sinT + (long long)pos * (D / 2);
  for (int t = 0; t < D / 16; t++) {
    const int i = 8 * t + 2 * tq;
    float lo[2], hi[2];
    for (int e = 0; e < 2; e++) {
      float x1 = c[t][2 * r + e] * mul, x2 = c[t + D / 16][2 * r + e] * mul, cv = cs[i + e], sv = sn[i + e];
      lo[e] = x1 * cv + x2 * sv;   // Rᵀ: (x1, x2) -> (x1 c + x2 s, x2 c - x1 s)
      hi[e] = x2 * cv - x1 * sv;
    }
    fa_store2(dst + i, lo[0], lo[1], accumulate);
    fa_store2(dst + i + D / 2, hi[0], hi[1], accumulate);
  }
}

/** After the copies of the next tile were started (`ahead`): commits them and waits for all but them; else waits for
 *  all (the block still needs __syncthreads). */
__device__ __forceinline__ void fa_wait_current(bool ahead) {
  if (ahead) {
    llm_cp_async_commit();
    llm_cp_async_wait<1>();
  } else {
    llm_cp_async_wait<0>();
  }
}

/** Step kt of a query block's walk over key tiles 0..last, K/V tiles double-buffered at Ks/Vs + i·2·TILE: starts
 *  loading tile kt+1 into the other buffer (free: the previous step ended with a barrier), waits for tile kt and
 *  syncs the block. Returns tile kt's buffer offset. */
template <int D>
__device__ __forceinline__ int fa_next_kv(llm_bf16* Ks, llm_bf16* Vs, const llm_bf16* seq, int kt, int last, int NH, int KVH,
                                          int g, int T) {
  const int TILE = FA_ROWS * (D + FA_PAD), QKV = (NH + 2 * KVH) * D, cur = (kt & 1) * 2 * TILE;
  if (kt < last) {
    fa_load<D>(Ks + (2 * TILE - cur), seq + (NH + g) * D, QKV, (kt + 1) * FA_ROWS, T);
    fa_load<D>(Vs + (2 * TILE - cur), seq + (NH + KVH + g) * D, QKV, (kt + 1) * FA_ROWS, T);
  }
  fa_wait_current(kt < last);
  __syncthreads();
  return cur;
}

/** s (16 x 8N scores of rows rowA / rowB = rowA + 8 against keys key0..key0+8N-1, C fragments) *= sl2; keys after
 *  the row are -inf when `mask` (the diagonal tile); returns the two rows' maxima over this thread's entries. */
template <int N = 8>
__device__ __forceinline__ void fa_scale_mask(float (*s)[4], float sl2, bool mask, int key0, int rowA, float& mx0, float& mx1) {
  const int tq = threadIdx.x & 3;
  mx0 = -LLM_INF;
  mx1 = -LLM_INF;
  for (int j = 0; j < N; j++) {
    for (int e = 0; e < 2; e++) {
      int key = key0 + 8 * j + 2 * tq + e;
      s[j][e] = mask && key > rowA ? -LLM_INF : s[j][e] * sl2;
      s[j][2 + e] = mask && key > rowA + 8 ? -LLM_INF : s[j][2 + e] * sl2;
      mx0 = fmaxf(mx0, s[j][e]);
      mx1 = fmaxf(mx1, s[j][2 + e]);
    }
  }
}

/** The dQ kernels' probability gradients: s (S: rows rowA and rowA + 8 of this thread against keys key0..key0+8N-1,
 *  C fragments, unscaled) becomes dS = P·(dP - D) with P = exp2(s·sl2 - L), from dp (dP) and the rows' log2-unit lse
 *  L0/L1 and D values D0/D1 (the scale is applied at the end); with `mask` (the diagonal tile), keys after a row give 0. */
template <int N>
__device__ __forceinline__ void fa_dscores(float (*s)[4], const float (*dp)[4], int key0, int rowA, bool mask, float L0, float L1,
                                           float D0, float D1, float sl2) {
  const int tq = threadIdx.x & 3;
  for (int j = 0; j < N; j++) {
    for (int e = 0; e < 2; e++) {
      int key = key0 + 8 * j + 2 * tq + e;
      float p0 = mask && key > rowA ? 0.f : exp2f(s[j][e] * sl2 - L0);
      float p1 = mask && key > rowA + 8 ? 0.f : exp2f(s[j][2 + e] * sl2 - L1);
      s[j][e] = p0 * (dp[j][e] - D0);
      s[j][2 + e] = p1 * (dp[j][2 + e] - D1);
    }
  }
}

/** The dK/dV kernels' probabilities and their gradients, transposed: s (Sᵀ: rows keyA and keyA + 8 of this thread
 *  against queries c0..c0+8N-1 of query tile qt, C fragments, unscaled) becomes P = exp2(s·sl2 - lse) and dp (dPᵀ)
 *  becomes dS = P·(dP - D), from the tile's lse and D rows L and Dv; with `mask` (the diagonal tile, or the last one),
 *  keys after a query and queries past T give 0. */
template <int N>
__device__ __forceinline__ void fa_probs_t(float (*s)[4], float (*dp)[4], int c0, int qt, int keyA, bool mask, int T, const float* L,
                                           const float* Dv, float sl2) {
  const int tq = threadIdx.x & 3, keyB = keyA + 8;
  for (int j = 0; j < N; j++) {
    for (int e = 0; e < 2; e++) {
      int c = c0 + 8 * j + 2 * tq + e, q = qt * FA_ROWS + c;
      float lc = L[c] * FA_LOG2E;
      float p0 = mask && (keyA > q || q >= T) ? 0.f : exp2f(s[j][e] * sl2 - lc);
      float p1 = mask && (keyB > q || q >= T) ? 0.f : exp2f(s[j][2 + e] * sl2 - lc);
      s[j][e] = p0;
      s[j][2 + e] = p1;
      dp[j][e] = p0 * (dp[j][e] - Dv[c]);
      dp[j][2 + e] = p1 * (dp[j][2 + e] - Dv[c]);
    }
  }
}

/** Starts copying the lse and D values of query rows [q0, q0+64) of one head into Ls/Ds (rows >= T: zero). */
__device__ __forceinline__ void fa_load_stats(float* Ls, float* Ds, const float* lse, const float* Dd, long long st, int q0, int T) {
  for (int i = threadIdx.x; i < 2 * FA_ROWS; i += blockDim.x) {
    int r = i % FA_ROWS, q = q0 + r;
    float* dst = (i < FA_ROWS ? Ls : Ds) + r;
    if (q < T) llm_cp_async4(dst, (i < FA_ROWS ? lse : Dd) + st + q);
    else *dst = 0.f;
  }
}

// The kernels' parameter lists (attention_mma.cu; kernels.ts reads them from here too).
#define FA_FWD_PARAMS llm_bf16* out, float* lse, const llm_bf16* qkv, int T, int NH, int KVH, float scale
#define FA_FWD_ARGS out, lse, qkv, T, NH, KVH, scale
#define FA_BWD_PARAMS llm_bf16* dqkv, const llm_bf16* dout, const llm_bf16* qkv, const float* lse, const float* Dd, int T, int NH, int KVH, float scale, int accumulate, const float* cosT, const float* sinT
#define FA_BWD_ARGS dqkv, dout, qkv, lse, Dd, T, NH, KVH, scale, accumulate, cosT, sinT
#define FA_BWDQ_PARAMS llm_bf16* dqkv, const llm_bf16* dout, const llm_bf16* qkv, const float* lse, const float* Dd, int T, int NH, int KVH, float scale, int accumulate, const float* cosT, const float* sinT, float* dqacc
