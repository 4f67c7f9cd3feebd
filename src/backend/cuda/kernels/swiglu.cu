// SwiGLU over the fused row [gate | up]: out = silu(gate)·up, silu(g) = g·sigmoid(g). One thread per 8 hidden
// units of a row; 16-byte loads when H % 8 == 0 and the pointers are aligned (the host's `vec` flag).

#include "common.cuh"

__device__ __forceinline__ float sigmoid(float g) { return 1.f / (1.f + expf(-g)); }

// out: (N,H)   inp: (N,2H)   dt bits: 0 out, 1 inp
extern "C" __global__ void swiglu_forward(void* out, const void* inp, int N, int H, int dt, int vec) {
  int chunks = (H + 7) / 8;
  long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= (long long)N * chunks) return;
  long long n = t / chunks;
  int j0 = (int)(t % chunks) * 8;
  long long gi = n * 2 * H, ui = gi + H, o = n * H;
  if (vec) {
    float g[8], u[8];
    llm_ld8(inp, LLM_BF(1), gi + j0, g);
    llm_ld8(inp, LLM_BF(1), ui + j0, u);
    for (int k = 0; k < 8; k++) g[k] = g[k] * sigmoid(g[k]) * u[k];
    llm_st8(out, LLM_BF(0), o + j0, g);
    return;
  }
  for (int j = j0; j < H && j < j0 + 8; j++) {
    float g = llm_ld(inp, LLM_BF(1), gi + j), u = llm_ld(inp, LLM_BF(1), ui + j);
    llm_st(out, LLM_BF(0), o + j, g * sigmoid(g) * u);
  }
}

// dinp: (N,2H) += (= when accumulate is 0)   dout: (N,H)   inp: (N,2H)   dt bits: 0 dinp, 1 dout, 2 inp
extern "C" __global__ void swiglu_backward(void* dinp, const void* dout, const void* inp, int N, int H, int accumulate,
                                           int dt, int vec) {
  int chunks = (H + 7) / 8;
  long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= (long long)N * chunks) return;
  long long n = t / chunks;
  int j0 = (int)(t % chunks) * 8;
  long long gi = n * 2 * H, ui = gi + H, o = n * H;
  if (vec) {
    float g[8], u[8], d[8], dg[8], du[8];
    llm_ld8(inp, LLM_BF(2), gi + j0, g);
    llm_ld8(inp, LLM_BF(2), ui + j0, u);
    llm_ld8(dout, LLM_BF(1), o + j0, d);
    if (accumulate) {
      llm_ld8(dinp, LLM_BF(0), gi + j0, dg);
      llm_ld8(dinp, LLM_BF(0), ui + j0, du);
    }
    for (int k = 0; k < 8; k++) {
      float s = sigmoid(g[k]);
      dg[k] = (accumulate ? dg[k] : 0.f) + d[k] * u[k] * s * (1.f + g[k] * (1.f - s));
      du[k] = (accumulate ? du[k] : 0.f) + d[k] * g[k] * s;
    }
    llm_st8(dinp, LLM_BF(0), gi + j0, dg);
    llm_st8(dinp, LLM_BF(0), ui + j0, du);
    return;
  }
  for (int j = j0; j < H && j < j0 + 8; j++) {
    float g = llm_ld(inp, LLM_BF(2), gi + j), u = llm_ld(inp, LLM_BF(2), ui + j), d = llm_ld(dout, LLM_BF(1), o + j);
    float s = sigmoid(g);
    float g0 = accumulate ? llm_ld(dinp, LLM_BF(0), gi + j) : 0.f, u0 = accumulate ? llm_ld(dinp, LLM_BF(0), ui + j) : 0.f;
    llm_st(dinp, LLM_BF(0), gi + j, g0 + d * u * s * (1.f + g * (1.f - s)));
    llm_st(dinp, LLM_BF(0), ui + j, u0 + d * g * s);
  }
}
