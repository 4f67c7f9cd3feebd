// RMSNorm (Llama's: no mean, no bias), one warp per row, statistics in f32. Backward: dinp += per row; dweight
// is summed over the rows a block visits and left in `partial` (G, C) for rmsnorm_backward_finish to ADD into
// the gradient. The 16-byte path keeps each warp's dweight in registers (one kernel per 256 columns, up to 2048)
// and reads each input once where registers allow; other shapes fall back to shared-memory atomics.

#include "common.cuh"

// out, inp: (N,C)   rstd: (N)   weight: (C)   dt bits: 0 out, 1 rstd, 2 inp, 3 weight
extern "C" __global__ void rmsnorm_forward(void* out, void* rstd, const void* inp, const void* weight,
                                           int N, int C, float eps, int dt, int vec) {
  int lane = threadIdx.x & 31, row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= N) return;
  long long x = (long long)row * C;
  float q = 0.f;
  if (vec) {
    for (int c = lane * 8; c < C; c += 256) {
      float v[8];
      llm_ld8(inp, LLM_BF(2), x + c, v);
      for (int k = 0; k < 8; k++) q += v[k] * v[k];
    }
  } else {
    for (int c = lane; c < C; c += 32) { float v = llm_ld(inp, LLM_BF(2), x + c); q += v * v; }
  }
  float r = 1.f / sqrtf(llm_warp_sum(q) / C + eps);
  if (vec) {
    for (int c = lane * 8; c < C; c += 256) {
      float v[8], w[8];
      llm_ld8(inp, LLM_BF(2), x + c, v);
      llm_ld8(weight, LLM_BF(3), c, w);
      for (int k = 0; k < 8; k++) v[k] = v[k] * r * w[k];
      llm_st8(out, LLM_BF(0), x + c, v);
    }
  } else {
    for (int c = lane; c < C; c += 32) {
      llm_st(out, LLM_BF(0), x + c, llm_ld(inp, LLM_BF(2), x + c) * r * llm_ld(weight, LLM_BF(3), c));
    }
  }
  if (lane == 0) llm_st(rstd, LLM_BF(1), row, r);
}

/** residual_forward + rmsnorm_forward on one warp's row, for 256·(NCH-1) < C <= 256·NCH on the 16-byte path: a and b
 *  are read once, the row stays in registers from the add to the output. Sums run in rmsnorm_forward's order on the
 *  values res stores, so with f32 res the results equal the two unfused kernels' bit for bit. */
template <int NCH>
__device__ __forceinline__ void residual_rmsnorm_forward_vec(void* res, void* out, void* rstd, const void* a, const void* b,
                                                             const void* weight, int N, int C, float eps, int dt) {
  int lane = threadIdx.x & 31, row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= N) return;
  long long x = (long long)row * C;
  float v[NCH][8];
  llm_residual_row8<NCH>(res, LLM_BF(0), a, LLM_BF(3), b, LLM_BF(4), x, C, v);
  float r = 1.f / sqrtf(llm_warp_sum(llm_row8_sum<NCH>(v, C, 0.f, true)) / C + eps);
#pragma unroll
  for (int j = 0; j < NCH; j++) {
    int c = lane * 8 + 256 * j;
    if (j == NCH - 1 && c >= C) break;
    float w[8];
    llm_ld8(weight, LLM_BF(5), c, w);
#pragma unroll
    for (int k = 0; k < 8; k++) v[j][k] = v[j][k] * r * w[k];
    llm_st8(out, LLM_BF(1), x + c, v[j]);
  }
  if (lane == 0) llm_st(rstd, LLM_BF(2), row, r);
}

// res = a + b, then out = rmsnorm(res): res, out, a, b: (N,C)   rstd: (N)   weight: (C)   one warp per row
// dt bits: 0 res, 1 out, 2 rstd, 3 a, 4 b, 5 weight.   For 256·(NCH-1) < C <= 256·NCH, C % 8 == 0, 16-byte aligned
// (the host picks the kernel by C; other shapes run residual_forward and rmsnorm_forward). res may alias a or b.
#define RES_RMS_PARAMS void* res, void* out, void* rstd, const void* a, const void* b, const void* weight, int N, int C, float eps, int dt
#define RES_RMS_ARGS res, out, rstd, a, b, weight, N, C, eps, dt
extern "C" __global__ void __launch_bounds__(256) residual_rmsnorm_forward_c1(RES_RMS_PARAMS) { residual_rmsnorm_forward_vec<1>(RES_RMS_ARGS); }
extern "C" __global__ void __launch_bounds__(256) residual_rmsnorm_forward_c2(RES_RMS_PARAMS) { residual_rmsnorm_forward_vec<2>(RES_RMS_ARGS); }
extern "C" __global__ void __launch_bounds__(256) residual_rmsnorm_forward_c3(RES_RMS_PARAMS) { residual_rmsnorm_forward_vec<3>(RES_RMS_ARGS); }
extern "C" __global__ void __launch_bounds__(256) residual_rmsnorm_forward_c4(RES_RMS_PARAMS) { residual_rmsnorm_forward_vec<4>(RES_RMS_ARGS); }
extern "C" __global__ void __launch_bounds__(256) residual_rmsnorm_forward_c5(RES_RMS_PARAMS) { residual_rmsnorm_forward_vec<5>(RES_RMS_ARGS); }
extern "C" __global__ void __launch_bounds__(256) residual_rmsnorm_forward_c6(RES_RMS_PARAMS) { residual_rmsnorm_forward_vec<6>(RES_RMS_ARGS); }
extern "C" __global__ void __launch_bounds__(256) residual_rmsnorm_forward_c7(RES_RMS_PARAMS) { residual_rmsnorm_forward_vec<7>(RES_RMS_ARGS); }
extern "C" __global__ void __launch_bounds__(256) residual_rmsnorm_forward_c8(RES_RMS_PARAMS) { residual_rmsnorm_forward_vec<8>(RES_RMS_ARGS); }

/** One row of the fallback rmsnorm_backward (one warp); W as in layernorm.cu's layernorm_backward_row. */
template <int W>
__device__ __forceinline__ void rmsnorm_backward_row(void* dinp, const void* dout, const void* inp, const void* weight,
                                                     int row, int C, float r, float* acc, int dt) {
  int lane = threadIdx.x & 31;
  long long x = (long long)row * C;
  float dot = 0.f;
  for (int c = lane * W; c < C; c += 32 * W) {
    float g[W], v[W], w[W];
    llm_ldw<W>(dout, LLM_BF(1), x + c, g); llm_ldw<W>(inp, LLM_BF(2), x + c, v); llm_ldw<W>(weight, LLM_BF(3), c, w);
    for (int k = 0; k < W; k++) dot += g[k] * w[k] * v[k] * r;
  }
  dot = llm_warp_sum(dot) / C;
  for (int c = lane * W; c < C; c += 32 * W) {
    float g[W], v[W], w[W], d[W];
    llm_ldw<W>(dout, LLM_BF(1), x + c, g); llm_ldw<W>(inp, LLM_BF(2), x + c, v);
    llm_ldw<W>(weight, LLM_BF(3), c, w); llm_ldw<W>(dinp, LLM_BF(0), x + c, d);
    for (int k = 0; k < W; k++) {
      float xhat = v[k] * r;
      d[k] += (g[k] * w[k] - xhat * dot) * r;
      atomicAdd(&acc[c + k], g[k] * xhat);
    }
    llm_stw<W>(dinp, LLM_BF(0), x + c, d);
  }
}

// dinp: (N,C) +=   partial: (gridDim.x, C) per-block dweight   dout, inp: (N,C)   weight: (C)   rstd: (N)
// dynamic shared memory: C floats.   With xhat = x·rstd, g = dout·weight: dx = rstd·(g - xhat·mean(g·xhat)).
// dt bits: 0 dinp, 1 dout, 2 inp, 3 weight, 4 rstd.   The fallback for odd, misaligned or > 2048 wide rows.
extern "C" __global__ void rmsnorm_backward(void* dinp, float* partial, const void* dout, const void* inp,
                                            const void* weight, const void* rstd, int N, int C, int dt, int vec) {
  extern __shared__ float acc[];   // dweight (C)
  for (int c = threadIdx.x; c < C; c += blockDim.x) acc[c] = 0.f;
  __syncthreads();
  int warps = blockDim.x >> 5;
  for (int row = blockIdx.x * warps + (threadIdx.x >> 5); row < N; row += gridDim.x * warps) {
    float r = llm_ld(rstd, LLM_BF(4), row);
    if (vec) rmsnorm_backward_row<8>(dinp, dout, inp, weight, row, C, r, acc, dt);
    else rmsnorm_backward_row<1>(dinp, dout, inp, weight, row, C, r, acc, dt);
  }
  __syncthreads();
  for (int c = threadIdx.x; c < C; c += blockDim.x) partial[(long long)blockIdx.x * C + c] = acc[c];
}

/** rmsnorm_backward's 16-byte path for 256·(NCH-1) < C <= 256·NCH: lane owns columns lane·8 + 256·j (j < NCH), and
 *  the warp's dweight stays in registers over all its rows (fixed indices only: a runtime-indexed array would
 *  live in local memory). The first HOLD chunks of a row stay in registers between the two passes (all of them up
 *  to 768 wide), so their dout, inp and dinp are read once; the rest are read again (from L1) for the second. */
template <int NCH>
__device__ __forceinline__ void rmsnorm_backward_vec(void* dinp, float* partial, const void* dout, const void* inp,
                                                     const void* weight, const void* rstd, int N, int C, int dt) {
  constexpr int HOLD = llm_held_chunks(NCH, 8 * NCH);   // chunks j < HOLD stay in registers between the passes
  extern __shared__ float sums[];   // (C): the block's dweight, summed once at the end
  int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  float dw[NCH][8] = {};
  for (int row = blockIdx.x * warps + (threadIdx.x >> 5); row < N; row += gridDim.x * warps) {
    long long x = (long long)row * C;
    float r = llm_ld(rstd, LLM_BF(4), row), dot = 0.f;
    float base[HOLD > 0 ? HOLD : 1][8], slope[HOLD > 0 ? HOLD : 1][8];   // dx = base - slope·dot
#pragma unroll
    for (int j = 0; j < NCH; j++) {
      int c = lane * 8 + 256 * j;
      if (c >= C) continue;
      float g[8], v[8], w[8], d[8];
      llm_ld8(dout, LLM_BF(1), x + c, g); llm_ld8(inp, LLM_BF(2), x + c, v); llm_ld8(weight, LLM_BF(3), c, w);
      if (j < HOLD) llm_ld8(dinp, LLM_BF(0), x + c, d);
#pragma unroll
      for (int k = 0; k < 8; k++) {
        float xhat = v[k] * r, gw = g[k] * w[k];
        dot += gw * xhat;
        dw[j][k] += g[k] * xhat;
        if (j < HOLD) { base[j][k] = d[k] + gw * r; slope[j][k] = xhat * r; }
      }
    }
    dot = llm_warp_sum(dot) / C;
#pragma unroll
    for (int j = 0; j < NCH; j++) {
      int c = lane * 8 + 256 * j;
      if (c >= C) continue;
      float d[8];
      if (j < HOLD) {
#pragma unroll
        for (int k = 0; k < 8; k++) d[k] = base[j][k] - slope[j][k] * dot;
      } else {
        float g[8], v[8], w[8];
        llm_ld8(dout, LLM_BF(1), x + c, g); llm_ld8(inp, LLM_BF(2), x + c, v);
        llm_ld8(weight, LLM_BF(3), c, w); llm_ld8(dinp, LLM_BF(0), x + c, d);
#pragma unroll
        for (int k = 0; k < 8; k++) d[k] += (g[k] * w[k] - v[k] * r * dot) * r;
      }
      llm_st8(dinp, LLM_BF(0), x + c, d);
    }
  }
  llm_block_sum_cols8<NCH>(partial + (long long)blockIdx.x * C, dw, C, sums);
}

// As rmsnorm_backward with vec = 1, for 256·(NCH-1) < C <= 256·NCH (the host picks the kernel by C); shared
// memory: C floats. Two blocks of 256 threads per SM (128 registers).
#define RMS_BWD_PARAMS void* dinp, float* partial, const void* dout, const void* inp, const void* weight, const void* rstd, int N, int C, int dt
#define RMS_BWD_ARGS dinp, partial, dout, inp, weight, rstd, N, C, dt
extern "C" __global__ void __launch_bounds__(256, 2) rmsnorm_backward_c1(RMS_BWD_PARAMS) { rmsnorm_backward_vec<1>(RMS_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 2) rmsnorm_backward_c2(RMS_BWD_PARAMS) { rmsnorm_backward_vec<2>(RMS_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 2) rmsnorm_backward_c3(RMS_BWD_PARAMS) { rmsnorm_backward_vec<3>(RMS_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 2) rmsnorm_backward_c4(RMS_BWD_PARAMS) { rmsnorm_backward_vec<4>(RMS_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 2) rmsnorm_backward_c5(RMS_BWD_PARAMS) { rmsnorm_backward_vec<5>(RMS_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 2) rmsnorm_backward_c6(RMS_BWD_PARAMS) { rmsnorm_backward_vec<6>(RMS_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 2) rmsnorm_backward_c7(RMS_BWD_PARAMS) { rmsnorm_backward_vec<7>(RMS_BWD_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 2) rmsnorm_backward_c8(RMS_BWD_PARAMS) { rmsnorm_backward_vec<8>(RMS_BWD_ARGS); }

// dweight: (C) += Σ_g partial[g, :]   partial: (G, C) from rmsnorm_backward*   grid ceil(C/8), block (8, 32)
// dt bits: 0 dweight
extern "C" __global__ void rmsnorm_backward_finish(void* dweight, const float* partial, int G, int C, int dt) {
  __shared__ float sh[256];
  float s = llm_sum_partials(partial, G, C, C, sh);
  int j = blockIdx.x * 8 + threadIdx.x;
  if (threadIdx.y == 0 && j < C) llm_st(dweight, LLM_BF(0), j, llm_ld(dweight, LLM_BF(0), j) + s);
}
