// Fused softmax + cross-entropy over the padded vocabulary (the "classifier"): one block per row reads the row
// once for the max and the sum of exponentials (online softmax) and the loss (log Σ + max - logit[target], never
// -log of a rounded probability) in f32, then writes the probabilities IN PLACE of the logits (every read of the
// row happens before the first write). The backward turns them into dlogits in place: probabilities stored once.
// Training fuses both (grad = 1): the forward's second pass writes dlogits directly, never the probabilities.

#include "common.cuh"

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
    if (grad) for (int k = 0; k < 8; k++) v[k] = target < 0 ? 0.f : (v[k] - (j + k == target ? 1.f : 0.f)) * scale;
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
