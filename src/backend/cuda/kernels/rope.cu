// Rotary position embedding, Hugging Face rotate-half: in every q and k head dimension i pairs with i + HS/2 and
// turns by angle (posStart + t)·theta^(-2i/HS). rope_table computes cos/sin per (t, i) in float64 once (the host
// caches it per shape); rope_rotate applies R (forward) or Rᵀ (backward, accumulating). v is handled by
// memory.cu's strided_copy. One thread per pair: both elements are read before either is written (in place ok).

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

// dst, src: (BT, QKV) with the rotated heads (NH + KVH) first in each row; cosT, sinT: (T, HS/2)
// transpose = 0: dst = R·src;  transpose = 1: dst (+= if accumulate) Rᵀ·src.   dt bits: 0 dst, 1 src
extern "C" __global__ void rope_rotate(void* dst, const void* src, const float* cosT, const float* sinT,
                                       int BT, int T, int heads, int QKV, int HS, int transpose, int accumulate,
                                       int dt) {
  int half = HS / 2;
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long perRow = (long long)heads * half;
  if (i >= (long long)BT * perRow) return;
  int row = (int)(i / perRow), rem = (int)(i % perRow);
  int h = rem / half, k = rem % half, t = row % T;
  long long a = (long long)row * QKV + (long long)h * HS + k, b = a + half;
  float c = cosT[t * half + k], s = sinT[t * half + k];
  float x1 = llm_ld(src, LLM_BF(1), a), x2 = llm_ld(src, LLM_BF(1), b);
  float y1 = transpose ? x1 * c + x2 * s : x1 * c - x2 * s;
  float y2 = transpose ? x2 * c - x1 * s : x2 * c + x1 * s;
  if (accumulate) { y1 += llm_ld(dst, LLM_BF(0), a); y2 += llm_ld(dst, LLM_BF(0), b); }
  llm_st(dst, LLM_BF(0), a, y1);
  llm_st(dst, LLM_BF(0), b, y2);
}
