// RMSNorm (Llama's: no mean, no bias), one warp per row, statistics in f32. Backward: dinp += per row; dweight
// is summed over the rows a block visits in shared memory and left in `partial` (G, C) for memory.cu's
// reduce_partials to ADD into the gradient.

#include "common.cuh"

// out, inp: (N,C)   rstd: (N)   weight: (C)   dt bits: 0 out, 1 rstd, 2 inp, 3 weight
extern "C" __global__ void rmsnorm_forward(void* out, void* rstd, const void* inp, const void* weight,
                                           int N, int C, float eps, int dt, int vec) {
  int lane = threadIdx.x & 31, row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= N) return;
  long long x = (long long)row * C;
  float q = 0.f;
  if (vec) {
    for (int c = lane * 8; c < C; c += 256) {
      float v[8];
      llm_ld8(inp, LLM_BF(2), x + c, v);
      for (int k = 0; k < 8; k++) q += v[k] * v[k];
    }
  } else {
    for (int c = lane; c < C; c += 32) { float v = llm_ld(inp, LLM_BF(2), x + c); q += v * v; }
  }
  float r = 1.f / sqrtf(llm_warp_sum(q) / C + eps);
  if (vec) {
    for (int c = lane * 8; c < C; c += 256) {
      float v[8], w[8];
      llm_ld8(inp, LLM_BF(2), x + c, v);
      llm_ld8(weight, LLM_BF(3), c, w);
      for (int k = 0; k < 8; k++) v[k] = v[k] * r * w[k];
      llm_st8(out, LLM_BF(0), x + c, v);
    }
  } else {
    for (int c = lane; c < C; c += 32) {
      llm_st(out, LLM_BF(0), x + c, llm_ld(inp, LLM_BF(2), x + c) * r * llm_ld(weight, LLM_BF(3), c));
    }
  }
  if (lane == 0) llm_st(rstd, LLM_BF(1), row, r);
}

/** One row of rmsnorm_backward (one warp); W as in layernorm.cu's layernorm_backward_row. */
template <int W>
__device__ __forceinline__ void rmsnorm_backward_row(void* dinp, const void* dout, const void* inp, const void* weight,
                                                     int row, int C, float r, float* acc, int dt) {
  int lane = threadIdx.x & 31;
  long long x = (long long)row * C;
  float dot = 0.f;
  for (int c = lane * W; c < C; c += 32 * W) {
    float g[W], v[W], w[W];
    llm_ldw<W>(dout, LLM_BF(1), x + c, g); llm_ldw<W>(inp, LLM_BF(2), x + c, v); llm_ldw<W>(weight, LLM_BF(3), c, w);
    for (int k = 0; k < W; k++) dot += g[k] * w[k] * v[k] * r;
  }
  dot = llm_warp_sum(dot) / C;
  for (int c = lane * W; c < C; c += 32 * W) {
    float g[W], v[W], w[W], d[W];
    llm_ldw<W>(dout, LLM_BF(1), x + c, g); llm_ldw<W>(inp, LLM_BF(2), x + c, v);
    llm_ldw<W>(weight, LLM_BF(3), c, w); llm_ldw<W>(dinp, LLM_BF(0), x + c, d);
    for (int k = 0; k < W; k++) {
      float xhat = v[k] * r;
      d[k] += (g[k] * w[k] - xhat * dot) * r;
      atomicAdd(&acc[c + k], g[k] * xhat);
    }
    llm_stw<W>(dinp, LLM_BF(0), x + c, d);
  }
}

// dinp: (N,C) +=   partial: (gridDim.x, C) per-block dweight   dout, inp: (N,C)   weight: (C)   rstd: (N)
// dynamic shared memory: C floats.   With xhat = x·rstd, g = dout·weight: dx = rstd·(g - xhat·mean(g·xhat)).
// dt bits: 0 dinp, 1 dout, 2 inp, 3 weight, 4 rstd
extern "C" __global__ void rmsnorm_backward(void* dinp, float* partial, const void* dout, const void* inp,
                                            const void* weight, const void* rstd, int N, int C, int dt, int vec) {
  extern __shared__ float acc[];   // dweight (C)
  for (int c = threadIdx.x; c < C; c += blockDim.x) acc[c] = 0.f;
  __syncthreads();
  int warps = blockDim.x >> 5;
  for (int row = blockIdx.x * warps + (threadIdx.x >> 5); row < N; row += gridDim.x * warps) {
    float r = llm_ld(rstd, LLM_BF(4), row);
    if (vec) rmsnorm_backward_row<8>(dinp, dout, inp, weight, row, C, r, acc, dt);
    else rmsnorm_backward_row<1>(dinp, dout, inp, weight, row, C, r, acc, dt);
  }
  __syncthreads();
  for (int c = threadIdx.x; c < C; c += blockDim.x) partial[(long long)blockIdx.x * C + c] = acc[c];
}
