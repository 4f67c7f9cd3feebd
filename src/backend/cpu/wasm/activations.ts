// GELU and SwiGLU, forward and backward, on the WebAssembly SIMD kernels (the sigmoid of kernels.wat's exp):
// the same contracts as ../gelu.ts and ../swiglu.ts, in float32. Work goes in chunks of CHUNK elements through
// module memory (copied in, computed, copied out); SwiGLU rows are split into contiguous gate and up blocks.

import type { KernelInstance } from './module.js'

const CHUNK = 16 * 1024   // elements per pass: 5 streams × 64 KB stay in L2
const BASE = 16           // float offset of the first stream (past nothing the other kernels keep)

/** Float offsets of `count` streams of `cap` floats (a multiple of 4: every stream stays 16-byte aligned). */
function streams(k: KernelInstance, count: number, cap = CHUNK): number[] {
  k.reserve(BASE + count * cap)
  return Array.from({ length: count }, (_, i) => BASE + i * cap)
}

const pad4 = (n: number): number => (n + 3) & ~3

// out, inp: (n); out may alias inp
export function geluForwardWasm(k: KernelInstance, out: Float32Array, inp: Float32Array, n: number): void {
  const [x] = streams(k, 1) as [number]
  for (let i0 = 0; i0 < n; i0 += CHUNK) {
    const m = Math.min(CHUNK, n - i0)
    k.f32.set(inp.subarray(i0, i0 + m), x)
    k.x.gelu_fwd(x * 4, x * 4, pad4(m))
    out.set(k.f32.subarray(x, x + m), i0)
  }
}

// dinp: (n) +=   dout, inp: (n)
export function geluBackwardWasm(k: KernelInstance, dinp: Float32Array, dout: Float32Array, inp: Float32Array,
                                 n: number): void {
  const [dx, d, x] = streams(k, 3) as [number, number, number]
  for (let i0 = 0; i0 < n; i0 += CHUNK) {
    const m = Math.min(CHUNK, n - i0), mem = k.f32
    mem.set(dinp.subarray(i0, i0 + m), dx)
    mem.set(dout.subarray(i0, i0 + m), d)
    mem.set(inp.subarray(i0, i0 + m), x)
    k.x.gelu_bwd(dx * 4, d * 4, x * 4, pad4(m))
    dinp.set(mem.subarray(dx, dx + m), i0)
  }
}

/** Copies rows [r0, r0+rows) of the gate (half 0) or up (half 1) columns of inp (N, 2H) to mem[at..]. */
function gatherHalf(mem: Float32Array, at: number, inp: Float32Array, r0: number, rows: number, H: number,
                    half: number): void {
  for (let r = 0; r < rows; r++) {
    const s = (r0 + r) * 2 * H + half * H
    mem.set(inp.subarray(s, s + H), at + r * H)
  }
}

/** The inverse of gatherHalf: mem[at..] back into rows [r0, r0+rows) of one half of dst (N, 2H). */
function scatterHalf(dst: Float32Array, mem: Float32Array, at: number, r0: number, rows: number, H: number,
                     half: number): void {
  for (let r = 0; r < rows; r++) {
    const d = (r0 + r) * 2 * H + half * H
    dst.set(mem.subarray(at + r * H, at + (r + 1) * H), d)
  }
}

// out: (N,H)   inp: (N,2H) = [gate | up]
export function swigluForwardWasm(k: KernelInstance, out: Float32Array, inp: Float32Array, N: number, H: number): void {
  const cap = Math.max(CHUNK, pad4(H)), rowsPer = Math.floor(cap / H)
  const [g, u, o] = streams(k, 3, cap) as [number, number, number]
  for (let r0 = 0; r0 < N; r0 += rowsPer) {
    const rows = Math.min(rowsPer, N - r0), mem = k.f32
    gatherHalf(mem, g, inp, r0, rows, H, 0)
    gatherHalf(mem, u, inp, r0, rows, H, 1)
    k.x.swiglu_fwd(o * 4, g * 4, u * 4, pad4(rows * H))
    out.set(mem.subarray(o, o + rows * H), r0 * H)
  }
}

// dinp: (N,2H) +=   dout: (N,H)   inp: (N,2H)
export function swigluBackwardWasm(k: KernelInstance, dinp: Float32Array, dout: Float32Array, inp: Float32Array,
                                   N: number, H: number): void {
  const cap = Math.max(CHUNK, pad4(H)), rowsPer = Math.floor(cap / H)
  const [dg, du, d, g, u] = streams(k, 5, cap) as [number, number, number, number, number]
  for (let r0 = 0; r0 < N; r0 += rowsPer) {
    const rows = Math.min(rowsPer, N - r0), mem = k.f32
    gatherHalf(mem, dg, dinp, r0, rows, H, 0)
    gatherHalf(mem, du, dinp, r0, rows, H, 1)
    mem.set(dout.subarray(r0 * H, (r0 + rows) * H), d)
    gatherHalf(mem, g, inp, r0, rows, H, 0)
    gatherHalf(mem, u, inp, r0, rows, H, 1)
    k.x.swiglu_bwd(dg * 4, du * 4, d * 4, g * 4, u * 4, pad4(rows * H))
    scatterHalf(dinp, mem, dg, r0, rows, H, 0)
    scatterHalf(dinp, mem, du, r0, rows, H, 1)
  }
}
