// The attention on Hopper's warpgroup MMA (LLMTS_CUDA_ATTENTION=wgmma, head size 64, sm_90a): the 64-row forward,
// dQ and dK/dV kernels of attention_mma.cu with their tile products done by wgmma. A block is one warpgroup: its 64
// rows are the A operand (16 rows a warp, in registers, as before), and the other tile is read by the tensor cores
// straight from shared memory (wgmma.cuh), where mma.sync had every warp load each of its fragments with ldmatrix.
// Scores, online softmax, masking and the stores are attention_mma's. Elsewhere (sm_80, PTX targets) the kernels are
// empty and the host never launches them.

#include "attention_mma.cuh"
#include "wgmma.cuh"

#define FA_SW 4096   // bf16 of a 128-byte-swizzled 64 x 64 tile (8 KB)

#if LLM_WGMMA

/** Starts copying rows [r0, r0+64) of a (rows, ld) bf16 matrix at `base` (64 columns) into the swizzled tile sh
 *  (chunk c of row r at chunk c ^ (r % 8); complete after commit + wait + fence + __syncthreads); rows >= rEnd zeroed. */
__device__ __forceinline__ void fa_load_sw(llm_bf16* sh, const llm_bf16* base, long long ld, int r0, int rEnd) {
  for (int i = threadIdx.x; i < FA_ROWS * 8; i += blockDim.x) {
    int r = i >> 3, c = i & 7;
    llm_bf16* dst = sh + r * 64 + ((c ^ (r & 7)) << 3);
    if (r0 + r < rEnd) llm_cp_async16(dst, base + (long long)(r0 + r) * ld + c * 8);
    else *(uint4*)dst = make_uint4(0u, 0u, 0u, 0u);
  }
}

/** fa_next_kv for the swizzled K/V tiles at KV + i·2·FA_SW (K, then V): starts tile kt+1, waits for tile kt, makes
 *  it visible to the tensor cores and syncs the block. Returns tile kt's K tile. */
__device__ __forceinline__ llm_bf16* fa_next_kv_sw(llm_bf16* KV, const llm_bf16* seq, int kt, int last, int NH, int KVH, int g,
                                                  int T) {
  const int QKV = (NH + 2 * KVH) * 64, cur = (kt & 1) * 2 * FA_SW, next = 2 * FA_SW - cur;
  if (kt < last) {
    fa_load_sw(KV + next, seq + (NH + g) * 64, QKV, (kt + 1) * FA_ROWS, T);
    fa_load_sw(KV + next + FA_SW, seq + (NH + KVH + g) * 64, QKV, (kt + 1) * FA_ROWS, T);
  }
  fa_wait_current(kt < last);
  llm_fence_proxy_async();
  __syncthreads();
  return KV + cur;
}

/** Issues KS wgmma (one per 16 of the shared dimension) as one group: d (64 x N, N 64 or 32; this thread's n8
 *  tiles) (+)= A (64 x 16·KS: a[kk] the A fragments of columns 16kk..16kk+15) times the tile at shared address
 *  `addr`: its rowsᵀ (TRANS_B 0: K-major, 32 bytes a step) or the tile itself (TRANS_B 1: N-major, 16 rows a step).
 *  d is not to be touched until fa_wg_wait. */
template <int TRANS_B, int N = 64, int KS = 4>
__device__ __forceinline__ void fa_wg_issue(float (*d)[4], const unsigned (*a)[4], unsigned addr, bool accumulate) {
  if (accumulate) llm_wgmma_hold<N / 8>(d);
  llm_wgmma_fence();
  for (int kk = 0; kk < KS; kk++) {
    const unsigned long long desc = llm_wgmma_desc(addr + (TRANS_B ? 2048 : 32) * kk);
    if constexpr (N == 64) llm_wgmma_m64n64k16<TRANS_B>(d, a[kk], desc, accumulate || kk > 0);
    else llm_wgmma_m64n32k16<TRANS_B>(d, a[kk], desc, accumulate || kk > 0);
  }
  llm_wgmma_commit();
}

/** Waits for every group issued, then ties d (and d2), NT n8 tiles each, to this point. */
template <int NT = 8>
__device__ __forceinline__ void fa_wg_wait(float (*d)[4], float (*d2)[4] = nullptr) {
  llm_wgmma_wait<0>();
  llm_wgmma_hold<NT>(d);
  if (d2 != nullptr) llm_wgmma_hold<NT>(d2);
}

template <int TRANS_B, int N = 64, int KS = 4>
__device__ __forceinline__ void fa_wg_mul(float (*d)[4], const unsigned (*a)[4], unsigned addr, bool accumulate) {
  fa_wg_issue<TRANS_B, N, KS>(d, a, addr, accumulate);
  fa_wg_wait<N / 8>(d);
}

/** p (16 x 16·KK C fragments of one warp, 2·KK n8 tiles) as A fragments: a[kk] covers columns 16kk..16kk+15. */
template <int KK = 4>
__device__ __forceinline__ void fa_pack_a(unsigned (*a)[4], const float (*p)[4]) {
  for (int kk = 0; kk < KK; kk++) {
    a[kk][0] = llm_pack2(p[2 * kk][0], p[2 * kk][1]);
    a[kk][1] = llm_pack2(p[2 * kk][2], p[2 * kk][3]);
    a[kk][2] = llm_pack2(p[2 * kk + 1][0], p[2 * kk + 1][1]);
    a[kk][3] = llm_pack2(p[2 * kk + 1][2], p[2 * kk + 1][3]);
  }
}
#endif

// out: (B,T,NH·64) bf16   lse: (B,NH,T) f32   qkv: (B,T,QKV) bf16. grid (NH, B, ceil(T/64)), block 128 (one
// warpgroup), dynamic shared 64·72·2 + 4·8192 + 1024 bytes: the padded Q tile, two K and two V swizzled tiles, and
// the slack that aligns them to 1024 bytes.
extern "C" __global__ void __launch_bounds__(128) attention_wgmma_forward_d64(FA_FWD_PARAMS) {
#if LLM_WGMMA
  extern __shared__ uint4 fa_smem[];
  llm_bf16* Qs = (llm_bf16*)fa_smem;
  llm_bf16* KV = llm_align1024(Qs + FA_ROWS * (64 + FA_PAD));   // K0 V0 K1 V1
  const int qb = gridDim.z - 1 - blockIdx.z;   // the last query block has the most key tiles: start it first
  const int b = blockIdx.y, h = blockIdx.x, g = h / (NH / KVH), QKV = (NH + 2 * KVH) * 64;
  const int warp = threadIdx.x >> 5, q0 = qb * FA_ROWS, rowA = q0 + warp * 16 + ((threadIdx.x & 31) >> 2);
  const llm_bf16* seq = qkv + (long long)b * T * QKV;
  const float sl2 = scale * FA_LOG2E;
  fa_load<64>(Qs, seq + h * 64, QKV, q0, T);
  fa_load_sw(KV, seq + (NH + g) * 64, QKV, 0, T);
  fa_load_sw(KV + FA_SW, seq + (NH + KVH + g) * 64, QKV, 0, T);
  llm_cp_async_commit();
  unsigned qf[4][4];
  float o[8][4], m0 = -LLM_INF, m1 = -LLM_INF, l0 = 0.f, l1 = 0.f;
  for (int t = 0; t < 8; t++) for (int e = 0; e < 4; e++) o[t][e] = 0.f;
  for (int kt = 0; kt <= qb; kt++) {
    const llm_bf16* Kt = fa_next_kv_sw(KV, seq, kt, qb, NH, KVH, g, T);
    const unsigned kAddr = llm_smem_addr(Kt), vAddr = kAddr + FA_SW * 2;
    if (kt == 0) fa_afrags<64>(qf, Qs, warp * 16);
    float s[8][4], mx0, mx1;
    fa_wg_mul<0>(s, qf, kAddr, false);   // S = Q·Kᵀ
    // every row sees key kt·64 <= its position in every tile it visits, so the maxima are finite
    fa_scale_mask(s, sl2, kt == qb, kt * FA_ROWS, rowA, mx0, mx1);
    fa_online<64>(s, o, m0, m1, l0, l1, mx0, mx1);
    unsigned p[4][4];
    fa_pack_a(p, s);
    fa_wg_mul<1>(o, p, vAddr, true);   // O += P·V
    __syncthreads();   // the tiles are read: the next step may load over them
  }
  fa_store_out<64>(out, lse, o, m0, m1, l0, l1, rowA, b, h, T, NH);
#endif
}


// attention_mma_backward_dq_d64 on wgmma: dqkv's q slots (+)= dQ (arguments as there). grid (NH, B, ceil(T/64)),
// block 128, dynamic shared 2·64·72·2 + 4·8192 + 1024 bytes (padded Q and dO tiles, two K and two V swizzled tiles,
// the alignment slack). Per key tile: S = Q·Kᵀ and dP = dO·Vᵀ (K-major K and V), dQ += dS·K (N-major K).
extern "C" __global__ void __launch_bounds__(128) attention_wgmma_backward_dq_d64(FA_BWD_PARAMS) {
#if LLM_WGMMA
  extern __shared__ uint4 fa_smem[];
  const int TILE = FA_ROWS * (64 + FA_PAD);
  llm_bf16* Qs = (llm_bf16*)fa_smem;
  llm_bf16* Os = Qs + TILE;
  llm_bf16* KV = llm_align1024(Os + TILE);   // K0 V0 K1 V1
  const int qb = gridDim.z - 1 - blockIdx.z;   // most key tiles first
  const int b = blockIdx.y, h = blockIdx.x, g = h / (NH / KVH), QKV = (NH + 2 * KVH) * 64;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int q0 = qb * FA_ROWS, rowA = q0 + warp * 16 + (lane >> 2), rowB = rowA + 8;
  const llm_bf16* seq = qkv + (long long)b * T * QKV;
  const float sl2 = scale * FA_LOG2E;
  fa_load<64>(Qs, seq + h * 64, QKV, q0, T);
  fa_load<64>(Os, dout + (long long)b * T * NH * 64 + h * 64, (long long)NH * 64, q0, T);
  fa_load_sw(KV, seq + (NH + g) * 64, QKV, 0, T);
  fa_load_sw(KV + FA_SW, seq + (NH + KVH + g) * 64, QKV, 0, T);
  llm_cp_async_commit();
  const long long st = ((long long)b * NH + h) * T;
  const float L0 = rowA < T ? lse[st + rowA] * FA_LOG2E : 0.f, L1 = rowB < T ? lse[st + rowB] * FA_LOG2E : 0.f;
  const float D0 = rowA < T ? Dd[st + rowA] : 0.f, D1 = rowB < T ? Dd[st + rowB] : 0.f;
  unsigned qf[4][4], of[4][4];
  float dq[8][4];
  for (int t = 0; t < 8; t++) for (int e = 0; e < 4; e++) dq[t][e] = 0.f;
  for (int kt = 0; kt <= qb; kt++) {
    const unsigned kAddr = llm_smem_addr(fa_next_kv_sw(KV, seq, kt, qb, NH, KVH, g, T)), vAddr = kAddr + FA_SW * 2;
    if (kt == 0) {
      fa_afrags<64>(qf, Qs, warp * 16);
      fa_afrags<64>(of, Os, warp * 16);
    }
    float s[8][4], dp[8][4];
    fa_wg_issue<0>(s, qf, kAddr, false);    // scores
    fa_wg_issue<0>(dp, of, vAddr, false);   // dP = dO·Vᵀ, on the tensor cores together
    fa_wg_wait(s, dp);
    fa_dscores<8>(s, dp, kt * FA_ROWS, rowA, kt == qb, L0, L1, D0, D1, sl2);   // dS
    unsigned a[4][4];
    fa_pack_a(a, s);
    fa_wg_mul<1>(dq, a, kAddr, true);   // dQ += dS·K
    __syncthreads();
  }
  const int rows[2] = { rowA, rowB };
#pragma unroll   // constant r: the accumulators stay in registers
  for (int r = 0; r < 2; r++) {
    if (rows[r] < T) fa_store_row<64>(dqkv + ((long long)b * T + rows[r]) * QKV + h * 64, dq, r, scale, cosT, sinT, rows[r], accumulate);
  }
#endif
}

// attention_mma_backward_dkv_d64 on wgmma: dqkv's k and v slots of K/V head blockIdx.x (+)= dK, dV (arguments as
// there). grid (KVH, B, ceil(T/64)), block 128, dynamic shared 2·64·72·2 + 4·8192 + 4·64·4 + 1024 bytes (padded K and
// V tiles, two Q and two dO swizzled tiles, two lse and two D rows, the alignment slack). A block owns 64 keys, 16 a
// warp; per query tile: Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ (K-major Q and dO), dV += Pᵀ·dO and dK += dSᵀ·Q (N-major dO, Q).
// QW: queries of a tile taken at a time. 32 (three blocks an SM): 168 registers hold the state without serializing
// wgmma; 64 (LLMTS_CUDA_ATTENTION=wgmma-whole, two blocks an SM): whole tiles, fewer and wider products.
template <int QW>
__device__ __forceinline__ void fa_wg_backward_dkv(FA_BWD_PARAMS) {
#if LLM_WGMMA
  extern __shared__ uint4 fa_wg_smem[];   // the kernels' dynamic shared memory (a name of its own: C++ linkage here)
  const int TILE = FA_ROWS * (64 + FA_PAD);
  llm_bf16* Ks = (llm_bf16*)fa_wg_smem;
  llm_bf16* Vs = Ks + TILE;
  float* Ls = (float*)(Vs + TILE);   // Ls + i·2·64, Dsh + i·2·64: buffer i
  float* Dsh = Ls + FA_ROWS;
  llm_bf16* QO = llm_align1024((llm_bf16*)(Ls + 4 * FA_ROWS));   // Q0 dO0 Q1 dO1
  const int b = blockIdx.y, g = blockIdx.x, group = NH / KVH, QKV = (NH + 2 * KVH) * 64;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int kb = blockIdx.z, k0 = kb * FA_ROWS, keyA = k0 + warp * 16 + (lane >> 2), keyB = keyA + 8;
  const llm_bf16* seq = qkv + (long long)b * T * QKV;
  const llm_bf16* dseq = dout + (long long)b * T * NH * 64;
  const float sl2 = scale * FA_LOG2E;
  const int nq = (T + FA_ROWS - 1) / FA_ROWS, per = nq - kb, iters = group * per;
  // iteration i: query head g·group + i / per, query tile kb + i % per
  fa_load<64>(Ks, seq + (NH + g) * 64, QKV, k0, T);
  fa_load<64>(Vs, seq + (NH + KVH + g) * 64, QKV, k0, T);
  fa_load_sw(QO, seq + g * group * 64, QKV, k0, T);
  fa_load_sw(QO + FA_SW, dseq + g * group * 64, (long long)NH * 64, k0, T);
  fa_load_stats(Ls, Dsh, lse, Dd, ((long long)b * NH + g * group) * T, k0, T);
  llm_cp_async_commit();
  float dk[8][4], dv[8][4];
  for (int t = 0; t < 8; t++) for (int e = 0; e < 4; e++) { dk[t][e] = 0.f; dv[t][e] = 0.f; }
  for (int i = 0; i < iters; i++) {
    const int qt = kb + i % per, buf = i & 1;
    if (i + 1 < iters) {
      const int h = g * group + (i + 1) / per, q1 = (kb + (i + 1) % per) * FA_ROWS, nb = buf ^ 1;
      fa_load_sw(QO + nb * 2 * FA_SW, seq + h * 64, QKV, q1, T);
      fa_load_sw(QO + nb * 2 * FA_SW + FA_SW, dseq + h * 64, (long long)NH * 64, q1, T);
      fa_load_stats(Ls + nb * 2 * FA_ROWS, Dsh + nb * 2 * FA_ROWS, lse, Dd, ((long long)b * NH + h) * T, q1, T);
    }
    fa_wait_current(i + 1 < iters);
    llm_fence_proxy_async();
    __syncthreads();
    const unsigned qAddr = llm_smem_addr(QO + buf * 2 * FA_SW), oAddr = qAddr + FA_SW * 2;
    const float* L = Ls + buf * 2 * FA_ROWS;
    const float* Dv = Dsh + buf * 2 * FA_ROWS;
    const bool mask = qt == kb || qt == nq - 1;   // the diagonal tile, and query rows past T in the last one
    unsigned kf[4][4], vf[4][4];
    fa_afrags<64>(kf, Ks, warp * 16);
    fa_afrags<64>(vf, Vs, warp * 16);
#pragma unroll
    for (int part = 0; part < FA_ROWS / QW; part++) {   // queries c0..c0+QW-1 of the tile: rows c0.. of Q and dO
      const int c0 = part * QW;
      float s[QW / 8][4], dp[QW / 8][4];
      fa_wg_issue<0, QW>(s, kf, qAddr + 128 * c0, false);    // Sᵀ = K·Qᵀ: rows are keys, columns queries
      fa_wg_issue<0, QW>(dp, vf, oAddr + 128 * c0, false);   // dPᵀ = V·dOᵀ, on the tensor cores together
      fa_wg_wait<QW / 8>(s, dp);
      fa_probs_t<QW / 8>(s, dp, c0, qt, keyA, mask, T, L, Dv, sl2);
      unsigned pa[QW / 16][4], da[QW / 16][4];
      fa_pack_a<QW / 16>(pa, s);
      fa_pack_a<QW / 16>(da, dp);
      fa_wg_issue<1, 64, QW / 16>(dv, pa, oAddr + 128 * c0, true);   // dV += Pᵀ·dO
      fa_wg_issue<1, 64, QW / 16>(dk, da, qAddr + 128 * c0, true);   // dK += dSᵀ·Q, on the tensor cores together
      fa_wg_wait(dv, dk);
    }
    __syncthreads();   // the tiles are read: the next iteration may load over them
  }
  const int keys[2] = { keyA, keyB };
#pragma unroll   // constant r: the accumulators stay in registers
  for (int r = 0; r < 2; r++) {
    if (keys[r] >= T) continue;
    llm_bf16* kdst = dqkv + ((long long)b * T + keys[r]) * QKV + (NH + g) * 64;
    fa_store_row<64>(kdst, dk, r, scale, cosT, sinT, keys[r], accumulate);
    fa_store_row<64>(kdst + KVH * 64, dv, r, 1.f, nullptr, nullptr, 0, accumulate);
  }
#endif
}

extern "C" __global__ void __launch_bounds__(128, 3) attention_wgmma_backward_dkv_d64(FA_BWD_PARAMS) { fa_wg_backward_dkv<32>(FA_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(128, 2) attention_wgmma_backward_dkv_w64_d64(FA_BWD_PARAMS) { fa_wg_backward_dkv<64>(FA_BWD_ARGS); }

// A check of the layouts the kernels above rely on, one product at a time (tests only): d (64 x 64 f32, row-major) =
// a (64 x 64 bf16, row-major) · B, where B is the 64 x 64 bf16 row-major tile b taken as bᵀ (transB 0: K-major) or
// as itself (transB 1: N-major). One block of 128 threads; dynamic shared 64·72·2 + 8192 + 1024 bytes.
extern "C" __global__ void __launch_bounds__(128) attention_wgmma_check(float* d, const llm_bf16* a, const llm_bf16* b, int transB) {
#if LLM_WGMMA
  extern __shared__ uint4 fa_smem[];
  llm_bf16* As = (llm_bf16*)fa_smem;
  llm_bf16* Bs = llm_align1024(As + FA_ROWS * (64 + FA_PAD));
  fa_load<64>(As, a, 64, 0, FA_ROWS);
  fa_load_sw(Bs, b, 64, 0, FA_ROWS);
  llm_cp_async_commit();
  llm_cp_async_wait<0>();
  llm_fence_proxy_async();
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  unsigned af[4][4];
  float acc[8][4];
  fa_afrags<64>(af, As, warp * 16);
  if (transB) fa_wg_mul<1>(acc, af, llm_smem_addr(Bs), false);
  else fa_wg_mul<0>(acc, af, llm_smem_addr(Bs), false);
  for (int j = 0; j < 8; j++) {
    for (int e = 0; e < 4; e++) d[(warp * 16 + (lane >> 2) + 8 * (e >> 1)) * 64 + 8 * j + 2 * (lane & 3) + (e & 1)] = acc[j][e];
  }
#endif
}
