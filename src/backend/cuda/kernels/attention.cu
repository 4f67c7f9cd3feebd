// Causal grouped-query attention, flash style (no T×T buffer): scores live in registers one 32-key tile at a
// time, with an online softmax. Reference path for every head size up to 128 and both storage types; threads
// work in quads (4 per query or key row, each holding dimensions part, part+4, ...), so DPT = ceil(HS/4) is a
// template parameter with one extern "C" entry per size. Backward recomputes probabilities from the saved
// log-sum-exp: one kernel for dQ (parallel over queries), one for dK/dV (parallel over keys), no atomics.

#include "common.cuh"

#define ATT_ROWS 32   // query (or key) rows per block, 4 threads each: 128 threads
#define ATT_TILE 32   // keys (or queries) per shared-memory tile

/** Sum over the 4 threads of a quad. */
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

/** Loads rows [r0, r0+ATT_TILE) ∩ [0, rEnd) of one head (HS columns at col) of a (rows, QKV) buffer into sh. */
template <int DPT>
__device__ __forceinline__ void load_tile(float (*sh)[4 * DPT], const void* buf, int bf, long long base, int QKV,
                                          int r0, int rEnd, int HS) {
  for (int idx = threadIdx.x; idx < ATT_TILE * HS; idx += blockDim.x) {
    int j = idx / HS, d = idx % HS;
    sh[j][d] = r0 + j < rEnd ? llm_ld(buf, bf, base + (long long)(r0 + j) * QKV + d) : 0.f;
  }
}

// out: (B,Tq,NH·HS)   lse: (B,NH,Tq) or 0   qkv: (B,Tmax,QKV); queries are rows [posStart, posStart+Tq) of each
// sequence, keys/values rows [0, query position].   dt bits: 0 out, 1 lse, 2 qkv
template <int DPT>
__device__ __forceinline__ void attn_forward(void* out, void* lse, const void* qkv, int Tq, int posStart, int Tmax,
                                             int NH, int KVH, int HS, float scale, int dt) {
  __shared__ float Ks[ATT_TILE][4 * DPT];
  __shared__ float Vs[ATT_TILE][4 * DPT];
  int b = blockIdx.z, h = blockIdx.y, g = h / (NH / KVH), QKV = (NH + 2 * KVH) * HS;
  int r = threadIdx.x >> 2, part = threadIdx.x & 3;
  int qi = blockIdx.x * ATT_ROWS + r, p = posStart + qi;
  bool active = qi < Tq;
  long long seq = (long long)b * Tmax * QKV;
  float q[DPT], o[DPT];
  for (int k = 0; k < DPT; k++) {
    int d = part + 4 * k;
    q[k] = active && d < HS ? llm_ld(qkv, LLM_BF(2), seq + (long long)p * QKV + h * HS + d) * scale : 0.f;
    o[k] = 0.f;
  }
  float m = -LLM_INF, l = 0.f;
  int kEnd = posStart + min(Tq, (int)(blockIdx.x + 1) * ATT_ROWS);   // keys [0, kEnd) cover the block's queries
  for (int k0 = 0; k0 < kEnd; k0 += ATT_TILE) {
    __syncthreads();
    load_tile<DPT>(Ks, qkv, LLM_BF(2), seq + (NH + g) * HS, QKV, k0, kEnd, HS);
    load_tile<DPT>(Vs, qkv, LLM_BF(2), seq + (NH + KVH + g) * HS, QKV, k0, kEnd, HS);
    __syncthreads();
    float s[ATT_TILE], tmax = -LLM_INF;
#pragma unroll
    for (int j = 0; j < ATT_TILE; j++) {
      float acc = 0.f;
      for (int k = 0; k < DPT; k++) { int d = part + 4 * k; if (d < HS) acc += q[k] * Ks[j][d]; }
      acc = quad_sum(acc);
      s[j] = active && k0 + j <= p ? acc : -LLM_INF;
      tmax = fmaxf(tmax, s[j]);
    }
    if (tmax > -LLM_INF) {
      float mnew = fmaxf(m, tmax), corr = expf(m - mnew);
      l *= corr;
      for (int k = 0; k < DPT; k++) o[k] *= corr;
#pragma unroll
      for (int j = 0; j < ATT_TILE; j++) {
        float pj = expf(s[j] - mnew);
        l += pj;
        for (int k = 0; k < DPT; k++) { int d = part + 4 * k; if (d < HS) o[k] += pj * Vs[j][d]; }
      }
      m = mnew;
    }
  }
  if (!active) return;
  float inv = 1.f / l;
  long long orow = ((long long)b * Tq + qi) * NH * HS + h * HS;
  for (int k = 0; k < DPT; k++) { int d = part + 4 * k; if (d < HS) llm_st(out, LLM_BF(0), orow + d, o[k] * inv); }
  if (lse != 0 && part == 0) llm_st(lse, LLM_BF(1), ((long long)b * NH + h) * Tq + qi, m + logf(l));
}

// dqkv: (B,T,QKV), q slots +=   dout: (B,T,NH·HS)   qkv: (B,T,QKV)   lse, D: (B,NH,T)
// dt bits: 0 dqkv, 1 dout, 2 qkv, 3 lse
template <int DPT>
__device__ __forceinline__ void attn_backward_dq(void* dqkv, const void* dout, const void* qkv, const void* lse,
                                                 const float* D, int T, int NH, int KVH, int HS, float scale, int dt) {
  __shared__ float Ks[ATT_TILE][4 * DPT];
  __shared__ float Vs[ATT_TILE][4 * DPT];
  int b = blockIdx.z, h = blockIdx.y, g = h / (NH / KVH), QKV = (NH + 2 * KVH) * HS;
  int r = threadIdx.x >> 2, part = threadIdx.x & 3;
  int qi = blockIdx.x * ATT_ROWS + r;
  bool active = qi < T;
  long long seq = (long long)b * T * QKV, qrow = seq + (long long)qi * QKV + h * HS;
  long long orow = ((long long)b * T + qi) * NH * HS + h * HS, stat = ((long long)b * NH + h) * T + qi;
  float q[DPT], dO[DPT], dq[DPT];
  for (int k = 0; k < DPT; k++) {
    int d = part + 4 * k;
    bool on = active && d < HS;
    q[k] = on ? llm_ld(qkv, LLM_BF(2), qrow + d) : 0.f;
    dO[k] = on ? llm_ld(dout, LLM_BF(1), orow + d) : 0.f;
    dq[k] = 0.f;
  }
  float L = active ? llm_ld(lse, LLM_BF(3), stat) : 0.f, Di = active ? D[stat] : 0.f;
  int kEnd = min(T, (int)(blockIdx.x + 1) * ATT_ROWS);
  for (int k0 = 0; k0 < kEnd; k0 += ATT_TILE) {
    __syncthreads();
    load_tile<DPT>(Ks, qkv, LLM_BF(2), seq + (NH + g) * HS, QKV, k0, kEnd, HS);
    load_tile<DPT>(Vs, qkv, LLM_BF(2), seq + (NH + KVH + g) * HS, QKV, k0, kEnd, HS);
    __syncthreads();
    for (int j = 0; j < ATT_TILE; j++) {
      float s = 0.f, dp = 0.f;
      for (int k = 0; k < DPT; k++) {
        int d = part + 4 * k;
        if (d < HS) { s += q[k] * Ks[j][d]; dp += dO[k] * Vs[j][d]; }
      }
      s = quad_sum(s);
      dp = quad_sum(dp);
      float pj = active && k0 + j <= qi ? expf(s * scale - L) : 0.f;
      float ds = pj * (dp - Di) * scale;
      for (int k = 0; k < DPT; k++) { int d = part + 4 * k; if (d < HS) dq[k] += ds * Ks[j][d]; }
    }
  }
  if (!active) return;
  for (int k = 0; k < DPT; k++) {
    int d = part + 4 * k;
    if (d < HS) llm_st(dqkv, LLM_BF(0), qrow + d, llm_ld(dqkv, LLM_BF(0), qrow + d) + dq[k]);
  }
}

// dqkv: (B,T,QKV), k and v slots of K/V head blockIdx.y +=   (other arguments as attn_backward_dq)
template <int DPT>
__device__ __forceinline__ void attn_backward_dkv(void* dqkv, const void* dout, const void* qkv, const void* lse,
                                                  const float* D, int T, int NH, int KVH, int HS, float scale, int dt) {
  __shared__ float Qs[ATT_TILE][4 * DPT];
  __shared__ float Os[ATT_TILE][4 * DPT];   // dout rows
  __shared__ float Ls[ATT_TILE], Dsh[ATT_TILE];
  int b = blockIdx.z, g = blockIdx.y, group = NH / KVH, QKV = (NH + 2 * KVH) * HS;
  int r = threadIdx.x >> 2, part = threadIdx.x & 3;
  int kj = blockIdx.x * ATT_ROWS + r;
  bool active = kj < T;
  long long seq = (long long)b * T * QKV;
  long long krow = seq + (long long)kj * QKV + (NH + g) * HS, vrow = krow + KVH * HS;
  float kk[DPT], vv[DPT], dk[DPT], dv[DPT];
  for (int k = 0; k < DPT; k++) {
    int d = part + 4 * k;
    bool on = active && d < HS;
    kk[k] = on ? llm_ld(qkv, LLM_BF(2), krow + d) : 0.f;
    vv[k] = on ? llm_ld(qkv, LLM_BF(2), vrow + d) : 0.f;
    dk[k] = 0.f;
    dv[k] = 0.f;
  }
  for (int h = g * group; h < (g + 1) * group; h++) {
    for (int q0 = blockIdx.x * ATT_ROWS; q0 < T; q0 += ATT_TILE) {
      __syncthreads();
      load_tile<DPT>(Qs, qkv, LLM_BF(2), seq + h * HS, QKV, q0, T, HS);
      load_tile<DPT>(Os, dout, LLM_BF(1), (long long)b * T * NH * HS + h * HS, NH * HS, q0, T, HS);
      if (threadIdx.x < ATT_TILE) {
        long long stat = ((long long)b * NH + h) * T + q0 + threadIdx.x;
        bool in = q0 + (int)threadIdx.x < T;
        Ls[threadIdx.x] = in ? llm_ld(lse, LLM_BF(3), stat) : 0.f;
        Dsh[threadIdx.x] = in ? D[stat] : 0.f;
      }
      __syncthreads();
      for (int i = 0; i < ATT_TILE; i++) {
        float s = 0.f, dp = 0.f;
        for (int k = 0; k < DPT; k++) {
          int d = part + 4 * k;
          if (d < HS) { s += kk[k] * Qs[i][d]; dp += vv[k] * Os[i][d]; }
        }
        s = quad_sum(s);
        dp = quad_sum(dp);
        int qpos = q0 + i;
        float pi = active && qpos < T && kj <= qpos ? expf(s * scale - Ls[i]) : 0.f;
        float ds = pi * (dp - Dsh[i]) * scale;
        for (int k = 0; k < DPT; k++) {
          int d = part + 4 * k;
          if (d < HS) { dv[k] += pi * Os[i][d]; dk[k] += ds * Qs[i][d]; }
        }
      }
    }
  }
  if (!active) return;
  for (int k = 0; k < DPT; k++) {
    int d = part + 4 * k;
    if (d >= HS) continue;
    llm_st(dqkv, LLM_BF(0), krow + d, llm_ld(dqkv, LLM_BF(0), krow + d) + dk[k]);
    llm_st(dqkv, LLM_BF(0), vrow + d, llm_ld(dqkv, LLM_BF(0), vrow + d) + dv[k]);
  }
}

// D: (B,NH,T) = Σ_d dout·out per query row (one warp per row)   dout, out: (B,T,NH·HS)   dt bits: 0 dout, 1 out
extern "C" __global__ void attention_backward_dot(float* D, const void* dout, const void* out, int B, int T, int NH,
                                                  int HS, int dt) {
  long long w = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (w >= (long long)B * NH * T) return;
  int t = (int)(w % T), h = (int)((w / T) % NH), b = (int)(w / ((long long)T * NH));
  long long row = ((long long)b * T + t) * NH * HS + h * HS;
  float s = 0.f;
  for (int d = lane; d < HS; d += 32) s += llm_ld(dout, LLM_BF(0), row + d) * llm_ld(out, LLM_BF(1), row + d);
  s = llm_warp_sum(s);
  if (lane == 0) D[w] = s;
}

#define ATT_FWD_PARAMS void* out, void* lse, const void* qkv, int Tq, int posStart, int Tmax, int NH, int KVH, int HS, float scale, int dt
#define ATT_FWD_ARGS out, lse, qkv, Tq, posStart, Tmax, NH, KVH, HS, scale, dt
#define ATT_BWD_PARAMS void* dqkv, const void* dout, const void* qkv, const void* lse, const float* D, int T, int NH, int KVH, int HS, float scale, int dt
#define ATT_BWD_ARGS dqkv, dout, qkv, lse, D, T, NH, KVH, HS, scale, dt

// grid (ceil(Tq/32), NH, B), block 128
extern "C" __global__ void __launch_bounds__(128) attention_forward_d2(ATT_FWD_PARAMS) { attn_forward<2>(ATT_FWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_forward_d4(ATT_FWD_PARAMS) { attn_forward<4>(ATT_FWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_forward_d8(ATT_FWD_PARAMS) { attn_forward<8>(ATT_FWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_forward_d16(ATT_FWD_PARAMS) { attn_forward<16>(ATT_FWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_forward_d32(ATT_FWD_PARAMS) { attn_forward<32>(ATT_FWD_ARGS); }
// grid (ceil(T/32), NH, B), block 128
extern "C" __global__ void __launch_bounds__(128) attention_backward_dq_d2(ATT_BWD_PARAMS) { attn_backward_dq<2>(ATT_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_backward_dq_d4(ATT_BWD_PARAMS) { attn_backward_dq<4>(ATT_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_backward_dq_d8(ATT_BWD_PARAMS) { attn_backward_dq<8>(ATT_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_backward_dq_d16(ATT_BWD_PARAMS) { attn_backward_dq<16>(ATT_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_backward_dq_d32(ATT_BWD_PARAMS) { attn_backward_dq<32>(ATT_BWD_ARGS); }
// grid (ceil(T/32), KVH, B), block 128
extern "C" __global__ void __launch_bounds__(128) attention_backward_dkv_d2(ATT_BWD_PARAMS) { attn_backward_dkv<2>(ATT_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_backward_dkv_d4(ATT_BWD_PARAMS) { attn_backward_dkv<4>(ATT_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_backward_dkv_d8(ATT_BWD_PARAMS) { attn_backward_dkv<8>(ATT_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_backward_dkv_d16(ATT_BWD_PARAMS) { attn_backward_dkv<16>(ATT_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_backward_dkv_d32(ATT_BWD_PARAMS) { attn_backward_dkv<32>(ATT_BWD_ARGS); }
