// Rotary position embedding, Hugging Face rotate-half: in every q and k head dimension i pairs with i + HS/2 and
// turns by angle (posStart + t)·theta^(-2i/HS). rope_table computes cos/sin per (t, i) in float64 once (the host
// caches it per shape); rope_rotate applies R (forward) or Rᵀ (backward, accumulating) and copies or adds v in the
// same launch, 8 pairs a thread with 16-byte loads where the shape allows (the op is pure bandwidth). Each thread
// reads its elements before writing them and no other thread touches them, so dst may alias src.

#include "common.cuh"

// cosT, sinT: (T, HS/2)
extern "C" __global__ void rope_table(float* cosT, float* sinT, int T, int HS, int posStart, double theta) {
  int half = HS / 2;
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= T * half) return;
  int t = i / half, k = i % half;
  double angle = (double)(posStart + t) * pow(theta, -2.0 * k / HS);
  cosT[i] = (float)cos(angle);
  sinT[i] = (float)sin(angle);
}

/** One thread per unit of W elements (W = 8: llm_ld8's alignment rule holds for every unit; W = 1: any shape). A row's
 *  units are first heads·HS/2/W units of W pairs (x1 at k.., x2 at k + HS/2..), then vcols/W units of v. */
template <int W>
__device__ __forceinline__ void rope_apply(void* dst, const void* src, const float* cosT, const float* sinT, int BT,
                                           int T, int heads, int vcols, int QKV, int HS, int transpose, int accumulate,
                                           int dt) {
  int half = HS / 2, perHead = half / W, rot = heads * perHead, perRow = rot + vcols / W;
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x, n = (long long)BT * perRow;
  if (i >= n) return;
  int row, u;
  if (n <= 0x7fffffffLL) { row = (int)i / perRow; u = (int)i - row * perRow; }   // 32-bit division: the usual case
  else { row = (int)(i / perRow); u = (int)(i % perRow); }
  long long base = (long long)row * QKV;
  float y1[W], y2[W], acc[W];
  if (u >= rot) {   // v: dst = src, or dst += src
    long long at = base + (long long)heads * HS + (long long)(u - rot) * W;
    llm_ldw<W>(src, LLM_BF(1), at, y1);
    if (accumulate) {
      llm_ldw<W>(dst, LLM_BF(0), at, acc);
#pragma unroll
      for (int j = 0; j < W; j++) y1[j] += acc[j];
    }
    llm_stw<W>(dst, LLM_BF(0), at, y1);
    return;
  }
  int h = u / perHead, k = (u - h * perHead) * W, t = row % T;
  long long a = base + (long long)h * HS + k, b = a + half, tk = (long long)t * half + k;
  float x1[W], x2[W], c[W], s[W];
  llm_ldw<W>(src, LLM_BF(1), a, x1);
  llm_ldw<W>(src, LLM_BF(1), b, x2);
  llm_ldw<W>(cosT, 0, tk, c);
  llm_ldw<W>(sinT, 0, tk, s);
  float sign = transpose ? -1.f : 1.f;   // Rᵀ is R with sin negated
#pragma unroll
  for (int j = 0; j < W; j++) {
    float sj = sign * s[j];
    y1[j] = x1[j] * c[j] - x2[j] * sj;
    y2[j] = x2[j] * c[j] + x1[j] * sj;
  }
  if (accumulate) {
    llm_ldw<W>(dst, LLM_BF(0), a, acc);
#pragma unroll
    for (int j = 0; j < W; j++) y1[j] += acc[j];
    llm_ldw<W>(dst, LLM_BF(0), b, acc);
#pragma unroll
    for (int j = 0; j < W; j++) y2[j] += acc[j];
  }
  llm_stw<W>(dst, LLM_BF(0), a, y1);
  llm_stw<W>(dst, LLM_BF(0), b, y2);
}

// dst, src: (BT, QKV) with the rotated heads (NH + KVH) first in each row, then vcols columns of v (KVH·HS, or 0 to
// leave v alone: the in-place forward); cosT, sinT: (T, HS/2).
// transpose = 0: dst = R·src;  transpose = 1: dst (+= if accumulate) Rᵀ·src;  v: dst (+= if accumulate) src.
// vec = 1 (host-checked): HS/2 % 8 == 0, QKV % 8 == 0, dst, src, cosT, sinT 16-byte aligned.  dt bits: 0 dst, 1 src
extern "C" __global__ void rope_rotate(void* dst, const void* src, const float* cosT, const float* sinT, int BT, int T,
                                       int heads, int vcols, int QKV, int HS, int transpose, int accumulate, int vec,
                                       int dt) {
  if (vec) rope_apply<8>(dst, src, cosT, sinT, BT, T, heads, vcols, QKV, HS, transpose, accumulate, dt);
  else rope_apply<1>(dst, src, cosT, sinT, BT, T, heads, vcols, QKV, HS, transpose, accumulate, dt);
}
