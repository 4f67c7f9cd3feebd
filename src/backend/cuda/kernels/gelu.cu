// GELU, tanh approximation: gelu(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), in f32 whatever the storage.
// Elementwise over 8-element chunks (16-byte loads when the host's `vec` flag says the pointers allow it).

#include "common.cuh"

#define GELU_K 0.7978845608028654f
#define GELU_A 0.044715f

__device__ __forceinline__ float gelu_value(float x) {
  return 0.5f * x * (1.f + tanhf(GELU_K * (x + GELU_A * x * x * x)));
}

__device__ __forceinline__ float gelu_slope(float x) {
  float th = tanhf(GELU_K * (x + GELU_A * x * x * x));
  return 0.5f * (1.f + th) + 0.5f * x * (1.f - th * th) * GELU_K * (1.f + 3.f * GELU_A * x * x);
}

// out, inp: (n), out may alias inp   dt bits: 0 out, 1 inp
extern "C" __global__ void gelu_forward(void* out, const void* inp, long long n, int dt, int vec) {
  long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 8;
  if (i >= n) return;
  if (vec && i + 8 <= n) {
    float x[8];
    llm_ld8(inp, LLM_BF(1), i, x);
    for (int k = 0; k < 8; k++) x[k] = gelu_value(x[k]);
    llm_st8(out, LLM_BF(0), i, x);
    return;
  }
  for (long long j = i; j < n && j < i + 8; j++) llm_st(out, LLM_BF(0), j, gelu_value(llm_ld(inp, LLM_BF(1), j)));
}

// dinp: (n) += (= when accumulate is 0)   dout, inp: (n)   dt bits: 0 dinp, 1 dout, 2 inp
extern "C" __global__ void gelu_backward(void* dinp, const void* dout, const void* inp, long long n, int accumulate, int dt, int vec) {
  long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 8;
  if (i >= n) return;
  if (vec && i + 8 <= n) {
    float x[8], g[8], d[8];
    llm_ld8(inp, LLM_BF(2), i, x);
    llm_ld8(dout, LLM_BF(1), i, g);
    if (accumulate) llm_ld8(dinp, LLM_BF(0), i, d);
    for (int k = 0; k < 8; k++) d[k] = (accumulate ? d[k] : 0.f) + gelu_slope(x[k]) * g[k];
    llm_st8(dinp, LLM_BF(0), i, d);
    return;
  }
  for (long long j = i; j < n && j < i + 8; j++) {
    float d = (accumulate ? llm_ld(dinp, LLM_BF(0), j) : 0.f) + gelu_slope(llm_ld(inp, LLM_BF(2), j)) * llm_ld(dout, LLM_BF(1), j);
    llm_st(dinp, LLM_BF(0), j, d);
  }
}
