// The one matmul piece cuBLASLt does not do under the accumulate convention: the bias gradient. Its epilogue
// would OVERWRITE dbias, so dbias += Σ_n dout[n, :] is a column sum here: blocks of columns × a slice of the rows
// leave partial sums (G, OC) that memory.cu's reduce_partials adds into dbias.

#include "common.cuh"

// A lane sums W adjacent columns (W = 8: one 16-byte load a row), so a block covers 32·W columns; threadIdx.y
// strides the slice's rows. Each column's sum runs in the same order for either W (rows y, y+8, … per thread,
// then the 8 threads in y order), so the two give the same bits.
template <int W>
__device__ __forceinline__ void bias_grad(float* partial, const void* dout, int N, int OC, int rowsPerBlock, int dt) {
  __shared__ float sh[8][32 * W + 1];
  const int c0 = (blockIdx.x * 32 + threadIdx.x) * W;
  const int r0 = blockIdx.y * rowsPerBlock, r1 = min(N, r0 + rowsPerBlock);
  float s[W];
  for (int j = 0; j < W; j++) s[j] = 0.f;
  if (c0 < OC) {   // W = 8 only when OC % 8 == 0: a lane's 8 columns are all inside or all outside
#pragma unroll 4
    for (int r = r0 + threadIdx.y; r < r1; r += 8) {
      float v[W];
      llm_ldw<W>(dout, LLM_BF(0), (long long)r * OC + c0, v);
      for (int j = 0; j < W; j++) s[j] += v[j];
    }
  }
  for (int j = 0; j < W; j++) sh[threadIdx.y][threadIdx.x * W + j] = s[j];
  __syncthreads();
  for (int col = threadIdx.y * 32 + threadIdx.x; col < 32 * W; col += 256) {
    const int c = blockIdx.x * 32 * W + col;
    if (c >= OC) break;
    float t = 0.f;
    for (int k = 0; k < 8; k++) t += sh[k][col];
    partial[(long long)blockIdx.y * OC + c] = t;
  }
}

// partial: (gridDim.y, OC)   dout: (N,OC)   block (32, 8); grid (ceil(OC / (32·W)), G) with W = 8 when vec (OC % 8 == 0
// and dout 16-byte aligned), else 1   dt bits: 0 dout
extern "C" __global__ void bias_grad_partial(float* partial, const void* dout, int N, int OC, int rowsPerBlock, int dt, int vec) {
  if (vec) bias_grad<8>(partial, dout, N, OC, rowsPerBlock, dt);
  else bias_grad<1>(partial, dout, N, OC, rowsPerBlock, dt);
}
