// AdamW with PyTorch's semantics (decoupled weight decay, bias-corrected moments, eps outside the sqrt) and a
// gradient scale applied first (global-norm clipping), in f32 per element. When `mirror` is non-null the
// updated parameter is also written there in bf16: the weight copy the bf16 matmuls read, refreshed for free.
// One launch covers a whole flat parameter buffer: elements inside the `spans` table (norms, biases) take no
// weight decay.

#include "common.cuh"

/** One element's update: m, v and the parameter p, in place. */
__device__ __forceinline__ void adamw_step(float& p, float g, float& m, float& v, float lr, float beta1, float beta2,
                                           float eps, float weightDecay, float bc1, float bc2) {
  m = beta1 * m + (1.f - beta1) * g;
  v = beta2 * v + (1.f - beta2) * g * g;
  p = p - lr * ((m / bc1) / (sqrtf(v / bc2) + eps) + weightDecay * p);
}

/** The weight decay of element e: 0 inside a span. spans: (nspans, 2) sorted [start, end); r: a span index with
 *  no span before it ending after e (advanced here, so one thread's increasing elements walk the table once). */
__device__ __forceinline__ float adamw_decay(long long e, const long long* spans, int nspans, int& r, float wd) {
  while (r < nspans && spans[2 * r + 1] <= e) r++;
  return r < nspans && spans[2 * r] <= e ? 0.f : wd;
}

// params, grads, m, v: (n)   mirror: (n) bf16 or 0   spans: (nspans, 2) no-decay [start, end), sorted
// bc1 = 1 - beta1^t, bc2 = 1 - beta2^t.   dt bits: 0 params, 1 grads, 2 m, 3 v
extern "C" __global__ void adamw_update(void* params, const void* grads, void* m, void* v, llm_bf16* mirror,
                                        const long long* spans, int nspans, long long n, float lr, float beta1,
                                        float beta2, float eps, float weightDecay, float gradScale, float bc1,
                                        float bc2, int dt, int vec) {
  long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 8;
  if (i >= n) return;
  int r = 0, hi = nspans;   // binary search: the first span ending after i
  while (r < hi) { int mid = (r + hi) >> 1; if (spans[2 * mid + 1] <= i) r = mid + 1; else hi = mid; }
  if (vec && i + 8 <= n) {   // constant trip counts: the 8-element arrays stay in registers
    float p[8], g[8], mm[8], vv[8];
    llm_ld8(params, LLM_BF(0), i, p); llm_ld8(grads, LLM_BF(1), i, g);
    llm_ld8(m, LLM_BF(2), i, mm); llm_ld8(v, LLM_BF(3), i, vv);
    for (int k = 0; k < 8; k++) {
      float wd = adamw_decay(i + k, spans, nspans, r, weightDecay);
      adamw_step(p[k], g[k] * gradScale, mm[k], vv[k], lr, beta1, beta2, eps, wd, bc1, bc2);
    }
    llm_st8(params, LLM_BF(0), i, p); llm_st8(m, LLM_BF(2), i, mm); llm_st8(v, LLM_BF(3), i, vv);
    if (mirror != 0) llm_st8(mirror, 1, i, p);
    return;
  }
  for (long long j = i; j < n && j < i + 8; j++) {
    float p = llm_ld(params, LLM_BF(0), j), mj = llm_ld(m, LLM_BF(2), j), vj = llm_ld(v, LLM_BF(3), j);
    float wd = adamw_decay(j, spans, nspans, r, weightDecay);
    adamw_step(p, llm_ld(grads, LLM_BF(1), j) * gradScale, mj, vj, lr, beta1, beta2, eps, wd, bc1, bc2);
    llm_st(params, LLM_BF(0), j, p); llm_st(m, LLM_BF(2), j, mj); llm_st(v, LLM_BF(3), j, vj);
    if (mirror != 0) mirror[j] = llm_f2bf(p);
  }
}
