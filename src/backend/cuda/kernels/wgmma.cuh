// Hopper's warpgroup matrix multiply (wgmma, sm_90a): one warpgroup (4 warps, 128 threads) multiplies A (64 x 16 bf16,
// from registers: each warp's 16 rows in mma.m16n8k16's A fragment layout) by B (16 x N bf16, read by the tensor cores
// straight from shared memory through a descriptor) into 64 x N f32 accumulators (each warp's 16 rows in mma's C
// fragment layout, n8 tile j in d[j]). B is a 128-byte-swizzled tile: rows of 64 bf16 (128 bytes), the 16-byte chunk
// c of row r stored at chunk c ^ (r % 8), the tile 1024-byte aligned (the swizzle acts on address bits, not on the
// offset in the tile). LLM_WGMMA is 1 where wgmma exists: sm_90a (nvcc defines __CUDA_ARCH_FEAT_SM90_ALL there,
// the backend's NVRTC options LLMTS_SM90A), and the CPU emulator.
#pragma once

#include "common.cuh"

#if defined(LLMTS_EMU) || defined(__CUDA_ARCH_FEAT_SM90_ALL) || defined(LLMTS_SM90A)
#define LLM_WGMMA 1
#else
#define LLM_WGMMA 0
#endif

/** Descriptor of a 128-byte-swizzled B tile at shared address `addr` (16-byte units; 8-row groups 1024 bytes apart).
 *  K-major use (B = the tile's rowsᵀ: k along a row): addr advances 32 bytes a k16 step. N-major use (B = the tile:
 *  k along its rows, n along a row): addr advances 2048 bytes (16 rows) a k16 step. */
__device__ __forceinline__ unsigned long long llm_wgmma_desc(unsigned addr) {
  return (unsigned long long)((addr & 0x3ffffu) >> 4) | (1ull << 16) | ((unsigned long long)(1024 >> 4) << 32) | (1ull << 62);
}

#if LLM_WGMMA && !defined(LLMTS_EMU)
/** Orders this thread's register writes before the wgmma that reads them (accumulators rescaled, A fragments packed). */
__device__ __forceinline__ void llm_wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void llm_wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int N> __device__ __forceinline__ void llm_wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;" :: "n"(N) : "memory"); }
/** Makes this thread's earlier shared-memory writes (stores, cp.async) visible to the tensor cores' async proxy. */
__device__ __forceinline__ void llm_fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }
/** Ties NT n8 tiles of accumulators to this point: the compiler may not move their reads above the wait, nor their
 *  writes below a fence. */
template <int NT = 8>
__device__ __forceinline__ void llm_wgmma_hold(float (*d)[4]) {
  for (int j = 0; j < NT; j++) for (int e = 0; e < 4; e++) asm volatile("" : "+f"(d[j][e]) :: "memory");
}
/** d (64 x 64, d[j] the n8 tile j of this thread's rows) (+)= A (64 x 16) · B (descriptor; TRANS_B: N-major). */
template <int TRANS_B>
__device__ __forceinline__ void llm_wgmma_m64n64k16(float (*d)[4], const unsigned* a, unsigned long long desc, int accumulate) {
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
               "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, %38;\n}"
               : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]),
                 "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]),
                 "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),
                 "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(accumulate), "n"(TRANS_B));
}
/** llm_wgmma_m64n64k16 for 32 columns: d[0..3]. */
template <int TRANS_B>
__device__ __forceinline__ void llm_wgmma_m64n32k16(float (*d)[4], const unsigned* a, unsigned long long desc, int accumulate) {
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %21, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, "
               "{%16,%17,%18,%19}, %20, p, 1, 1, %22;\n}"
               : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]),
                 "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(accumulate), "n"(TRANS_B));
}
#elif LLM_WGMMA
__device__ __forceinline__ unsigned llm_smem_addr(const void* p) { return emu_smem_addr(p); }
__device__ __forceinline__ void llm_wgmma_fence() {}
__device__ __forceinline__ void llm_wgmma_commit() { emu_wgmma_commit(); }
template <int N> __device__ __forceinline__ void llm_wgmma_wait() { emu_wgmma_wait(N); }
__device__ __forceinline__ void llm_fence_proxy_async() {}
template <int NT = 8> __device__ __forceinline__ void llm_wgmma_hold(float (*)[4]) {}
template <int TRANS_B>
__device__ __forceinline__ void llm_wgmma_m64n64k16(float (*d)[4], const unsigned* a, unsigned long long desc, int accumulate) {
  emu_wgmma_m64nNk16(&d[0][0], 64, a, desc, accumulate, TRANS_B);
}
template <int TRANS_B>
__device__ __forceinline__ void llm_wgmma_m64n32k16(float (*d)[4], const unsigned* a, unsigned long long desc, int accumulate) {
  emu_wgmma_m64nNk16(&d[0][0], 32, a, desc, accumulate, TRANS_B);
}
#endif

/** `p` advanced to the next 1024-byte boundary of the shared address space, where a swizzled tile must start (the
 *  launch allows 1024 bytes of slack for it). */
__device__ __forceinline__ llm_bf16* llm_align1024(llm_bf16* p) {
  return p + ((1024u - (llm_smem_addr(p) & 1023u)) & 1023u) / 2;
}
