// Causal GQA flash attention on tensor cores (mma.sync m16n8k16, bf16 in, f32 accumulate) for head sizes 64 and 128:
// the fast path of attention.cu's reference kernels. Scores stay in registers (log2 units, exp2), never a T×T
// buffer; backward recomputes the probabilities from the saved log-sum-exp in two kernels, dQ over query blocks and
// dK/dV over key blocks: no atomics, deterministic (the "atomic-dq" variant trades that for speed). Tile primitives:
// attention_mma.cuh.

#include "attention_mma.cuh"

// out: (B,T,NH·D) bf16   lse: (B,NH,T) f32   qkv: (B,T,QKV) bf16. grid (NH, B, ceil(T/64)), block 128,
// dynamic shared 5·64·(D+8)·2 bytes (Q, two K and two V tiles).
// A block owns 64 query rows, 16 per warp; 64-row K/V tiles stream through shared memory, double-buffered with
// cp.async (the next tile is in flight while the tensor cores work on this one); the causal mask is applied on the
// diagonal tile only.
template <int D>
__device__ __forceinline__ void fa_forward(llm_bf16* out, float* lse, const llm_bf16* qkv, int T, int NH, int KVH, float scale) {
  extern __shared__ uint4 fa_smem[];
  const int TILE = FA_ROWS * (D + FA_PAD);
  llm_bf16* Qs = (llm_bf16*)fa_smem;
  llm_bf16* Ks = Qs + TILE;       // Ks + i·2·TILE, Vs + i·2·TILE: buffer i
  llm_bf16* Vs = Ks + TILE;
  // blocks start in launch order (x fastest): reversing z starts the longest blocks of every head first, none last
  const int qb = gridDim.z - 1 - blockIdx.z;   // the last query block has the most key tiles: start it first
  const int b = blockIdx.y, h = blockIdx.x, g = h / (NH / KVH), QKV = (NH + 2 * KVH) * D;
  const int warp = threadIdx.x >> 5, q0 = qb * FA_ROWS, rowA = q0 + warp * 16 + ((threadIdx.x & 31) >> 2);
  const llm_bf16* seq = qkv + (long long)b * T * QKV;
  const float sl2 = scale * FA_LOG2E;
  fa_load<D>(Qs, seq + h * D, QKV, q0, T);
  fa_load<D>(Ks, seq + (NH + g) * D, QKV, 0, T);
  fa_load<D>(Vs, seq + (NH + KVH + g) * D, QKV, 0, T);
  llm_cp_async_commit();
  unsigned qf[D / 16][4];
  float o[D / 8][4], m0 = -LLM_INF, m1 = -LLM_INF, l0 = 0.f, l1 = 0.f;
  for (int t = 0; t < D / 8; t++) for (int e = 0; e < 4; e++) o[t][e] = 0.f;
  for (int kt = 0; kt <= qb; kt++) {
    const int cur = fa_next_kv<D>(Ks, Vs, seq, kt, qb, NH, KVH, g, T);
    if (kt == 0) fa_afrags<D>(qf, Qs, warp * 16);
    float s[8][4], mx0, mx1;
    fa_mul_bt<D>(s, qf, Ks + cur);
    // every row sees key kt·64 <= its position in every tile it visits, so the maxima are finite
    fa_scale_mask(s, sl2, kt == qb, kt * FA_ROWS, rowA, mx0, mx1);
    fa_online<D>(s, o, m0, m1, l0, l1, mx0, mx1);
    fa_mul_acc<D>(o, s, Vs + cur);
    __syncthreads();
  }
  fa_store_out<D>(out, lse, o, m0, m1, l0, l1, rowA, b, h, T, NH);
}

// dqkv: (B,T,QKV) bf16, q slots += (= when accumulate is 0)   dout: (B,T,NH·D) bf16   qkv: (B,T,QKV) bf16   lse, Dd: (B,NH,T) f32
// grid (NH, B, ceil(T/64)), block 128, dynamic shared 6·64·(D+8)·2 bytes (Q, dO, two K and two V tiles).
// Given the RoPE tables cosT/sinT, the dq (and fa_backward_dkv's dk) stores apply the transposed rotation: dqkv gets
// the gradient before RoPE, with no separate ropeBackward pass.
// KW: keys of a tile taken at a time. dQ sums over the keys in the same order either way, so the results are the
// same; 32 at head size 64 holds a thread's state in 132 registers, 128 with a little spilled (4 blocks an SM).
template <int D, int KW>
__device__ __forceinline__ void fa_backward_dq(llm_bf16* dqkv, const llm_bf16* dout, const llm_bf16* qkv, const float* lse,
                                               const float* Dd, int T, int NH, int KVH, float scale, int accumulate,
                                               const float* cosT, const float* sinT) {
  extern __shared__ uint4 fa_smem[];
  const int TILE = FA_ROWS * (D + FA_PAD);
  llm_bf16* Qs = (llm_bf16*)fa_smem;
  llm_bf16* Os = Qs + TILE;
  llm_bf16* Ks = Os + TILE;       // Ks + i·2·TILE, Vs + i·2·TILE: buffer i
  llm_bf16* Vs = Ks + TILE;
  const int qb = gridDim.z - 1 - blockIdx.z;   // most key tiles first
  const int b = blockIdx.y, h = blockIdx.x, g = h / (NH / KVH), QKV = (NH + 2 * KVH) * D;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int q0 = qb * FA_ROWS, rowA = q0 + warp * 16 + (lane >> 2), rowB = rowA + 8;
  const llm_bf16* seq = qkv + (long long)b * T * QKV;
  const float sl2 = scale * FA_LOG2E;
  fa_load<D>(Qs, seq + h * D, QKV, q0, T);
  fa_load<D>(Os, dout + (long long)b * T * NH * D + h * D, (long long)NH * D, q0, T);
  fa_load<D>(Ks, seq + (NH + g) * D, QKV, 0, T);
  fa_load<D>(Vs, seq + (NH + KVH + g) * D, QKV, 0, T);
  llm_cp_async_commit();
  const long long st = ((long long)b * NH + h) * T;
  const float L0 = rowA < T ? lse[st + rowA] * FA_LOG2E : 0.f, L1 = rowB < T ? lse[st + rowB] * FA_LOG2E : 0.f;
  const float D0 = rowA < T ? Dd[st + rowA] : 0.f, D1 = rowB < T ? Dd[st + rowB] : 0.f;
  unsigned qf[D / 16][4], of[D / 16][4];
  float dq[D / 8][4];
  for (int t = 0; t < D / 8; t++) for (int e = 0; e < 4; e++) dq[t][e] = 0.f;
  for (int kt = 0; kt <= qb; kt++) {
    const int cur = fa_next_kv<D>(Ks, Vs, seq, kt, qb, NH, KVH, g, T);
    if (kt == 0) {
      fa_afrags<D>(qf, Qs, warp * 16);
      fa_afrags<D>(of, Os, warp * 16);
    }
    const bool mask = kt == qb;
#pragma unroll
    for (int part = 0; part < FA_ROWS / KW; part++) {   // keys c0..c0+KW-1 of the tile
      const int c0 = part * KW;
      const llm_bf16* Kp = Ks + cur + c0 * (D + FA_PAD);
      float s[KW / 8][4], dp[KW / 8][4];
      fa_mul_bt<D, KW / 8>(s, qf, Kp);                             // scores
      fa_mul_bt<D, KW / 8>(dp, of, Vs + cur + c0 * (D + FA_PAD));  // dP = dO·Vᵀ
      fa_dscores<KW / 8>(s, dp, kt * FA_ROWS + c0, rowA, mask, L0, L1, D0, D1, sl2);   // dS
      fa_mul_acc<D, KW / 8>(dq, s, Kp);   // dQ += dS·K
    }
    __syncthreads();
  }
  const int rows[2] = { rowA, rowB };
#pragma unroll   // constant r: the accumulators stay in registers
  for (int r = 0; r < 2; r++) {
    if (rows[r] < T) fa_store_row<D>(dqkv + ((long long)b * T + rows[r]) * QKV + h * D, dq, r, scale, cosT, sinT, rows[r], accumulate);
  }
}

// dqkv: (B,T,QKV) bf16, k and v slots of K/V head blockIdx.x +=   (other arguments as fa_backward_dq)
// grid (KVH, B, ceil(T/64)), block 128, dynamic shared 6·64·(D+8)·2 + 4·64·4 bytes (K, V, two Q and two dO tiles,
// two lse and two D rows), plus 64·72·2 with DQ (the dSᵀ tile). A block owns 64 key rows, 16 per warp; the query
// tiles of every query head of its K/V head stream through shared memory, double-buffered with cp.async.
// DQ (the "atomic-dq" variant): also dqacc (B,T,NH·D) f32 += scale·dS·K with atomics (attention_dq_finish then
// moves it into dqkv): five tile products per tile pair instead of seven, but the sums are not deterministic.
// QW: query columns of a tile taken at a time. 32 at head size 64 holds a thread's state in 168 registers (3 blocks
// an SM; 214 and 224 with DQ at QW = 64: 2 blocks); the products and their order are the same, so are the results.
template <int D, bool DQ, int QW>
__device__ __forceinline__ void fa_backward_dkv(llm_bf16* dqkv, const llm_bf16* dout, const llm_bf16* qkv, const float* lse,
                                                const float* Dd, int T, int NH, int KVH, float scale, int accumulate,
                                                const float* cosT, const float* sinT, float* dqacc) {
  extern __shared__ uint4 fa_smem[];
  const int TILE = FA_ROWS * (D + FA_PAD);
  llm_bf16* Ks = (llm_bf16*)fa_smem;
  llm_bf16* Vs = Ks + TILE;
  llm_bf16* Qs = Vs + TILE;       // Qs + i·2·TILE, Os + i·2·TILE: buffer i
  llm_bf16* Os = Qs + TILE;
  float* Ls = (float*)(Qs + 4 * TILE);   // Ls + i·2·64, Dsh + i·2·64: buffer i
  float* Dsh = Ls + FA_ROWS;
  llm_bf16* dSt = (llm_bf16*)(Ls + 4 * FA_ROWS);   // DQ: dSᵀ (64 keys x 64 queries), row stride 64 + PAD
  // key block 0 has the most query tiles: blockIdx.z = 0 runs first
  const int b = blockIdx.y, g = blockIdx.x, group = NH / KVH, QKV = (NH + 2 * KVH) * D;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, tq = lane & 3;
  const int kb = blockIdx.z, k0 = kb * FA_ROWS, keyA = k0 + warp * 16 + (lane >> 2), keyB = keyA + 8;
  const llm_bf16* seq = qkv + (long long)b * T * QKV;
  const llm_bf16* dseq = dout + (long long)b * T * NH * D;
  const float sl2 = scale * FA_LOG2E;
  const int nq = (T + FA_ROWS - 1) / FA_ROWS, per = nq - kb, iters = group * per;
  // iteration i: query head g·group + i / per, query tile kb + i % per
  fa_load<D>(Ks, seq + (NH + g) * D, QKV, k0, T);
  fa_load<D>(Vs, seq + (NH + KVH + g) * D, QKV, k0, T);
  fa_load<D>(Qs, seq + g * group * D, QKV, k0, T);
  fa_load<D>(Os, dseq + g * group * D, (long long)NH * D, k0, T);
  fa_load_stats(Ls, Dsh, lse, Dd, ((long long)b * NH + g * group) * T, k0, T);
  llm_cp_async_commit();
  float dk[D / 8][4], dv[D / 8][4];
  for (int t = 0; t < D / 8; t++) for (int e = 0; e < 4; e++) { dk[t][e] = 0.f; dv[t][e] = 0.f; }
  for (int i = 0; i < iters; i++) {
    const int qt = kb + i % per, buf = i & 1;
    if (i + 1 < iters) {
      const int h = g * group + (i + 1) / per, q1 = (kb + (i + 1) % per) * FA_ROWS, nb = buf ^ 1;
      fa_load<D>(Qs + nb * 2 * TILE, seq + h * D, QKV, q1, T);
      fa_load<D>(Os + nb * 2 * TILE, dseq + h * D, (long long)NH * D, q1, T);
      fa_load_stats(Ls + nb * 2 * FA_ROWS, Dsh + nb * 2 * FA_ROWS, lse, Dd, ((long long)b * NH + h) * T, q1, T);
    }
    fa_wait_current(i + 1 < iters);
    __syncthreads();
    const llm_bf16* Q = Qs + buf * 2 * TILE;
    const llm_bf16* O = Os + buf * 2 * TILE;
    const float* L = Ls + buf * 2 * FA_ROWS;
    const float* Dv = Dsh + buf * 2 * FA_ROWS;
    const bool mask = qt == kb || qt == nq - 1;   // the diagonal tile, and query rows past T in the last one
#pragma unroll
    for (int part = 0; part < FA_ROWS / QW; part++) {   // query columns c0..c0+QW-1 of the tile
      const int c0 = part * QW;
      const llm_bf16* Qp = Q + c0 * (D + FA_PAD);
      const llm_bf16* Op = O + c0 * (D + FA_PAD);
      unsigned kf[D / 16][4];
      float s[QW / 8][4], dp[QW / 8][4];
      fa_afrags<D>(kf, Ks, warp * 16);
      fa_mul_bt<D, QW / 8>(s, kf, Qp);    // Sᵀ = K·Qᵀ: rows are keys, columns queries
      fa_afrags<D>(kf, Vs, warp * 16);
      fa_mul_bt<D, QW / 8>(dp, kf, Op);   // dPᵀ = V·dOᵀ
      fa_probs_t<QW / 8>(s, dp, c0, qt, keyA, mask, T, L, Dv, sl2);
      if (DQ) {   // dSᵀ to shared memory (bf16, as the products below round it)
        llm_bf16* row = dSt + (warp * 16 + (lane >> 2)) * (FA_ROWS + FA_PAD) + c0 + 2 * tq;
        for (int j = 0; j < QW / 8; j++) {
          *(unsigned*)(row + 8 * j) = llm_pack2(dp[j][0], dp[j][1]);
          *(unsigned*)(row + 8 * (FA_ROWS + FA_PAD) + 8 * j) = llm_pack2(dp[j][2], dp[j][3]);
        }
      }
      fa_mul_acc<D, QW / 8>(dv, s, Op);   // dV += Pᵀ·dO
      fa_mul_acc<D, QW / 8>(dk, dp, Qp);  // dK += dSᵀ·Q
    }
    __syncthreads();
    if (DQ) {   // dQ rows of this warp (16 queries) += dS·K over the block's 64 keys, added to dqacc
      const int h = g * group + i / per, qA = qt * FA_ROWS + warp * 16 + (lane >> 2);
      float dq[D / 8][4];
      fa_mul_trans<D>(dq, dSt, warp * 16, Ks);
      for (int r = 0; r < 2; r++) {
        const int q = qA + 8 * r;
        if (q >= T) continue;
        float* dst = dqacc + ((long long)b * T + q) * NH * D + h * D + 2 * tq;
        for (int t = 0; t < D / 8; t++) llm_atomic_add2(dst + 8 * t, dq[t][2 * r] * scale, dq[t][2 * r + 1] * scale);
      }
      // no barrier here: the next iteration rewrites dSᵀ only after its first __syncthreads, and its loads before
      // that go to the Q/dO buffer this iteration finished reading before the barrier above
    }
  }
  const int keys[2] = { keyA, keyB };
#pragma unroll   // constant r: the accumulators stay in registers
  for (int r = 0; r < 2; r++) {
    if (keys[r] >= T) continue;
    llm_bf16* kdst = dqkv + ((long long)b * T + keys[r]) * QKV + (NH + g) * D;
    fa_store_row<D>(kdst, dk, r, scale, cosT, sinT, keys[r], accumulate);
    fa_store_row<D>(kdst + KVH * D, dv, r, 1.f, nullptr, nullptr, 0, accumulate);
  }
}

extern "C" __global__ void __launch_bounds__(128) attention_mma_forward_d64(FA_FWD_PARAMS) { fa_forward<64>(FA_FWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_mma_forward_d128(FA_FWD_PARAMS) { fa_forward<128>(FA_FWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_mma_backward_dq_d64(FA_BWD_PARAMS) { fa_backward_dq<64, 64>(FA_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_mma_backward_dq_d128(FA_BWD_PARAMS) { fa_backward_dq<128, 64>(FA_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128) attention_mma_backward_dkv_d64(FA_BWD_PARAMS) {
  fa_backward_dkv<64, false, 32>(FA_BWD_ARGS, nullptr); }
extern "C" __global__ void __launch_bounds__(128) attention_mma_backward_dkv_d128(FA_BWD_PARAMS) {
  fa_backward_dkv<128, false, 64>(FA_BWD_ARGS, nullptr); }
// The "4-blocks" backward (head size 64): the same kernels capped at 128 registers a thread (a few bytes spill), so
// four blocks fit an SM instead of three: more warps to hide the latency of their dependent mma/exp chains.
extern "C" __global__ void __launch_bounds__(128, 4) attention_mma_backward_dq_b4_d64(FA_BWD_PARAMS) { fa_backward_dq<64, 32>(FA_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128, 4) attention_mma_backward_dkv_b4_d64(FA_BWD_PARAMS) {
  fa_backward_dkv<64, false, 32>(FA_BWD_ARGS, nullptr); }
extern "C" __global__ void __launch_bounds__(128) attention_mma_backward_dkvq_d64(FA_BWDQ_PARAMS) {
  fa_backward_dkv<64, true, 32>(FA_BWD_ARGS, dqacc); }
extern "C" __global__ void __launch_bounds__(128) attention_mma_backward_dkvq_d128(FA_BWDQ_PARAMS) {
  fa_backward_dkv<128, true, 64>(FA_BWD_ARGS, dqacc); }

// dqkv: (BT,QKV) bf16, q slots (+)= dqacc: (BT,NH·D) f32 (= when accumulate is 0); with cosT/sinT (T, D/2) the
// transposed RoPE rotation of each row's position (row % T) first. 8 pairs (i, i + D/2) a thread (D % 16 == 0).
extern "C" __global__ void attention_dq_finish(llm_bf16* dqkv, const float* dqacc, const float* cosT, const float* sinT,
                                               int BT, int T, int NH, int KVH, int D, int accumulate) {
  const int half = D / 2, per = NH * half / 8;   // units of 8 pairs in a row
  const long long u = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (u >= (long long)BT * per) return;
  const long long row = u / per;
  const int h = (int)(u - row * per) / (half / 8), k = ((int)(u - row * per) % (half / 8)) * 8;
  const float* src = dqacc + (row * NH + h) * D + k;
  llm_bf16* dst = dqkv + row * (NH + 2 * KVH) * D + h * D + k;
  float x1[8], x2[8], c[8], s[8], old[8];
  llm_ld8(src, 0, 0, x1);
  llm_ld8(src, 0, half, x2);
  if (cosT != nullptr) {
    const long long at = (row % T) * half + k;
    llm_ld8(cosT, 0, at, c);
    llm_ld8(sinT, 0, at, s);
    for (int j = 0; j < 8; j++) { float a = x1[j], b = x2[j]; x1[j] = a * c[j] + b * s[j]; x2[j] = b * c[j] - a * s[j]; }
  }
  if (accumulate) {
    llm_ld8(dst, 1, 0, old); for (int j = 0; j < 8; j++) x1[j] += old[j];
    llm_ld8(dst, 1, half, old); for (int j = 0; j < 8; j++) x2[j] += old[j];
  }
  llm_st8(dst, 1, 0, x1);
  llm_st8(dst, 1, half, x2);
}
