// The attention forward on Hopper's warpgroup MMA (LLMTS_CUDA_ATTENTION=wgmma, head size 64, sm_90a): the 64-row
// forward of attention_mma.cu with its two tile products done by wgmma. A block is one warpgroup: its 64 query rows
// are the A operand (16 rows a warp, in registers, as before), and K and V are read by the tensor cores straight from
// shared memory (wgmma.cuh), where mma.sync had every warp load each K and V fragment into registers with ldmatrix.
// Scores, online softmax, masking and the stores are attention_mma's. Elsewhere (sm_80, PTX targets) the kernel is
// empty and the host never launches it.

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
    llm_cp_async_commit();
    llm_cp_async_wait<1>();
  } else {
    llm_cp_async_wait<0>();
  }
  llm_fence_proxy_async();
  __syncthreads();
  return KV + cur;
}
#endif

// out: (B,T,NH·64) bf16   lse: (B,NH,T) f32   qkv: (B,T,QKV) bf16. grid (NH, B, ceil(T/64)), block 128 (one
// warpgroup), dynamic shared 64·72·2 + 4·8192 + 1024 bytes: the padded Q tile, two K and two V swizzled tiles, and
// the slack that aligns them to 1024 bytes.
extern "C" __global__ void __launch_bounds__(128) attention_wgmma_forward_d64(FA_FWD_PARAMS) {
#if LLM_WGMMA
  extern __shared__ uint4 fa_smem[];
  llm_bf16* Qs = (llm_bf16*)fa_smem;
  const unsigned at = llm_smem_addr(Qs + FA_ROWS * (64 + FA_PAD));
  llm_bf16* KV = Qs + FA_ROWS * (64 + FA_PAD) + ((1024u - (at & 1023u)) & 1023u) / 2;   // K0 V0 K1 V1
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
    llm_wgmma_fence();
    for (int kk = 0; kk < 4; kk++) llm_wgmma_m64n64k16<0>(s, qf[kk], llm_wgmma_desc(kAddr + 32 * kk), kk > 0);   // S = Q·Kᵀ
    llm_wgmma_commit();
    llm_wgmma_wait<0>();
    llm_wgmma_hold(s);
    // every row sees key kt·64 <= its position in every tile it visits, so the maxima are finite
    fa_scale_mask(s, sl2, kt == qb, kt * FA_ROWS, rowA, mx0, mx1);
    fa_online<64>(s, o, m0, m1, l0, l1, mx0, mx1);
    unsigned p[4][4];   // P as A fragments: keys 16kk..16kk+15
    for (int kk = 0; kk < 4; kk++) {
      p[kk][0] = llm_pack2(s[2 * kk][0], s[2 * kk][1]);
      p[kk][1] = llm_pack2(s[2 * kk][2], s[2 * kk][3]);
      p[kk][2] = llm_pack2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      p[kk][3] = llm_pack2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }
    llm_wgmma_hold(o);
    llm_wgmma_fence();
    for (int kk = 0; kk < 4; kk++) llm_wgmma_m64n64k16<1>(o, p[kk], llm_wgmma_desc(vAddr + 2048 * kk), 1);   // O += P·V
    llm_wgmma_commit();
    llm_wgmma_wait<0>();
    llm_wgmma_hold(o);
    __syncthreads();   // the tiles are read: the next step may load over them
  }
  fa_store_out<64>(out, lse, o, m0, m1, l0, l1, rowA, b, h, T, NH);
#endif
}
