// sgemm on the WebAssembly SIMD kernels: the operands live in JS memory, so each block is copied into the
// module's memory (row by row, memcpy speed), packed there and multiplied by gemm_block. Loop order per chunk
// of C (MCH rows × NC columns, copied in once and out once): K blocks of KC, B packed once per block, A packed
// per MC rows. Copies are O(M·K·N/NC + K·N + M·N), small next to the O(M·N·K) multiply-adds.

import type { Gemm, Trans } from '../gemm.js'
import { kernelInstance, type KernelInstance } from './module.js'

const KC = 256        // reduction block: an 8-column B panel (KC × 8 floats = 8 KB) stays in L1
const MC = 128        // rows of A packed at a time (128 × 256 floats = 128 KB, L2)
const NC = 512        // columns of B packed at a time (256 × 512 floats = 512 KB, L2/L3)
const MCH = 2048      // rows of the C chunk held in module memory (2048 × 512 floats = 4 MB)

// module memory layout, in floats
const TMP = 0                       // 4 × 8 edge tile of gemm_block
const RAW_A = 64                    // (MC, KC) or (KC, MC) staging copy of an A block
const PACK_A = RAW_A + MC * KC      // ceil(MC/4)·4 × KC
const RAW_B = PACK_A + MC * KC      // (KC, NC) or (NC, KC)
const PACK_B = RAW_B + KC * NC      // KC × ceil(NC/8)·8 (NC is a multiple of 8)
const C_CHUNK = PACK_B + KC * NC    // (MCH, NC)
const TOTAL = C_CHUNK + MCH * NC

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
    for (let m0 = 0; m0 < M; m0 += MCH) {
      const mh = Math.min(MCH, M - m0)
      for (let j0 = 0; j0 < N; j0 += NC) {
        const nc = Math.min(NC, N - j0)
        if (beta === 0) mem.fill(0, C_CHUNK, C_CHUNK + mh * nc)
        else copyRows(mem, C_CHUNK, nc, c, cOff + m0 * ldc + j0, ldc, mh, nc)
        for (let p0 = 0; p0 < K; p0 += KC) {
          const kc = Math.min(KC, K - p0)
          this.packB(tb, b, bOff, ldb, p0, kc, j0, nc)
          for (let i0 = m0; i0 < m0 + mh; i0 += MC) {
            const mc = Math.min(MC, m0 + mh - i0)
            this.packA(ta, a, aOff, lda, i0, mc, p0, kc)
            this.k.x.gemm_block(PACK_A * 4, PACK_B * 4, (C_CHUNK + (i0 - m0) * nc) * 4, nc, mc, nc, kc, TMP * 4)
          }
        }
        copyRows(c, cOff + m0 * ldc + j0, ldc, mem, C_CHUNK, nc, mh, nc)
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

  /** Packs op(B)[p0..p0+kc, j0..j0+nc] into PACK_B. */
  private packB(tb: Trans, b: Float32Array, bOff: number, ldb: number, p0: number, kc: number, j0: number,
                nc: number): void {
    const mem = this.k.f32
    if (tb === 'N') {
      copyRows(mem, RAW_B, nc, b, bOff + p0 * ldb + j0, ldb, kc, nc)
      this.k.x.pack_b_n(RAW_B * 4, nc, nc, kc, PACK_B * 4)
    } else {
      copyRows(mem, RAW_B, kc, b, bOff + j0 * ldb + p0, ldb, nc, kc)
      this.k.x.pack_b_t(RAW_B * 4, kc, nc, kc, PACK_B * 4)
    }
  }
}

/** The WebAssembly GEMM, or null when the engine has no WebAssembly SIMD. */
export function loadWasmGemm(k: KernelInstance | null = kernelInstance()): Gemm | null {
  return k === null ? null : new WasmGemm(k)
}
