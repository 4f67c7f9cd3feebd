// AdamW and the squared gradient norm on the WebAssembly SIMD kernels: the same contract as ../adamw.ts (PyTorch
// semantics, the update in float64 like the reference: float32 arithmetic moved m by 2e-6 relative where its two
// terms cancel) and Σx² accumulated in float64 from exact squares. Chunks go through module memory.

import type { AdamWOptions } from '../../backend.js'
import type { KernelInstance } from './module.js'

const CHUNK = 16 * 1024   // elements per pass (4 streams × 64 KB)
const BASE = 16

const pad4 = (n: number): number => (n + 3) & ~3

// params, grads, m, v: (n)
export function adamwUpdateWasm(k: KernelInstance, params: Float32Array, grads: Float32Array, m: Float32Array,
                                v: Float32Array, n: number, opts: AdamWOptions): void {
  const { lr, beta1, beta2, eps, weightDecay, step, gradScale } = opts
  const bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step)
  const P = BASE, G = P + CHUNK, M = G + CHUNK, V = M + CHUNK
  k.reserve(V + CHUNK)
  for (let i0 = 0; i0 < n; i0 += CHUNK) {
    const c = Math.min(CHUNK, n - i0), i1 = i0 + c, mem = k.f32
    mem.set(params.subarray(i0, i1), P)
    mem.set(grads.subarray(i0, i1), G)
    mem.set(m.subarray(i0, i1), M)
    mem.set(v.subarray(i0, i1), V)
    k.x.adamw(P * 4, G * 4, M * 4, V * 4, pad4(c), lr, beta1, beta2, eps, weightDecay, bc1, bc2, gradScale)
    params.set(mem.subarray(P, P + c), i0)
    m.set(mem.subarray(M, M + c), i0)
    v.set(mem.subarray(V, V + c), i0)
  }
}

/** Σ a[i]² in float64. */
export function sumSquaresWasm(k: KernelInstance, a: Float32Array): number {
  k.reserve(BASE + CHUNK)
  let s = 0
  for (let i0 = 0; i0 < a.length; i0 += CHUNK) {
    const c = Math.min(CHUNK, a.length - i0), mem = k.f32
    mem.set(a.subarray(i0, i0 + c), BASE)
    mem.fill(0, BASE + c, BASE + pad4(c))
    s += k.x.sumsq(BASE * 4, pad4(c))
  }
  return s
}
