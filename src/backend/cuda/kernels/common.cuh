// Helpers shared by every kernel file. Header-free on purpose: NVRTC compiles these without any CUDA include
// directory (bf16 is stored as unsigned short and converted with the sm_80 cvt instruction), so a machine with
// only the driver and the NVRTC/cuBLASLt libraries (e.g. the NVIDIA Python wheels) can build them.
// Tensors are f32 or bf16 per allocation; kernels take a `dt` bitmask (bit i set = argument i is bf16).
#pragma once

#define LLM_INF __int_as_float(0x7f800000)
#define LLM_NAN __int_as_float(0x7fc00000)
#define LLM_BF(i) ((dt >> (i)) & 1)

typedef unsigned short llm_bf16;

__device__ __forceinline__ float llm_bf2f(llm_bf16 h) { return __uint_as_float(((unsigned)h) << 16); }

#ifndef LLMTS_EMU
__device__ __forceinline__ llm_bf16 llm_f2bf(float f) {
  llm_bf16 h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

/** Two floats as a bf16x2 word: lo in bits 0-15, hi in bits 16-31 (cvt puts its first source high). */
__device__ __forceinline__ unsigned llm_pack2(float lo, float hi) {
  unsigned r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
#else   // the CPU emulator of test/backend/cuda-emu (no PTX there): the same rounding in C++
__device__ __forceinline__ llm_bf16 llm_f2bf(float f) { return emu_f32_to_bf16(f); }
__device__ __forceinline__ unsigned llm_pack2(float lo, float hi) {
  return (unsigned)emu_f32_to_bf16(lo) | ((unsigned)emu_f32_to_bf16(hi) << 16);
}
#endif

// ---- tensor cores (sm_80+): ldmatrix and mma.sync m16n8k16 bf16 -> f32 ---------------------------------
// Fragment layouts (PTX ISA), with g = lane / 4, t = lane % 4, two bf16 per 32-bit register, low half first:
//   A (16x16, row):  a0 = A[g][2t..2t+1]  a1 = A[g+8][2t..]  a2 = A[g][2t+8..]  a3 = A[g+8][2t+8..]
//   B (16x8, col):   b0 = B[2t..2t+1][g]  b1 = B[2t+8..2t+9][g]
//   C (16x8, f32):   c0 = C[g][2t]  c1 = C[g][2t+1]  c2 = C[g+8][2t]  c3 = C[g+8][2t+1]
// ldmatrix .x4: lanes 8i..8i+7 give the row addresses of 8x8 matrix i; lane l receives r[i] = M_i[l/4][2(l%4)..+1]
// (with .trans: M_i[2(l%4)][l/4] and M_i[2(l%4)+1][l/4]).
#ifndef LLMTS_EMU
__device__ __forceinline__ unsigned llm_smem_addr(const void* p) {
  unsigned a;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
  return a;
}
__device__ __forceinline__ void llm_ldmatrix_x4(unsigned* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(llm_smem_addr(p)));
}
__device__ __forceinline__ void llm_ldmatrix_x4_trans(unsigned* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(llm_smem_addr(p)));
}
/** d (16x8 f32 C fragment) += A (16x16 bf16) · B (16x8 bf16). */
__device__ __forceinline__ void llm_mma_bf16(float* d, const unsigned* a, const unsigned* b) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
/** Asynchronous global -> shared copies (cp.async, sm_80+): 16 bytes (cached in L2 only) or 4 bytes; a thread's
 *  copies form a group at llm_cp_async_commit, and llm_cp_async_wait<N> waits until at most N groups are pending
 *  (the block still needs __syncthreads before reading what other threads copied). */
__device__ __forceinline__ void llm_cp_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(llm_smem_addr(dst)), "l"(src) : "memory");
}
__device__ __forceinline__ void llm_cp_async4(void* dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" :: "r"(llm_smem_addr(dst)), "l"(src) : "memory");
}
__device__ __forceinline__ void llm_cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N> __device__ __forceinline__ void llm_cp_async_wait() { asm volatile("cp.async.wait_group %0;" :: "n"(N) : "memory"); }
#else
__device__ __forceinline__ void llm_cp_async16(void* dst, const void* src) { emu_cp_async(dst, src, 16); }
__device__ __forceinline__ void llm_cp_async4(void* dst, const void* src) { emu_cp_async(dst, src, 4); }
__device__ __forceinline__ void llm_cp_async_commit() { emu_cp_async_commit(); }
template <int N> __device__ __forceinline__ void llm_cp_async_wait() { emu_cp_async_wait(N); }
__device__ __forceinline__ void llm_ldmatrix_x4(unsigned* r, const void* p) { emu_ldmatrix_x4(r, p, false); }
__device__ __forceinline__ void llm_ldmatrix_x4_trans(unsigned* r, const void* p) { emu_ldmatrix_x4(r, p, true); }
__device__ __forceinline__ void llm_mma_bf16(float* d, const unsigned* a, const unsigned* b) { emu_mma_bf16(d, a, b); }
#endif

__device__ __forceinline__ float llm_ld(const void* p, int bf, long long i) {
  return bf ? llm_bf2f(((const llm_bf16*)p)[i]) : ((const float*)p)[i];
}

__device__ __forceinline__ void llm_st(void* p, int bf, long long i, float v) {
  if (bf) ((llm_bf16*)p)[i] = llm_f2bf(v);
  else ((float*)p)[i] = v;
}

/** v[0..8) = p[i..i+8); needs i % 8 == 0 and p 16-byte aligned (the host's `vec` flag). */
__device__ __forceinline__ void llm_ld8(const void* p, int bf, long long i, float* v) {
  if (bf) {
    uint4 u = *(const uint4*)((const llm_bf16*)p + i);
    v[0] = __uint_as_float(u.x << 16); v[1] = __uint_as_float(u.x & 0xffff0000u);
    v[2] = __uint_as_float(u.y << 16); v[3] = __uint_as_float(u.y & 0xffff0000u);
    v[4] = __uint_as_float(u.z << 16); v[5] = __uint_as_float(u.z & 0xffff0000u);
    v[6] = __uint_as_float(u.w << 16); v[7] = __uint_as_float(u.w & 0xffff0000u);
  } else {
    float4 a = *(const float4*)((const float*)p + i);
    float4 b = *(const float4*)((const float*)p + i + 4);
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
  }
}

/** p[i..i+8) = v[0..8); same alignment rule as llm_ld8. */
__device__ __forceinline__ void llm_st8(void* p, int bf, long long i, const float* v) {
  if (bf) {
    uint4 u;
    u.x = llm_pack2(v[0], v[1]); u.y = llm_pack2(v[2], v[3]);
    u.z = llm_pack2(v[4], v[5]); u.w = llm_pack2(v[6], v[7]);
    *(uint4*)((llm_bf16*)p + i) = u;
  } else {
    *(float4*)((float*)p + i) = make_float4(v[0], v[1], v[2], v[3]);
    *(float4*)((float*)p + i + 4) = make_float4(v[4], v[5], v[6], v[7]);
  }
}

/** v[0..W) = p[i..i+W): W = 8 through llm_ld8 (its alignment rule), W = 1 one element. */
template <int W> __device__ __forceinline__ void llm_ldw(const void* p, int bf, long long i, float* v) {
  if constexpr (W == 8) llm_ld8(p, bf, i, v);
  else v[0] = llm_ld(p, bf, i);
}

/** p[i..i+W) = v[0..W), as llm_ldw. */
template <int W> __device__ __forceinline__ void llm_stw(void* p, int bf, long long i, const float* v) {
  if constexpr (W == 8) llm_st8(p, bf, i, v);
  else llm_st(p, bf, i, v[0]);
}

/** p[0] += x, p[1] += y atomically (f32, p 8-byte aligned): one vector reduction on Hopper (sm_90), two before. */
__device__ __forceinline__ void llm_atomic_add2(float* p, float x, float y) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && __CUDACC_VER_MAJOR__ >= 12   // float2 atomicAdd: CUDA 12+
  atomicAdd((float2*)p, make_float2(x, y));
#else
  atomicAdd(p, x);
  atomicAdd(p + 1, y);
#endif
}

/** p[i] += v atomically (f32 native; bf16 through a compare-and-swap on the enclosing 32-bit word). */
__device__ __forceinline__ void llm_atomic_add(void* p, int bf, long long i, float v) {
  if (!bf) { atomicAdd((float*)p + i, v); return; }
  llm_bf16* h = (llm_bf16*)p + i;
  unsigned* word = (unsigned*)((unsigned long long)h & ~3ull);
  int high = ((unsigned long long)h & 2ull) != 0;
  unsigned old = *word, assumed;
  do {
    assumed = old;
    unsigned bits = high ? (assumed >> 16) : (assumed & 0xffffu);
    unsigned sum = llm_f2bf(llm_bf2f((llm_bf16)bits) + v);
    unsigned next = high ? ((assumed & 0xffffu) | (sum << 16)) : ((assumed & 0xffff0000u) | sum);
    old = atomicCAS(word, assumed, next);
  } while (old != assumed);
}

__device__ __forceinline__ float llm_warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float llm_warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/** Sum over the block, returned to every thread. sh: 32 floats of shared memory; safe to call repeatedly. */
__device__ __forceinline__ float llm_block_sum(float v, float* sh) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = llm_warp_sum(v);
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  float s = 0.f;
  for (int i = 0; i < nw; i++) s += sh[i];
  return s;
}

/** Max over the block, returned to every thread (same rules as llm_block_sum). */
__device__ __forceinline__ float llm_block_max(float v, float* sh) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = llm_warp_max(v);
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  float m = -LLM_INF;
  for (int i = 0; i < nw; i++) m = fmaxf(m, sh[i]);
  return m;
}

/** How many of a row's NCH 256-column chunks (8 floats a lane each, 16 registers with their two per-element values)
 *  a norm backward kernel keeps in registers between its two passes, next to `sums` registers of per-warp
 *  gradient sums: what fits in about 80 (the rest of 128 is load temporaries; measured on H100, re-reading a
 *  chunk from L1 beats spilling, holding it beats re-reading). */
__device__ constexpr int llm_held_chunks(int NCH, int sums) {
  return (80 - sums) / 16 < 0 ? 0 : (80 - sums) / 16 > NCH ? NCH : (80 - sums) / 16;
}

/** Σ_g partial[g·ld + j] over g < G (the per-block partial rows of a backward kernel, summed in a fixed order), in
 *  the threads with threadIdx.y == 0 of a (8, 32) block, j = blockIdx.x·8 + threadIdx.x (< width). sh: 256 floats. */
__device__ __forceinline__ float llm_sum_partials(const float* partial, int G, int ld, int width, float* sh) {
  int j = blockIdx.x * 8 + threadIdx.x;
  float s = 0.f;
  if (j < width) {
    for (int g = threadIdx.y; g < G; g += 32) s += partial[(long long)g * ld + j];
  }
  sh[threadIdx.y * 8 + threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0) {
    for (int y = 1; y < 32; y++) s += sh[y * 8 + threadIdx.x];
  }
  return s;
}

/** out[0..C) = the sum over the block's warps of v[j][k], each lane's value for column lane·8 + 256·j + k (the
 *  16-byte row layout of the norm backward kernels; columns >= C skipped). Warps add in order, so the result is
 *  deterministic. sh: C floats of shared memory, free on entry; every thread of the block must call this. */
template <int NCH>
__device__ __forceinline__ void llm_block_sum_cols8(float* out, const float (*v)[8], int C, float* sh) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int w = 0; w < warps; w++) {
    if (warp == w) {
#pragma unroll
      for (int j = 0; j < NCH; j++) {
        int c = lane * 8 + 256 * j;
        if (c >= C) continue;
#pragma unroll
        for (int k = 0; k < 8; k++) sh[c + k] = (w == 0 ? 0.f : sh[c + k]) + v[j][k];
      }
    }
    __syncthreads();
  }
  for (int c = threadIdx.x; c < C; c += blockDim.x) out[c] = sh[c];
  __syncthreads();   // sh is free again
}

/** The 16 (bf16) or 32 (f32) bytes llm_ld8 reads, not yet converted: a kernel that loads a whole row into these
 *  first has every load in flight at once (a conversion right after each load would wait for it). */
struct llm_raw8 { uint4 lo, hi; };

__device__ __forceinline__ void llm_ld8_raw(const void* p, int bf, long long i, llm_raw8& r) {
  if (bf) r.lo = *(const uint4*)((const llm_bf16*)p + i);
  else { r.lo = *(const uint4*)((const float*)p + i); r.hi = *(const uint4*)((const float*)p + i + 4); }
}

/** v[0..8) = the values of r (as llm_ld8 would have returned them). */
__device__ __forceinline__ void llm_unpack8(const llm_raw8& r, int bf, float* v) {
  if (bf) {
    const unsigned u[4] = {r.lo.x, r.lo.y, r.lo.z, r.lo.w};
#pragma unroll
    for (int k = 0; k < 4; k++) { v[2 * k] = __uint_as_float(u[k] << 16); v[2 * k + 1] = __uint_as_float(u[k] & 0xffff0000u); }
  } else {
    const unsigned u[8] = {r.lo.x, r.lo.y, r.lo.z, r.lo.w, r.hi.x, r.hi.y, r.hi.z, r.hi.w};
#pragma unroll
    for (int k = 0; k < 8; k++) v[k] = __uint_as_float(u[k]);
  }
}

/** One warp's row of res = a + b in the 16-byte layout of the norm kernels (lane owns columns lane·8 + 256·j,
 *  j < NCH; only the last chunk can reach past C, and is skipped there). v[j] receives the sums as res stores
 *  them (rounded to bf16 when res is bf16): the values a fused norm must read to equal residual_forward followed
 *  by the norm's forward. Every load is issued before the first use and the first store, and each lane stores
 *  only what it loaded, so res may alias a or b. */
template <int NCH>
__device__ __forceinline__ void llm_residual_row8(void* res, int bfRes, const void* a, int bfA, const void* b, int bfB,
                                                  long long x, int C, float (*v)[8]) {
  int lane = threadIdx.x & 31;
  llm_raw8 ra[NCH], rb[NCH];
#pragma unroll
  for (int j = 0; j < NCH; j++) {
    int c = lane * 8 + 256 * j;
    if (j == NCH - 1 && c >= C) break;
    llm_ld8_raw(a, bfA, x + c, ra[j]);
    llm_ld8_raw(b, bfB, x + c, rb[j]);
  }
#pragma unroll
  for (int j = 0; j < NCH; j++) {
    int c = lane * 8 + 256 * j;
    if (j == NCH - 1 && c >= C) break;
    float y[8];
    llm_unpack8(ra[j], bfA, v[j]);
    llm_unpack8(rb[j], bfB, y);
#pragma unroll
    for (int k = 0; k < 8; k++) v[j][k] += y[k];
    llm_st8(res, bfRes, x + c, v[j]);
    if (bfRes) {
#pragma unroll
      for (int k = 0; k < 8; k++) v[j][k] = llm_bf2f(llm_f2bf(v[j][k]));
    }
  }
}

/** This lane's share of a row sum over what llm_residual_row8 left in v (only the last chunk can reach past C): of
 *  (v - shift)² when `square`, else of v. Same order as the unfused norm kernels' loops (chunk, then element). */
template <int NCH>
__device__ __forceinline__ float llm_row8_sum(const float (*v)[8], int C, float shift, bool square) {
  int lane = threadIdx.x & 31;
  float s = 0.f;
#pragma unroll
  for (int j = 0; j < NCH; j++) {
    if (j == NCH - 1 && lane * 8 + 256 * j >= C) break;
#pragma unroll
    for (int k = 0; k < 8; k++) { float d = v[j][k] - shift; s += square ? d * d : v[j][k]; }
  }
  return s;
}
