// The wide tensor-core attention kernels (head size 64; LLMTS_CUDA_ATTENTION_ROWS=128): 128 query rows a block and 32
// a warp in two m16 row tiles, for the forward and the dQ backward, with the primitives of attention_mma.cuh and the
// same conventions as attention_mma.cu (whose 64-row kernels stay the default until these are measured).

#include "attention_mma.cuh"

// The wide forward: 128 query rows a block, 32 a warp in two row tiles, so each K and V fragment a warp reads from
// shared memory feeds twice the products (the 64-row kernel reads one B fragment per two mma). Key tiles are taken
// in halves of 32 (the scores of both row tiles then take 32 registers, not 64, and three blocks fit an SM at the
// 168 registers __launch_bounds__ asks for); a half wholly after a warp's rows is skipped by that warp. Head size 64
// only (at 128 the accumulators would not fit).
// grid (NH, B, ceil(T/128)), block 128, dynamic shared 6·64·(D+8)·2 bytes (the 128-row Q tile, two K and two V tiles).
template <int D>
__device__ __forceinline__ void fa_forward_wide(llm_bf16* out, float* lse, const llm_bf16* qkv, int T, int NH, int KVH, float scale) {
  extern __shared__ uint4 fa_smem[];
  const int TILE = FA_ROWS * (D + FA_PAD);
  llm_bf16* Qs = (llm_bf16*)fa_smem;   // 128 rows
  llm_bf16* Ks = Qs + 2 * TILE;        // Ks + i·2·TILE, Vs + i·2·TILE: buffer i
  llm_bf16* Vs = Ks + TILE;
  const int qb = gridDim.z - 1 - blockIdx.z;   // most key tiles first
  const int b = blockIdx.y, h = blockIdx.x, g = h / (NH / KVH), QKV = (NH + 2 * KVH) * D;
  const int warp = threadIdx.x >> 5, q0 = qb * 2 * FA_ROWS, w0 = q0 + warp * 32, rowA = w0 + ((threadIdx.x & 31) >> 2);
  const int last = min(2 * qb + 1, (T - 1) / FA_ROWS);   // key tiles up to the block's last row (and T)
  const llm_bf16* seq = qkv + (long long)b * T * QKV;
  const float sl2 = scale * FA_LOG2E;
  fa_load<D>(Qs, seq + h * D, QKV, q0, T);
  fa_load<D>(Qs + TILE, seq + h * D, QKV, q0 + FA_ROWS, T);
  fa_load<D>(Ks, seq + (NH + g) * D, QKV, 0, T);
  fa_load<D>(Vs, seq + (NH + KVH + g) * D, QKV, 0, T);
  llm_cp_async_commit();
  unsigned qf[2][D / 16][4];
  float o[2][D / 8][4], m[2][2], l[2][2];
#pragma unroll
  for (int i = 0; i < 2; i++) {
    m[i][0] = m[i][1] = -LLM_INF;
    l[i][0] = l[i][1] = 0.f;
    for (int t = 0; t < D / 8; t++) for (int e = 0; e < 4; e++) o[i][t][e] = 0.f;
  }
  for (int kt = 0; kt <= last; kt++) {
    const int cur = fa_next_kv<D>(Ks, Vs, seq, kt, last, NH, KVH, g, T);
    if (kt == 0) {
#pragma unroll
      for (int i = 0; i < 2; i++) fa_afrags<D>(qf[i], Qs, warp * 32 + 16 * i);
    }
#pragma unroll
    for (int half = 0; half < 2; half++) {
      const int key0 = kt * FA_ROWS + 32 * half;
      if (key0 > w0 + 31) continue;   // warp-uniform; keys 0..31 always run, so every row's maximum is finite after them
      float s[2][4][4];
      fa_mul_bt_m<D, 2, 4>(s, qf, Ks + cur + 32 * half * (D + FA_PAD));
      const bool mask = key0 + 31 > w0;
#pragma unroll
      for (int i = 0; i < 2; i++) {
        float mx0, mx1;
        fa_scale_mask<4>(s[i], sl2, mask, key0, rowA + 16 * i, mx0, mx1);
        fa_online<D, 4>(s[i], o[i], m[i][0], m[i][1], l[i][0], l[i][1], mx0, mx1);
      }
      fa_mul_acc_m<D, 2, 4>(o, s, Vs + cur + 32 * half * (D + FA_PAD));
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 2; i++) fa_store_out<D>(out, lse, o[i], m[i][0], m[i][1], l[i][0], l[i][1], rowA + 16 * i, b, h, T, NH);
}

// The wide dQ kernel: 128 query rows a block, 32 a warp in two row tiles, each key tile taken in two halves of 32
// keys (so the scores of both row tiles fit the registers beside dQ and the Q and dO fragments): every K and V
// fragment read from shared memory feeds four products instead of two. Halves wholly after a warp's rows are
// skipped. Head size 64 only. grid (NH, B, ceil(T/128)), block 128, dynamic shared 8·64·(D+8)·2 bytes (128-row Q
// and dO tiles, two K and two V tiles).
template <int D>
__device__ __forceinline__ void fa_backward_dq_wide(llm_bf16* dqkv, const llm_bf16* dout, const llm_bf16* qkv, const float* lse,
                                                    const float* Dd, int T, int NH, int KVH, float scale, int accumulate,
                                                    const float* cosT, const float* sinT) {
  extern __shared__ uint4 fa_smem[];
  const int TILE = FA_ROWS * (D + FA_PAD);
  llm_bf16* Qs = (llm_bf16*)fa_smem;   // 128 rows
  llm_bf16* Os = Qs + 2 * TILE;        // 128 rows
  llm_bf16* Ks = Os + 2 * TILE;        // Ks + i·2·TILE, Vs + i·2·TILE: buffer i
  llm_bf16* Vs = Ks + TILE;
  const int qb = gridDim.z - 1 - blockIdx.z;   // most key tiles first
  const int b = blockIdx.y, h = blockIdx.x, g = h / (NH / KVH), QKV = (NH + 2 * KVH) * D;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, tq = lane & 3;
  const int q0 = qb * 2 * FA_ROWS, w0 = q0 + warp * 32, rowA = w0 + (lane >> 2);   // row tile i: rowA + 16i (+8)
  const int last = min(2 * qb + 1, (T - 1) / FA_ROWS);
  const llm_bf16* seq = qkv + (long long)b * T * QKV;
  const llm_bf16* dseq = dout + (long long)b * T * NH * D + h * D;
  const float sl2 = scale * FA_LOG2E;
  for (int i = 0; i < 2; i++) {
    fa_load<D>(Qs + i * TILE, seq + h * D, QKV, q0 + i * FA_ROWS, T);
    fa_load<D>(Os + i * TILE, dseq, (long long)NH * D, q0 + i * FA_ROWS, T);
  }
  fa_load<D>(Ks, seq + (NH + g) * D, QKV, 0, T);
  fa_load<D>(Vs, seq + (NH + KVH + g) * D, QKV, 0, T);
  llm_cp_async_commit();
  const long long st = ((long long)b * NH + h) * T;
  float L[2][2], Dr[2][2];   // [row tile][row A / B]
#pragma unroll
  for (int i = 0; i < 2; i++) {
    for (int r = 0; r < 2; r++) {
      const int row = rowA + 16 * i + 8 * r;
      L[i][r] = row < T ? lse[st + row] * FA_LOG2E : 0.f;
      Dr[i][r] = row < T ? Dd[st + row] : 0.f;
    }
  }
  unsigned qf[2][D / 16][4], of[2][D / 16][4];
  float dq[2][D / 8][4];
#pragma unroll
  for (int i = 0; i < 2; i++) for (int t = 0; t < D / 8; t++) for (int e = 0; e < 4; e++) dq[i][t][e] = 0.f;
  for (int kt = 0; kt <= last; kt++) {
    const int cur = fa_next_kv<D>(Ks, Vs, seq, kt, last, NH, KVH, g, T);
    if (kt == 0) {
#pragma unroll
      for (int i = 0; i < 2; i++) {
        fa_afrags<D>(qf[i], Qs, warp * 32 + 16 * i);
        fa_afrags<D>(of[i], Os, warp * 32 + 16 * i);
      }
    }
#pragma unroll
    for (int half = 0; half < 2; half++) {
      const int key0 = kt * FA_ROWS + 32 * half;
      if (key0 > w0 + 31) continue;   // warp-uniform: every key of this half is after every row of the warp
      const llm_bf16* K = Ks + cur + 32 * half * (D + FA_PAD);
      float s[2][4][4], dp[2][4][4];
      fa_mul_bt_m<D, 2, 4>(s, qf, K);                                    // scores
      fa_mul_bt_m<D, 2, 4>(dp, of, Vs + cur + 32 * half * (D + FA_PAD));  // dP = dO·Vᵀ
      const bool mask = key0 + 31 > w0;
#pragma unroll
      for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 4; j++) {
          for (int e = 0; e < 2; e++) {
            const int key = key0 + 8 * j + 2 * tq + e, ra = rowA + 16 * i;
            float p0 = mask && key > ra ? 0.f : exp2f(s[i][j][e] * sl2 - L[i][0]);
            float p1 = mask && key > ra + 8 ? 0.f : exp2f(s[i][j][2 + e] * sl2 - L[i][1]);
            s[i][j][e] = p0 * (dp[i][j][e] - Dr[i][0]);   // dS (scale applied at the end)
            s[i][j][2 + e] = p1 * (dp[i][j][2 + e] - Dr[i][1]);
          }
        }
      }
      fa_mul_acc_m<D, 2, 4>(dq, s, K);   // dQ += dS·K
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 2; i++) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
      const int row = rowA + 16 * i + 8 * r;
      if (row < T) fa_store_row<D>(dqkv + ((long long)b * T + row) * QKV + h * D, dq[i], r, scale, cosT, sinT, row, accumulate);
    }
  }
}

extern "C" __global__ void __launch_bounds__(128, 3) attention_mma_forward_wide_d64(FA_FWD_PARAMS) { fa_forward_wide<64>(FA_FWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_mma_backward_dq_wide_d64(FA_BWD_PARAMS) { fa_backward_dq_wide<64>(FA_BWD_ARGS); }
