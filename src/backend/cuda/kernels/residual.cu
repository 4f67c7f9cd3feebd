// Residual add out = a + b (out may alias a or b: each element is read before it is written, by one thread).

#include "common.cuh"

// out, a, b: (n)   dt bits: 0 out, 1 a, 2 b
extern "C" __global__ void residual_forward(void* out, const void* a, const void* b, long long n, int dt, int vec) {
  long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 8;
  if (i >= n) return;
  if (vec && i + 8 <= n) {
    float x[8], y[8];
    llm_ld8(a, LLM_BF(1), i, x);
    llm_ld8(b, LLM_BF(2), i, y);
    for (int k = 0; k < 8; k++) x[k] += y[k];
    llm_st8(out, LLM_BF(0), i, x);
    return;
  }
  for (long long j = i; j < n && j < i + 8; j++) {
    llm_st(out, LLM_BF(0), j, llm_ld(a, LLM_BF(1), j) + llm_ld(b, LLM_BF(2), j));
  }
}
