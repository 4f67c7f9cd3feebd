// LayerNorm (biased variance, PyTorch's), one warp per row, statistics in f32. Backward: dinp += per row;
// dweight/dbias are summed over the rows a block visits and left in `partial` (G, 2C) for
// layernorm_backward_finish to ADD into the gradients (so the accumulate convention holds). The 16-byte path
// keeps each warp's sums in registers (one kernel per 256 columns, up to 2048) and reads each input once where
// registers allow; other shapes fall back to shared-memory atomics.

#include "common.cuh"

// out, inp: (N,C)   mean, rstd: (N)   weight, bias: (C)
// dt bits: 0 out, 1 mean, 2 rstd, 3 inp, 4 weight, 5 bias
extern "C" __global__ void layernorm_forward(void* out, void* mean, void* rstd, const void* inp, const void* weight,
                                             const void* bias, int N, int C, float eps, int dt, int vec) {
  int lane = threadIdx.x & 31, row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= N) return;
  long long x = (long long)row * C;
  float s = 0.f;
  if (vec) {
    for (int c = lane * 8; c < C; c += 256) {
      float v[8];
      llm_ld8(inp, LLM_BF(3), x + c, v);
      for (int k = 0; k < 8; k++) s += v[k];
    }
  } else {
    for (int c = lane; c < C; c += 32) s += llm_ld(inp, LLM_BF(3), x + c);
  }
  float m = llm_warp_sum(s) / C, q = 0.f;
  if (vec) {
    for (int c = lane * 8; c < C; c += 256) {
      float v[8];
      llm_ld8(inp, LLM_BF(3), x + c, v);
      for (int k = 0; k < 8; k++) q += (v[k] - m) * (v[k] - m);
    }
  } else {
    for (int c = lane; c < C; c += 32) { float d = llm_ld(inp, LLM_BF(3), x + c) - m; q += d * d; }
  }
  float r = 1.f / sqrtf(llm_warp_sum(q) / C + eps);
  if (vec) {
    for (int c = lane * 8; c < C; c += 256) {
      float v[8], w[8], b[8];
      llm_ld8(inp, LLM_BF(3), x + c, v);
      llm_ld8(weight, LLM_BF(4), c, w);
      llm_ld8(bias, LLM_BF(5), c, b);
      for (int k = 0; k < 8; k++) v[k] = (v[k] - m) * r * w[k] + b[k];
      llm_st8(out, LLM_BF(0), x + c, v);
    }
  } else {
    for (int c = lane; c < C; c += 32) {
      float v = (llm_ld(inp, LLM_BF(3), x + c) - m) * r * llm_ld(weight, LLM_BF(4), c) + llm_ld(bias, LLM_BF(5), c);
      llm_st(out, LLM_BF(0), x + c, v);
    }
  }
  if (lane == 0) { llm_st(mean, LLM_BF(1), row, m); llm_st(rstd, LLM_BF(2), row, r); }
}

/** residual_forward + layernorm_forward on one warp's row, as rmsnorm.cu's residual_rmsnorm_forward_vec: a and b
 *  read once, the row in registers for the mean, the variance and the output, sums in layernorm_forward's order on
 *  the values res stores (so with f32 res the results equal the two unfused kernels' bit for bit). */
template <int NCH>
__device__ __forceinline__ void residual_layernorm_forward_vec(void* res, void* out, void* mean, void* rstd, const void* a,
                                                               const void* b, const void* weight, const void* bias,
                                                               int N, int C, float eps, int dt) {
  int lane = threadIdx.x & 31, row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= N) return;
  long long x = (long long)row * C;
  float v[NCH][8];
  llm_residual_row8<NCH>(res, LLM_BF(0), a, LLM_BF(4), b, LLM_BF(5), x, C, v);
  float m = llm_warp_sum(llm_row8_sum<NCH>(v, C, 0.f, false)) / C;
  float r = 1.f / sqrtf(llm_warp_sum(llm_row8_sum<NCH>(v, C, m, true)) / C + eps);
#pragma unroll
  for (int j = 0; j < NCH; j++) {
    int c = lane * 8 + 256 * j;
    if (j == NCH - 1 && c >= C) break;
    float w[8], bb[8];
    llm_ld8(weight, LLM_BF(6), c, w);
    llm_ld8(bias, LLM_BF(7), c, bb);
#pragma unroll
    for (int k = 0; k < 8; k++) v[j][k] = (v[j][k] - m) * r * w[k] + bb[k];
    llm_st8(out, LLM_BF(1), x + c, v[j]);
  }
  if (lane == 0) { llm_st(mean, LLM_BF(2), row, m); llm_st(rstd, LLM_BF(3), row, r); }
}

// res = a + b, then out = layernorm(res): res, out, a, b: (N,C)   mean, rstd: (N)   weight, bias: (C)   one warp per row
// dt bits: 0 res, 1 out, 2 mean, 3 rstd, 4 a, 5 b, 6 weight, 7 bias.   For 256·(NCH-1) < C <= 256·NCH, C % 8 == 0,
// 16-byte aligned (the host picks the kernel by C; other shapes run residual_forward and layernorm_forward).
// res may alias a or b.
#define RES_LN_PARAMS void* res, void* out, void* mean, void* rstd, const void* a, const void* b, const void* weight, const void* bias, int N, int C, float eps, int dt
#define RES_LN_ARGS res, out, mean, rstd, a, b, weight, bias, N, C, eps, dt
extern "C" __global__ void __launch_bounds__(256) residual_layernorm_forward_c1(RES_LN_PARAMS) { residual_layernorm_forward_vec<1>(RES_LN_ARGS); }
extern "C" __global__ void __launch_bounds__(256) residual_layernorm_forward_c2(RES_LN_PARAMS) { residual_layernorm_forward_vec<2>(RES_LN_ARGS); }
extern "C" __global__ void __launch_bounds__(256) residual_layernorm_forward_c3(RES_LN_PARAMS) { residual_layernorm_forward_vec<3>(RES_LN_ARGS); }
extern "C" __global__ void __launch_bounds__(256) residual_layernorm_forward_c4(RES_LN_PARAMS) { residual_layernorm_forward_vec<4>(RES_LN_ARGS); }
extern "C" __global__ void __launch_bounds__(256) residual_layernorm_forward_c5(RES_LN_PARAMS) { residual_layernorm_forward_vec<5>(RES_LN_ARGS); }
extern "C" __global__ void __launch_bounds__(256) residual_layernorm_forward_c6(RES_LN_PARAMS) { residual_layernorm_forward_vec<6>(RES_LN_ARGS); }
extern "C" __global__ void __launch_bounds__(256) residual_layernorm_forward_c7(RES_LN_PARAMS) { residual_layernorm_forward_vec<7>(RES_LN_ARGS); }
extern "C" __global__ void __launch_bounds__(256) residual_layernorm_forward_c8(RES_LN_PARAMS) { residual_layernorm_forward_vec<8>(RES_LN_ARGS); }

/** One row of the fallback layernorm_backward (one warp): dinp += per row, dweight/dbias into the block's shared sums.
 *  W: elements per load (8 = the 16-byte path), a constant so the per-thread arrays stay in registers. */
template <int W>
__device__ __forceinline__ void layernorm_backward_row(void* dinp, const void* dout, const void* inp, const void* weight,
                                                       int row, int C, float m, float r, float* acc, int dt) {
  int lane = threadIdx.x & 31;
  long long x = (long long)row * C;
  float a = 0.f, b = 0.f;
  for (int c = lane * W; c < C; c += 32 * W) {
    float g[W], v[W], w[W];
    llm_ldw<W>(dout, LLM_BF(1), x + c, g); llm_ldw<W>(inp, LLM_BF(2), x + c, v); llm_ldw<W>(weight, LLM_BF(3), c, w);
    for (int k = 0; k < W; k++) { float dn = g[k] * w[k]; a += dn; b += dn * (v[k] - m) * r; }
  }
  a = llm_warp_sum(a) / C;
  b = llm_warp_sum(b) / C;
  for (int c = lane * W; c < C; c += 32 * W) {
    float g[W], v[W], w[W], d[W];
    llm_ldw<W>(dout, LLM_BF(1), x + c, g); llm_ldw<W>(inp, LLM_BF(2), x + c, v);
    llm_ldw<W>(weight, LLM_BF(3), c, w); llm_ldw<W>(dinp, LLM_BF(0), x + c, d);
    for (int k = 0; k < W; k++) {
      float norm = (v[k] - m) * r;
      d[k] += (g[k] * w[k] - a - norm * b) * r;
      atomicAdd(&acc[c + k], norm * g[k]);
      atomicAdd(&acc[C + c + k], g[k]);
    }
    llm_stw<W>(dinp, LLM_BF(0), x + c, d);
  }
}

// dinp: (N,C) +=   partial: (gridDim.x, 2C) = per-block [dweight | dbias]   dout, inp: (N,C)   weight: (C)
// mean, rstd: (N)   dynamic shared memory: 2C floats.   dt bits: 0 dinp, 1 dout, 2 inp, 3 weight, 4 mean, 5 rstd
// The fallback for odd, misaligned or > 2048 wide rows.
extern "C" __global__ void layernorm_backward(void* dinp, float* partial, const void* dout, const void* inp,
                                              const void* weight, const void* mean, const void* rstd,
                                              int N, int C, int dt, int vec) {
  extern __shared__ float acc[];   // [dweight (C) | dbias (C)]
  for (int c = threadIdx.x; c < 2 * C; c += blockDim.x) acc[c] = 0.f;
  __syncthreads();
  int warps = blockDim.x >> 5;
  for (int row = blockIdx.x * warps + (threadIdx.x >> 5); row < N; row += gridDim.x * warps) {
    float m = llm_ld(mean, LLM_BF(4), row), r = llm_ld(rstd, LLM_BF(5), row);
    if (vec) layernorm_backward_row<8>(dinp, dout, inp, weight, row, C, m, r, acc, dt);
    else layernorm_backward_row<1>(dinp, dout, inp, weight, row, C, m, r, acc, dt);
  }
  __syncthreads();
  for (int c = threadIdx.x; c < 2 * C; c += blockDim.x) partial[(long long)blockIdx.x * 2 * C + c] = acc[c];
}

/** layernorm_backward's 16-byte path for 256·(NCH-1) < C <= 256·NCH, laid out as rmsnorm.cu's rmsnorm_backward_vec:
 *  the warp's dweight and dbias stay in registers over its rows; the first HOLD chunks of a row stay in registers
 *  between the two passes (all of them up to 512 wide, 2 of 3 at 768), the rest are read again for the second. */
template <int NCH>
__device__ __forceinline__ void layernorm_backward_vec(void* dinp, float* partial, const void* dout, const void* inp,
                                                       const void* weight, const void* mean, const void* rstd,
                                                       int N, int C, int dt) {
  constexpr int HOLD = llm_held_chunks(NCH, 16 * NCH);   // chunks j < HOLD stay in registers between the passes
  extern __shared__ float sums[];   // (C): the block's dweight, then its dbias, each summed once at the end
  int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  float dw[NCH][8] = {}, db[NCH][8] = {};
  for (int row = blockIdx.x * warps + (threadIdx.x >> 5); row < N; row += gridDim.x * warps) {
    long long x = (long long)row * C;
    float m = llm_ld(mean, LLM_BF(4), row), r = llm_ld(rstd, LLM_BF(5), row), a = 0.f, b = 0.f;
    float base[HOLD > 0 ? HOLD : 1][8], slope[HOLD > 0 ? HOLD : 1][8];   // dx = base - r·a - slope·b
#pragma unroll
    for (int j = 0; j < NCH; j++) {
      int c = lane * 8 + 256 * j;
      if (c >= C) continue;
      float g[8], v[8], w[8], d[8];
      llm_ld8(dout, LLM_BF(1), x + c, g); llm_ld8(inp, LLM_BF(2), x + c, v); llm_ld8(weight, LLM_BF(3), c, w);
      if (j < HOLD) llm_ld8(dinp, LLM_BF(0), x + c, d);
#pragma unroll
      for (int k = 0; k < 8; k++) {
        float norm = (v[k] - m) * r, gw = g[k] * w[k];
        a += gw;
        b += gw * norm;
        dw[j][k] += g[k] * norm;
        db[j][k] += g[k];
        if (j < HOLD) { base[j][k] = d[k] + gw * r; slope[j][k] = norm * r; }
      }
    }
    a = llm_warp_sum(a) / C;
    b = llm_warp_sum(b) / C;
#pragma unroll
    for (int j = 0; j < NCH; j++) {
      int c = lane * 8 + 256 * j;
      if (c >= C) continue;
      float d[8];
      if (j < HOLD) {
#pragma unroll
        for (int k = 0; k < 8; k++) d[k] = base[j][k] - r * a - slope[j][k] * b;
      } else {
        float g[8], v[8], w[8];
        llm_ld8(dout, LLM_BF(1), x + c, g); llm_ld8(inp, LLM_BF(2), x + c, v);
        llm_ld8(weight, LLM_BF(3), c, w); llm_ld8(dinp, LLM_BF(0), x + c, d);
#pragma unroll
        for (int k = 0; k < 8; k++) d[k] += (g[k] * w[k] - a - (v[k] - m) * r * b) * r;
      }
      llm_st8(dinp, LLM_BF(0), x + c, d);
    }
  }
  float* out = partial + (long long)blockIdx.x * 2 * C;
  llm_block_sum_cols8<NCH>(out, dw, C, sums);
  llm_block_sum_cols8<NCH>(out + C, db, C, sums);
}

// As layernorm_backward with vec = 1, for 256·(NCH-1) < C <= 256·NCH (the host picks the kernel by C); shared
// memory: C floats. Two blocks of 256 threads per SM up to 1024 wide; one beyond (16·NCH registers of sums alone).
#define LN_BWD_PARAMS void* dinp, float* partial, const void* dout, const void* inp, const void* weight, const void* mean, const void* rstd, int N, int C, int dt
#define LN_BWD_ARGS dinp, partial, dout, inp, weight, mean, rstd, N, C, dt
extern "C" __global__ void __launch_bounds__(256, 2) layernorm_backward_c1(LN_BWD_PARAMS) { layernorm_backward_vec<1>(LN_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 2) layernorm_backward_c2(LN_BWD_PARAMS) { layernorm_backward_vec<2>(LN_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 2) layernorm_backward_c3(LN_BWD_PARAMS) { layernorm_backward_vec<3>(LN_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 2) layernorm_backward_c4(LN_BWD_PARAMS) { layernorm_backward_vec<4>(LN_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 1) layernorm_backward_c5(LN_BWD_PARAMS) { layernorm_backward_vec<5>(LN_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 1) layernorm_backward_c6(LN_BWD_PARAMS) { layernorm_backward_vec<6>(LN_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 1) layernorm_backward_c7(LN_BWD_PARAMS) { layernorm_backward_vec<7>(LN_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 1) layernorm_backward_c8(LN_BWD_PARAMS) { layernorm_backward_vec<8>(LN_BWD_ARGS); }

// dweight, dbias: (C) += Σ_g partial[g, :C], partial[g, C:]   partial: (G, 2C) from layernorm_backward*
// grid ceil(2C/8), block (8, 32)   dt bits: 0 dweight, 1 dbias
extern "C" __global__ void layernorm_backward_finish(void* dweight, void* dbias, const float* partial, int G, int C,
                                                     int dt) {
  __shared__ float sh[256];
  float s = llm_sum_partials(partial, G, 2 * C, 2 * C, sh);
  int j = blockIdx.x * 8 + threadIdx.x;
  if (threadIdx.y != 0 || j >= 2 * C) return;
  if (j < C) llm_st(dweight, LLM_BF(0), j, llm_ld(dweight, LLM_BF(0), j) + s);
  else llm_st(dbias, LLM_BF(1), j - C, llm_ld(dbias, LLM_BF(1), j - C) + s);
}
