// The one matmul piece cuBLASLt does not do under the accumulate convention: the bias gradient. Its epilogue
// would OVERWRITE dbias, so dbias += Σ_n dout[n, :] is a column sum here: blocks of 32 columns × a slice of the
// rows leave partial sums (G, OC) that memory.cu's reduce_partials adds into dbias.

#include "common.cuh"

// partial: (gridDim.y, OC)   dout: (N,OC)   block (32, 8): x = column in the tile, y strides the rows
// dt bits: 0 dout
extern "C" __global__ void bias_grad_partial(float* partial, const void* dout, int N, int OC, int rowsPerBlock, int dt) {
  __shared__ float sh[8][33];
  int col = blockIdx.x * 32 + threadIdx.x;
  int r0 = blockIdx.y * rowsPerBlock, r1 = min(N, r0 + rowsPerBlock);
  float s = 0.f;
  if (col < OC) {
    for (int r = r0 + threadIdx.y; r < r1; r += 8) s += llm_ld(dout, LLM_BF(0), (long long)r * OC + col);
  }
  sh[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && col < OC) {
    float t = 0.f;
    for (int k = 0; k < 8; k++) t += sh[k][threadIdx.x];
    partial[(long long)blockIdx.y * OC + col] = t;
  }
}
