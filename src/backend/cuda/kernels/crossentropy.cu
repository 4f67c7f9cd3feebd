// Fused softmax + cross-entropy over the padded vocabulary (the "classifier"): the loss is log Σ + max - logit[target]
// in f32, never -log of a rounded probability; the probabilities are written IN PLACE of the logits (which
// crossentropy_backward turns into dlogits in place), or in training (grad = 1) dlogits = (softmax - onehot)·scale
// directly, so no probability is ever stored.

#include "common.cuh"

// The general forward (any dtype, any Vp): reads the row twice (max+sum, then the writes).
// losses: (N)   probs, logits: (N,Vp), probs may alias logits   targets: (N), < 0 = ignored
// grad = 1: probs receives dlogits = (probs - onehot(target))·scale instead (0 on padded columns, ignored rows).
// dt bits: 0 losses, 1 probs, 2 logits
extern "C" __global__ void crossentropy_forward(void* losses, void* probs, const void* logits, const int* targets,
                                                int N, int V, int Vp, float scale, int grad, int dt, int vec) {
  __shared__ float sh[32];
  __shared__ float targetLogit;
  int row = blockIdx.x;
  long long r = (long long)row * Vp;
  int target = targets[row];
  // one pass for the max and the sum of exponentials (online: the sum is rescaled when the max grows)
  float mt = -LLM_INF, st = 0.f;
  for (int j = threadIdx.x * 8; j < V; j += blockDim.x * 8) {
    float v[8];
    if (vec && j + 8 <= V) llm_ld8(logits, LLM_BF(2), r + j, v);
    else for (int k = 0; k < 8; k++) v[k] = j + k < V ? llm_ld(logits, LLM_BF(2), r + j + k) : -LLM_INF;
    float cm = v[0];
    for (int k = 1; k < 8; k++) cm = fmaxf(cm, v[k]);
    if (cm > mt) { st *= expf(mt - cm); mt = cm; }
    for (int k = 0; k < 8; k++) st += expf(v[k] - mt);
  }
  if (threadIdx.x == 0) targetLogit = target >= 0 && target < V ? llm_ld(logits, LLM_BF(2), r + target) : 0.f;
  float mx = llm_block_max(mt, sh);
  float s = llm_block_sum(mt == -LLM_INF ? 0.f : st * expf(mt - mx), sh);   // barriers: every read precedes the writes
  if (threadIdx.x == 0) {
    float loss = target < 0 ? 0.f : target >= V ? LLM_NAN : logf(s) + mx - targetLogit;
    llm_st(losses, LLM_BF(0), row, loss);
  }
  float inv = 1.f / s;
  for (int j = threadIdx.x * 8; j < Vp; j += blockDim.x * 8) {
    float v[8];
    bool full = vec && j + 8 <= Vp;
    if (full) llm_ld8(logits, LLM_BF(2), r + j, v);
    else for (int k = 0; k < 8; k++) v[k] = j + k < Vp ? llm_ld(logits, LLM_BF(2), r + j + k) : 0.f;
    for (int k = 0; k < 8; k++) v[k] = j + k < V ? expf(v[k] - mx) * inv : 0.f;
    if (grad) for (int k = 0; k < 8; k++) v[k] = target < 0 || j + k >= V ? 0.f : (v[k] - (j + k == target ? 1.f : 0.f)) * scale;
    if (full) llm_st8(probs, LLM_BF(1), r + j, v);
    else for (int k = 0; k < 8 && j + k < Vp; k++) llm_st(probs, LLM_BF(1), r + j + k, v[k]);
  }
}

// dlogits, probs: (N,Vp), dlogits may alias probs (OVERWRITTEN)   targets: (N)
// dlogits = (probs - onehot(target))·scale on real columns, 0 on padded columns and ignored rows.
// dt bits: 0 dlogits, 1 probs
extern "C" __global__ void crossentropy_backward(void* dlogits, const void* probs, const int* targets, float scale,
                                                 int N, int V, int Vp, int dt, int vec) {
  long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 8;
  long long n = (long long)N * Vp;
  if (i >= n) return;
  if (vec && i + 8 <= n) {   // vec implies Vp % 8 == 0: the 8 columns share one row
    int row = (int)(i / Vp), col = (int)(i % Vp), target = targets[row];
    float v[8];
    llm_ld8(probs, LLM_BF(1), i, v);
    for (int k = 0; k < 8; k++) {
      int j = col + k;
      v[k] = target < 0 || j >= V ? 0.f : (v[k] - (j == target ? 1.f : 0.f)) * scale;
    }
    llm_st8(dlogits, LLM_BF(0), i, v);
    return;
  }
  for (long long e = i; e < n && e < i + 8; e++) {
    int row = (int)(e / Vp), j = (int)(e % Vp), target = targets[row];
    float p = llm_ld(probs, LLM_BF(1), e);
    llm_st(dlogits, LLM_BF(0), e, target < 0 || j >= V ? 0.f : (p - (j == target ? 1.f : 0.f)) * scale);
  }
}

// ---- the row-resident forward: one DRAM read of the row -------------------------------------------------------
// crossentropy_forward_staged, for bf16 rows that fit shared memory: copies its row from DRAM ONCE into shared memory
// and runs every pass from there.
// Each thread owns the 16-byte chunks c = threadIdx.x + k·blockDim.x (k < CE_CHUNKS) of its row: it issues all its
// cp.async copies at once (one commit group each), folds every chunk into its own max and sum of exponentials as soon
// as that chunk lands, and later reads back and writes only its own chunks; the one cross-thread read (the target
// logit, by thread 0) follows the block reductions' barriers. Exponentials are 2^(x·log2e - max·log2e), one FFMA and
// one ex2 each (the max·log2e rounding scales every term alike, so it cancels in the probabilities).

#define CE_CHUNKS 8   // 16-byte chunks per thread: blockDim.x = ceil(Vp/8/CE_CHUNKS) rounded up to a warp, Vp <= 65536

__device__ __forceinline__ float ce_exp2(float x) {
#ifndef LLMTS_EMU
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#else
  return exp2f(x);
#endif
}

/** Waits until at most `pending` of this thread's cp.async groups are in flight (constant after unrolling). */
__device__ __forceinline__ void ce_wait(int pending) {
  switch (pending) {
    case 0: llm_cp_async_wait<0>(); break;
    case 1: llm_cp_async_wait<1>(); break;
    case 2: llm_cp_async_wait<2>(); break;
    case 3: llm_cp_async_wait<3>(); break;
    case 4: llm_cp_async_wait<4>(); break;
    case 5: llm_cp_async_wait<5>(); break;
    case 6: llm_cp_async_wait<6>(); break;
    default: llm_cp_async_wait<7>(); break;
  }
}

/** v[0..8) = the 8 bf16 of a chunk; columns >= V (from `col`, the chunk's first column) become `pad`. */
__device__ __forceinline__ void ce_unpack(uint4 u, int col, int V, float pad, float* v) {
  v[0] = __uint_as_float(u.x << 16); v[1] = __uint_as_float(u.x & 0xffff0000u);
  v[2] = __uint_as_float(u.y << 16); v[3] = __uint_as_float(u.y & 0xffff0000u);
  v[4] = __uint_as_float(u.z << 16); v[5] = __uint_as_float(u.z & 0xffff0000u);
  v[6] = __uint_as_float(u.w << 16); v[7] = __uint_as_float(u.w & 0xffff0000u);
  if (col + 8 > V) {
#pragma unroll
    for (int k = 0; k < 8; k++) v[k] = col + k < V ? v[k] : pad;
  }
}

// losses: (N)   probs, logits: (N,Vp) bf16, 16-byte aligned, Vp % 8 == 0, probs may alias logits   targets: (N)
// Dynamic shared memory: ceil(V/8)·16 bytes (the row's real columns). Same outputs as crossentropy_forward.
// dt bit 0: losses (probs and logits are bf16)
extern "C" __global__ void __launch_bounds__(1024, 2)
crossentropy_forward_staged(void* losses, void* probs, const void* logits, const int* targets, int N, int V, int Vp,
                            float scale, int grad, int dt) {
  extern __shared__ uint4 ce_row[];
  __shared__ float sh[32];
  const float L2E = 1.4426950408889634f;
  int row = blockIdx.x, target = targets[row], nload = (V + 7) / 8, nout = Vp / 8;
  bool skip = grad && target < 0;   // an ignored row in training: loss 0 and a zero gradient, nothing to read
  const uint4* src = (const uint4*)logits + (long long)row * nout;
#pragma unroll
  for (int k = 0; k < CE_CHUNKS; k++) {
    int c = threadIdx.x + k * blockDim.x;
    if (!skip && c < nload) llm_cp_async16(ce_row + c, src + c);
    llm_cp_async_commit();   // every thread commits CE_CHUNKS groups, empty or not, so the waits below count alike
  }
  float m = -LLM_INF, s = 0.f;
#pragma unroll
  for (int k = 0; k < CE_CHUNKS; k++) {
    int c = threadIdx.x + k * blockDim.x;
    ce_wait(CE_CHUNKS - 1 - k);   // chunk k has landed (this thread's own copy)
    if (skip || c >= nload) continue;
    float v[8];
    ce_unpack(ce_row[c], c * 8, V, -LLM_INF, v);
    float cm = v[0];
#pragma unroll
    for (int e = 1; e < 8; e++) cm = fmaxf(cm, v[e]);
    if (cm > m) { s *= ce_exp2((m - cm) * L2E); m = cm; }   // online: rescale the sum when the max grows
    float mL = m * L2E;
#pragma unroll
    for (int e = 0; e < 8; e++) s += ce_exp2(fmaf(v[e], L2E, -mL));
  }
  float mx = llm_block_max(m, sh);
  float sum = llm_block_sum(m == -LLM_INF ? 0.f : s * ce_exp2((m - mx) * L2E), sh);   // barriers: the row is staged
  if (threadIdx.x == 0) {
    float xt = target >= 0 && target < V ? llm_bf2f(((const llm_bf16*)ce_row)[target]) : 0.f;
    llm_st(losses, LLM_BF(0), row, target < 0 ? 0.f : target >= V ? LLM_NAN : logf(sum) + mx - xt);
  }
  float inv = 1.f / sum, mL = mx * L2E, mul = grad ? inv * scale : inv;
  uint4* dst = (uint4*)probs + (long long)row * nout;
#pragma unroll
  for (int k = 0; k < CE_CHUNKS; k++) {
    int c = threadIdx.x + k * blockDim.x;
    if (c >= nout) continue;
    float v[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    if (!skip && c < nload) {
      ce_unpack(ce_row[c], c * 8, V, -LLM_INF, v);   // exp2(-inf) = 0 on the padded columns
#pragma unroll
      for (int e = 0; e < 8; e++) v[e] = ce_exp2(fmaf(v[e], L2E, -mL)) * mul;
      if (grad && target < V && (target >> 3) == c) {   // the target column: (p - 1)·scale with p in f32
        float pt = ce_exp2(fmaf(llm_bf2f(((const llm_bf16*)ce_row)[target]), L2E, -mL)) * inv;
#pragma unroll
        for (int e = 0; e < 8; e++) v[e] = (target & 7) == e ? (pt - 1.f) * scale : v[e];
      }
    }
    uint4 u;
    u.x = llm_pack2(v[0], v[1]); u.y = llm_pack2(v[2], v[3]);
    u.z = llm_pack2(v[4], v[5]); u.w = llm_pack2(v[6], v[7]);
    dst[c] = u;
  }
}
