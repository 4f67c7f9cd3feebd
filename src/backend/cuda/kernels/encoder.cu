// Token (+ learned position) embedding. Forward: one thread per 8 channels of a row. Backward: dwte rows of
// repeated tokens add up through atomics (f32 gradients; bf16 via compare-and-swap); dwpe, whose row t only
// receives the B rows at position t, is summed without atomics. An out-of-range token id gives a NaN row.

#include "common.cuh"

// out: (BT,C)   tokens: (BT)   wte: (Vp,C)   wpe: (maxT,C) or 0   dt bits: 0 out, 1 wte, 2 wpe
extern "C" __global__ void encoder_forward(void* out, const int* tokens, const void* wte, const void* wpe,
                                           int BT, int T, int C, int Vp, int posStart, int dt, int vec) {
  int chunks = (C + 7) / 8;
  long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= (long long)BT * chunks) return;
  int row = (int)(t / chunks), c0 = (int)(t % chunks) * 8;
  int tok = tokens[row];
  long long o = (long long)row * C, w = (long long)tok * C, p = (long long)(posStart + row % T) * C;
  bool bad = tok < 0 || tok >= Vp;
  if (vec && !bad) {
    float x[8], y[8];
    llm_ld8(wte, LLM_BF(1), w + c0, x);
    if (wpe != 0) {
      llm_ld8(wpe, LLM_BF(2), p + c0, y);
      for (int k = 0; k < 8; k++) x[k] += y[k];
    }
    llm_st8(out, LLM_BF(0), o + c0, x);
    return;
  }
  for (int c = c0; c < C && c < c0 + 8; c++) {
    float v = bad ? LLM_NAN : llm_ld(wte, LLM_BF(1), w + c);
    if (wpe != 0) v += llm_ld(wpe, LLM_BF(2), p + c);
    llm_st(out, LLM_BF(0), o + c, v);
  }
}

// dwte: (Vp,C) +=   dout: (BT,C)   tokens: (BT)   dt bits: 0 dwte, 1 dout
extern "C" __global__ void encoder_backward_wte(void* dwte, const void* dout, const int* tokens, int BT, int C,
                                                int Vp, int dt) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)BT * C) return;
  int row = (int)(i / C), c = (int)(i % C);
  int tok = tokens[row];
  if (tok < 0 || tok >= Vp) return;
  llm_atomic_add(dwte, LLM_BF(0), (long long)tok * C + c, llm_ld(dout, LLM_BF(1), i));
}

// dwpe: (maxT,C) += Σ_b dout[b,t]   dout: (B,T,C)   dt bits: 0 dwpe, 1 dout
extern "C" __global__ void encoder_backward_wpe(void* dwpe, const void* dout, int B, int T, int C, int dt) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)T * C) return;
  float s = 0.f;
  for (int b = 0; b < B; b++) s += llm_ld(dout, LLM_BF(1), (long long)b * T * C + i);
  llm_st(dwpe, LLM_BF(0), i, llm_ld(dwpe, LLM_BF(0), i) + s);
}
