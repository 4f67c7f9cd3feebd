// Test tooling, not shipped: just enough of CUDA C++ to run the backend's kernels on the CPU, one fiber per CUDA
// thread (runtime.cpp): __syncthreads is a barrier, warp ops meet in per-warp slots, __shared__ arrays become statics
// (gen.mjs). Semantics, not speed: it catches indexing, argument, alignment and synchronization bugs before a GPU
// sees the code; LLMTS_EMU_SCHEDULE (schedule.hpp) changes the order threads and blocks run in, so comparing
// results across orders finds races.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

struct dim3 { unsigned x = 1, y = 1, z = 1; };
struct uint4 { unsigned x, y, z, w; } __attribute__((aligned(16)));
struct float4 { float x, y, z, w; } __attribute__((aligned(16)));
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

extern thread_local dim3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
// no __shared__ here: gen.mjs rewrites every declaration of a kernel file, so one it misses (in a header) fails to compile
#define __launch_bounds__(...)

inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned i) { float f; std::memcpy(&f, &i, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned i; std::memcpy(&i, &f, 4); return i; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

inline unsigned short emu_f32_to_bf16(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu) != 0) return (unsigned short)((u >> 16) | 0x40);
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/** A kernel's cast to T* (gen.mjs rewrites every one): aborts, naming the kernel, unless p is aligned for T. */
[[noreturn]] void emu_misaligned(const char* type, const void* p, size_t alignment);
template <typename T, typename P> inline T* emu_cast(P p, const char* type) {
  T* q = (T*)p;
  if ((uintptr_t)q % alignof(T) != 0) emu_misaligned(type, (const void*)q, alignof(T));
  return q;
}

void __syncthreads();
void* emu_dynamic_shared();
/** cp.async (global -> shared, 4 or 16 bytes), commit_group and wait_group N, for the calling thread (runtime.cpp). */
void emu_cp_async(void* dst, const void* src, unsigned size);
void emu_cp_async_commit();
void emu_cp_async_wait(unsigned pending);
/** A __shared__ array (gen.mjs calls this once per declaration): garbage-filled before every block. */
bool emu_register_shared(void* p, size_t size);
double emu_shfl_xor(double v, int laneMask, unsigned mask);

/** Warp-collective ldmatrix.x4 (.trans) and mma.sync.m16n8k16 bf16 with the PTX ISA fragment layouts. */
void emu_ldmatrix_x4(unsigned* r, const void* rowAddress, bool trans);
void emu_mma_bf16(float* d, const unsigned* a, const unsigned* b);
/** A pointer's shared-memory address (dynamic shared memory only; its window starts at kEmuSharedBase, 16 bytes past a
 *  1024-byte boundary, so a kernel must align what needs alignment itself). */
constexpr unsigned kEmuSharedBase = 1024 + 16;
unsigned emu_smem_addr(const void* p);
/** Warpgroup-collective wgmma.mma_async.m64nNk16.f32.bf16.bf16 with A from registers and B through a shared-memory
 *  descriptor (128-byte swizzle; transB: B is N-major). The product is taken at issue; the forward schedule writes d
 *  at once, the others only at the wgmma.wait_group that covers its group (so a read of d before the wait shows),
 *  and a thread that ends with a group not waited for faults. wgmma.fence is not checked. */
void emu_wgmma_m64nNk16(float* d, int n, const unsigned* a, unsigned long long desc, int accumulate, int transB);
void emu_wgmma_commit();
void emu_wgmma_wait(unsigned pending);

template <typename T> inline T __shfl_xor_sync(unsigned mask, T v, int laneMask) { return (T)emu_shfl_xor((double)v, laneMask, mask); }

/** Float atomicAdd whose final value does not depend on the order of the adds (runtime.cpp: the addends summed in
 *  one fixed order), so that a race-free kernel gives the same bits under every LLMTS_EMU_SCHEDULE. */
float emu_atomic_add(float* p, float v);
inline float atomicAdd(float* p, float v) { return emu_atomic_add(p, v); }
inline unsigned atomicCAS(unsigned* p, unsigned expected, unsigned desired) {
  std::atomic_ref<unsigned>(*p).compare_exchange_strong(expected, desired);
  return expected;
}

/** Runs body once per thread of every block of the grid (blocks in the schedule's order); checks the grid and block shape. */
void emu_launch(const char* name, dim3 grid, dim3 block, unsigned sharedBytes, const std::function<void()>& body);
