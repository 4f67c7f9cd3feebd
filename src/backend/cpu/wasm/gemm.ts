// sgemm on the WebAssembly SIMD kernels: the operands live in JS memory, so each block is copied into the
// module's memory (row by row, memcpy speed), packed there and multiplied by gemm_block. Loop order: NC columns,
// then up to KB rows of B packed at once (KC-deep blocks), then MC rows: that C block (MC × NC, 128 KB-256 KB) is
// copied in, takes every KC block of the KB range (A packed per block), and is copied out while still in L2. Copies
// are O(M·K·N/NC + K·N + M·N·K/KB), small next to the O(M·N·K) multiply-adds.

import type { Gemm, Trans } from '../gemm.js'
import { kernelInstance, type KernelInstance } from './module.js'

const KC = 256        // reduction block: an 8-column B panel (KC × 8 floats = 8 KB) stays in L1
const MC = 128        // rows of A packed at a time (128 × 256 floats = 128 KB, L2)
const NC = 512        // columns of B packed at a time
const KB = 2048       // rows of B packed at once (KB × NC floats = 4 MB, L3): C blocks round-trip once per KB of K

// module memory layout, in floats
const TMP = 0                       // 4 × 8 edge tile of gemm_block
const RAW_A = 64                    // (MC, KC) or (KC, MC) staging copy of an A block
const PACK_A = RAW_A + MC * KC      // ceil(MC/4)·4 × KC
const RAW_B = PACK_A + MC * KC      // (KC, NC) or (NC, KC)
const PACK_B = RAW_B + KC * NC      // KB/KC blocks of KC × ceil(NC/8)·8 (NC is a multiple of 8)
const C_BLOCK = PACK_B + KB * NC    // (MC, NC)
const TOTAL = C_BLOCK + MC * NC

/** dst[dOff + r·dld .. + cols) = src[sOff + r·sld .. + cols) for r < rows (one memcpy when both are dense). */
function copyRows(dst: Float32Array, dOff: number, dld: number, src: Float32Array, sOff: number, sld: number,
                  rows: number, cols: number): void {
  if (dld === cols && sld === cols) {
    dst.set(src.subarray(sOff, sOff + rows * cols), dOff)
    return
  }
  for (let r = 0; r < rows; r++) dst.set(src.subarray(sOff + r * sld, sOff + r * sld + cols), dOff + r * dld)
}

class WasmGemm implements Gemm {
  readonly minRows = 4   // a 1-row product (sampling) pays for packing all of B and 4-row tiles: JS is faster

  constructor(private readonly k: KernelInstance) {}

  sgemm(ta: Trans, tb: Trans, M: number, N: number, K: number, a: Float32Array, aOff: number, lda: number,
        b: Float32Array, bOff: number, ldb: number, beta: number, c: Float32Array, cOff: number, ldc: number): void {
    if (M === 0 || N === 0) return
    const mem = this.k.reserve(TOTAL)
    for (let j0 = 0; j0 < N; j0 += NC) {
      const nc = Math.min(NC, N - j0), ncPad = Math.ceil(nc / 8) * 8
      for (let q0 = 0; q0 === 0 || q0 < K; q0 += KB) {   // once for K = 0: C = beta·C still
        const kb = Math.min(KB, K - q0)
        for (let p0 = q0; p0 < q0 + kb; p0 += KC) {
          this.packB(tb, b, bOff, ldb, p0, Math.min(KC, K - p0), j0, nc, PACK_B + (p0 - q0) * ncPad)
        }
        for (let i0 = 0; i0 < M; i0 += MC) {
          const mc = Math.min(MC, M - i0), cAt = cOff + i0 * ldc + j0
          if (beta === 0 && q0 === 0) mem.fill(0, C_BLOCK, C_BLOCK + mc * nc)
          else copyRows(mem, C_BLOCK, nc, c, cAt, ldc, mc, nc)
          for (let p0 = q0; p0 < q0 + kb; p0 += KC) {
            const kc = Math.min(KC, K - p0)
            this.packA(ta, a, aOff, lda, i0, mc, p0, kc)
            this.k.x.gemm_block(PACK_A * 4, (PACK_B + (p0 - q0) * ncPad) * 4, C_BLOCK * 4, nc, mc, nc, kc, TMP * 4)
          }
          copyRows(c, cAt, ldc, mem, C_BLOCK, nc, mc, nc)
        }
      }
    }
  }

  /** Packs op(A)[i0..i0+mc, p0..p0+kc] into PACK_A. */
  private packA(ta: Trans, a: Float32Array, aOff: number, lda: number, i0: number, mc: number, p0: number,
                kc: number): void {
    const mem = this.k.f32
    if (ta === 'N') {
      copyRows(mem, RAW_A, kc, a, aOff + i0 * lda + p0, lda, mc, kc)
      this.k.x.pack_a_n(RAW_A * 4, kc, mc, kc, PACK_A * 4)
    } else {
      copyRows(mem, RAW_A, mc, a, aOff + p0 * lda + i0, lda, kc, mc)
      this.k.x.pack_a_t(RAW_A * 4, mc, mc, kc, PACK_A * 4)
    }
  }

  /** Packs op(B)[p0..p0+kc, j0..j0+nc] at dst (floats). */
  private packB(tb: Trans, b: Float32Array, bOff: number, ldb: number, p0: number, kc: number, j0: number,
                nc: number, dst: number): void {
    const mem = this.k.f32
    if (tb === 'N') {
      copyRows(mem, RAW_B, nc, b, bOff + p0 * ldb + j0, ldb, kc, nc)
      this.k.x.pack_b_n(RAW_B * 4, nc, nc, kc, dst * 4)
    } else {
      copyRows(mem, RAW_B, kc, b, bOff + j0 * ldb + p0, ldb, nc, kc)
      this.k.x.pack_b_t(RAW_B * 4, kc, nc, kc, dst * 4)
    }
  }
}

/** The WebAssembly GEMM, or null when the engine has no WebAssembly SIMD. */
export function loadWasmGemm(k: KernelInstance | null = kernelInstance()): Gemm | null {
  return k === null ? null : new WasmGemm(k)
}
