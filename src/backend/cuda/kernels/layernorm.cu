// LayerNorm (biased variance, PyTorch's), one warp per row, statistics in f32. Backward: dinp += per row;
// dweight/dbias are summed over the rows a block visits in shared memory and left in `partial` (G, 2C) for
// memory.cu's reduce_partials to ADD into the gradients (so the accumulate convention holds).

#include "common.cuh"

// out, inp: (N,C)   mean, rstd: (N)   weight, bias: (C)
// dt bits: 0 out, 1 mean, 2 rstd, 3 inp, 4 weight, 5 bias
extern "C" __global__ void layernorm_forward(void* out, void* mean, void* rstd, const void* inp, const void* weight,
                                             const void* bias, int N, int C, float eps, int dt, int vec) {
  int lane = threadIdx.x & 31, row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= N) return;
  long long x = (long long)row * C;
  float s = 0.f;
  if (vec) {
    for (int c = lane * 8; c < C; c += 256) {
      float v[8];
      llm_ld8(inp, LLM_BF(3), x + c, v);
      for (int k = 0; k < 8; k++) s += v[k];
    }
  } else {
    for (int c = lane; c < C; c += 32) s += llm_ld(inp, LLM_BF(3), x + c);
  }
  float m = llm_warp_sum(s) / C, q = 0.f;
  if (vec) {
    for (int c = lane * 8; c < C; c += 256) {
      float v[8];
      llm_ld8(inp, LLM_BF(3), x + c, v);
      for (int k = 0; k < 8; k++) q += (v[k] - m) * (v[k] - m);
    }
  } else {
    for (int c = lane; c < C; c += 32) { float d = llm_ld(inp, LLM_BF(3), x + c) - m; q += d * d; }
  }
  float r = 1.f / sqrtf(llm_warp_sum(q) / C + eps);
  if (vec) {
    for (int c = lane * 8; c < C; c += 256) {
      float v[8], w[8], b[8];
      llm_ld8(inp, LLM_BF(3), x + c, v);
      llm_ld8(weight, LLM_BF(4), c, w);
      llm_ld8(bias, LLM_BF(5), c, b);
      for (int k = 0; k < 8; k++) v[k] = (v[k] - m) * r * w[k] + b[k];
      llm_st8(out, LLM_BF(0), x + c, v);
    }
  } else {
    for (int c = lane; c < C; c += 32) {
      float v = (llm_ld(inp, LLM_BF(3), x + c) - m) * r * llm_ld(weight, LLM_BF(4), c) + llm_ld(bias, LLM_BF(5), c);
      llm_st(out, LLM_BF(0), x + c, v);
    }
  }
  if (lane == 0) { llm_st(mean, LLM_BF(1), row, m); llm_st(rstd, LLM_BF(2), row, r); }
}

/** One row of layernorm_backward (one warp): dinp += per row, dweight/dbias into the block's shared sums.
 *  W: elements per load (8 = the 16-byte path), a constant so the per-thread arrays stay in registers. */
template <int W>
__device__ __forceinline__ void layernorm_backward_row(void* dinp, const void* dout, const void* inp, const void* weight,
                                                       int row, int C, float m, float r, float* acc, int dt) {
  int lane = threadIdx.x & 31;
  long long x = (long long)row * C;
  float a = 0.f, b = 0.f;
  for (int c = lane * W; c < C; c += 32 * W) {
    float g[W], v[W], w[W];
    llm_ldw<W>(dout, LLM_BF(1), x + c, g); llm_ldw<W>(inp, LLM_BF(2), x + c, v); llm_ldw<W>(weight, LLM_BF(3), c, w);
    for (int k = 0; k < W; k++) { float dn = g[k] * w[k]; a += dn; b += dn * (v[k] - m) * r; }
  }
  a = llm_warp_sum(a) / C;
  b = llm_warp_sum(b) / C;
  for (int c = lane * W; c < C; c += 32 * W) {
    float g[W], v[W], w[W], d[W];
    llm_ldw<W>(dout, LLM_BF(1), x + c, g); llm_ldw<W>(inp, LLM_BF(2), x + c, v);
    llm_ldw<W>(weight, LLM_BF(3), c, w); llm_ldw<W>(dinp, LLM_BF(0), x + c, d);
    for (int k = 0; k < W; k++) {
      float norm = (v[k] - m) * r;
      d[k] += (g[k] * w[k] - a - norm * b) * r;
      atomicAdd(&acc[c + k], norm * g[k]);
      atomicAdd(&acc[C + c + k], g[k]);
    }
    llm_stw<W>(dinp, LLM_BF(0), x + c, d);
  }
}

// dinp: (N,C) +=   partial: (gridDim.x, 2C) = per-block [dweight | dbias]   dout, inp: (N,C)   weight: (C)
// mean, rstd: (N)   dynamic shared memory: 2C floats.   dt bits: 0 dinp, 1 dout, 2 inp, 3 weight, 4 mean, 5 rstd
extern "C" __global__ void layernorm_backward(void* dinp, float* partial, const void* dout, const void* inp,
                                              const void* weight, const void* mean, const void* rstd,
                                              int N, int C, int dt, int vec) {
  extern __shared__ float acc[];   // [dweight (C) | dbias (C)]
  for (int c = threadIdx.x; c < 2 * C; c += blockDim.x) acc[c] = 0.f;
  __syncthreads();
  int warps = blockDim.x >> 5;
  for (int row = blockIdx.x * warps + (threadIdx.x >> 5); row < N; row += gridDim.x * warps) {
    float m = llm_ld(mean, LLM_BF(4), row), r = llm_ld(rstd, LLM_BF(5), row);
    if (vec) layernorm_backward_row<8>(dinp, dout, inp, weight, row, C, m, r, acc, dt);
    else layernorm_backward_row<1>(dinp, dout, inp, weight, row, C, m, r, acc, dt);
  }
  __syncthreads();
  for (int c = threadIdx.x; c < 2 * C; c += blockDim.x) partial[(long long)blockIdx.x * 2 * C + c] = acc[c];
}
