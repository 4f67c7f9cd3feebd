// Memory-level kernels: dtype conversion (f32 <-> bf16), float64 partial sums (sum and
// sum of squares, finished on the host), and the column sums of per-block partials that the bias-gradient pass
// leaves behind (finished here so every gradient is ACCUMULATED, never overwritten; the norms have their own).

#include "common.cuh"

// dst, src: (n)   dt bits: 0 dst, 1 src
extern "C" __global__ void convert(void* dst, const void* src, long long n, int dt, int vec) {
  long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 8;
  if (i >= n) return;
  float v[8];
  if (vec && i + 8 <= n) {
    llm_ld8(src, LLM_BF(1), i, v);
    llm_st8(dst, LLM_BF(0), i, v);
    return;
  }
  for (long long j = i; j < n && j < i + 8; j++) llm_st(dst, LLM_BF(0), j, llm_ld(src, LLM_BF(1), j));
}

// partial: (gridDim.x) float64 sums of x (square = 0) or x² (square = 1) over a grid-stride share of x: (n).
// dt bits: 0 x
extern "C" __global__ void sum_partial(double* partial, const void* x, long long n, int square, int dt) {
  __shared__ double sh[32];
  double s = 0.0;
  long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    double v = (double)llm_ld(x, LLM_BF(0), i);
    s += square ? v * v : v;
  }
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  if (lane == 0) sh[w] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0.0;
    for (int k = 0; k < (int)(blockDim.x >> 5); k++) t += sh[k];
    partial[blockIdx.x] = t;
  }
}

// dst: (width) += Σ_g partial[g·ld + j] over g < G.   dt bits: 0 dst
extern "C" __global__ void reduce_partials(void* dst, const float* partial, int G, int ld, int width, int dt) {
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= width) return;
  float s = 0.f;
  for (int g = 0; g < G; g++) s += partial[(long long)g * ld + j];
  llm_st(dst, LLM_BF(0), j, llm_ld(dst, LLM_BF(0), j) + s);
}
