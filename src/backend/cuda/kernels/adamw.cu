// AdamW with PyTorch's semantics (decoupled weight decay, bias-corrected moments, eps outside the sqrt) and a
// gradient scale applied first (global-norm clipping), in f32 per element. When `mirror` is non-null the
// updated parameter is also written there in bf16: the weight copy the bf16 matmuls read, refreshed for free.

#include "common.cuh"

// params, grads, m, v: (n)   mirror: (n) bf16 or 0   bc1 = 1 - beta1^t, bc2 = 1 - beta2^t
// dt bits: 0 params, 1 grads, 2 m, 3 v
extern "C" __global__ void adamw_update(void* params, const void* grads, void* m, void* v, llm_bf16* mirror,
                                        long long n, float lr, float beta1, float beta2, float eps, float weightDecay,
                                        float gradScale, float bc1, float bc2, int dt, int vec) {
  long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 8;
  if (i >= n) return;
  float p[8], g[8], mm[8], vv[8];
  bool full = vec && i + 8 <= n;
  int cnt = full ? 8 : (int)(n - i < 8 ? n - i : 8);
  if (full) {
    llm_ld8(params, LLM_BF(0), i, p); llm_ld8(grads, LLM_BF(1), i, g);
    llm_ld8(m, LLM_BF(2), i, mm); llm_ld8(v, LLM_BF(3), i, vv);
  } else {
    for (int k = 0; k < cnt; k++) {
      p[k] = llm_ld(params, LLM_BF(0), i + k); g[k] = llm_ld(grads, LLM_BF(1), i + k);
      mm[k] = llm_ld(m, LLM_BF(2), i + k); vv[k] = llm_ld(v, LLM_BF(3), i + k);
    }
  }
  for (int k = 0; k < cnt; k++) {
    float gk = g[k] * gradScale;
    mm[k] = beta1 * mm[k] + (1.f - beta1) * gk;
    vv[k] = beta2 * vv[k] + (1.f - beta2) * gk * gk;
    p[k] = p[k] - lr * ((mm[k] / bc1) / (sqrtf(vv[k] / bc2) + eps) + weightDecay * p[k]);
  }
  if (full) {
    llm_st8(params, LLM_BF(0), i, p); llm_st8(m, LLM_BF(2), i, mm); llm_st8(v, LLM_BF(3), i, vv);
    if (mirror != 0) llm_st8(mirror, 1, i, p);
  } else {
    for (int k = 0; k < cnt; k++) {
      llm_st(params, LLM_BF(0), i + k, p[k]); llm_st(m, LLM_BF(2), i + k, mm[k]); llm_st(v, LLM_BF(3), i + k, vv[k]);
      if (mirror != 0) mirror[i + k] = llm_f2bf(p[k]);
    }
  }
}
