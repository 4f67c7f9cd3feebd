// Test tooling: kernels with deliberate bugs (and their fixed twins) for cuda-emu.test.ts, which runs each on the
// emulator to show that its checks catch them: results that differ between schedules, and aborts.

#include "wgmma.cuh"

// out (64): each thread reads what its neighbour stored in shared memory; without the barrier that is a race
extern "C" __global__ void selftest_neighbour(float* out, int sync) {
  __shared__ float s[64];
  s[threadIdx.x] = (float)(threadIdx.x + 1);
  if (sync) __syncthreads();
  out[threadIdx.x] = s[(threadIdx.x + 1) % 64];
}

// out (64) = in (64) through shared memory by cp.async, with or without waiting for the copies
extern "C" __global__ void selftest_cp_async(float* out, const float* in, int wait) {
  extern __shared__ uint4 staged[];
  if (threadIdx.x < 16) llm_cp_async16(staged + threadIdx.x, in + 4 * threadIdx.x);
  llm_cp_async_commit();
  if (wait) llm_cp_async_wait<0>();
  __syncthreads();
  out[threadIdx.x] = ((const float*)staged)[threadIdx.x];
}

// out (64): a warp sum with lane `gone` returned before it (gone < 0: every lane takes part)
extern "C" __global__ void selftest_warp_sum(float* out, int gone) {
  if ((int)threadIdx.x == gone) return;
  out[threadIdx.x] = llm_warp_sum(1.f);
}

// thread 0 stores to dynamic shared float `at` (the launch asks for a number of bytes of its own)
extern "C" __global__ void selftest_store(float* out, int at) {
  extern __shared__ float dyn[];
  if (threadIdx.x == 0) dyn[at] = 1.f;
  out[threadIdx.x] = 0.f;
}

// out[0..8) = in[at..at+8) by llm_ld8's 16-byte loads (`at` a multiple of 4 floats, else misaligned); the rest 0
extern "C" __global__ void selftest_load8(float* out, const float* in, int at) {
  if (threadIdx.x == 0) llm_ld8(in, 0, at, out);
  else if (threadIdx.x >= 8) out[threadIdx.x] = 0.f;
}

// out[0..4) = in[at..at+4) through shared memory by one 16-byte cp.async (misaligned unless `at` is a multiple of 4)
extern "C" __global__ void selftest_cp_async_from(float* out, const float* in, int at) {
  extern __shared__ float staged4[];
  if (threadIdx.x == 0) llm_cp_async16(staged4, in + at);
  llm_cp_async_commit();
  llm_cp_async_wait<0>();
  __syncthreads();
  out[threadIdx.x] = threadIdx.x < 4 ? staged4[threadIdx.x] : 0.f;
}

// thread 0 stores to in[at] (selftest-run allocates 61 floats for this kernel: 244 bytes, rounded up to 256)
extern "C" __global__ void selftest_past_end(float* out, float* in, int at) {
  if (threadIdx.x == 0) in[at] = 1.f;
  out[threadIdx.x] = 0.f;
}

// out (64): one wgmma (one warpgroup: launched with 128 threads) of A = ones (64 x 16) by B = ones (a swizzled
// 64-row tile): 16 everywhere, read after wgmma.wait_group, or (wait 0) read before it and only then waited for
extern "C" __global__ void selftest_wgmma(float* out, int wait) {
  extern __shared__ uint4 tile[];
  unsigned* b = (unsigned*)llm_align1024((llm_bf16*)tile);
  for (int i = threadIdx.x; i < 2048; i += blockDim.x) b[i] = 0x3f803f80u;   // bf16 1.0 pairs
  __syncthreads();
  const unsigned a[4] = { 0x3f803f80u, 0x3f803f80u, 0x3f803f80u, 0x3f803f80u };
  float d[8][4] = {};
  llm_wgmma_fence();
  llm_wgmma_m64n64k16<0>(d, a, llm_wgmma_desc(llm_smem_addr(b)), 0);
  llm_wgmma_commit();
  if (wait) llm_wgmma_wait<0>();
  float seen = d[0][0];
  llm_wgmma_wait<0>();
  if (threadIdx.x < 64) out[threadIdx.x] = seen;
}
