// The compiled WebAssembly kernels (kernels.wat + gemm.wat + attention.wat, embedded by scripts/build-wasm.mjs)
// instantiated once per thread, with a bump layout of scratch regions in its memory. Memory grows on demand; every
// growth replaces the Float32Array view, so callers take `f32` after reserving. Two builds of the module: 'fma',
// whose GEMM micro-kernel uses relaxed-SIMD multiply-adds (fused on CPUs with FMA), where the engine has relaxed SIMD
// (Node 22 and later; Node 20 has it complete behind a V8 flag, which engineHasRelaxedSimd switches on) and
// LLMTS_WASM_FMA is not 'off'; else 'simd'.

import { setFlagsFromString } from 'node:v8'
import { kernelsFmaWasmBase64, kernelsWasmBase64 } from './kernels-wasm.js'

export type WasmVariant = 'fma' | 'simd'
export const WASM_FMA_SETTINGS: readonly string[] = ['auto', 'off']

let fmaValid: boolean | undefined

/**
 * Does this engine take the relaxed-SIMD build? Where it does not, V8's --experimental-wasm-relaxed-simd is switched
 * on first (Node 20: the feature is complete there, shipped unflagged from V8 11.4; the FMA build is ~1.25× the
 * plain one, bench/RESULTS.md 2026-11-26). V8 flags are process-wide: worker threads started later see it too.
 */
export function engineHasRelaxedSimd(): boolean {
  if (fmaValid === undefined) {
    const bytes = Buffer.from(kernelsFmaWasmBase64, 'base64')
    fmaValid = WebAssembly.validate(bytes)
    if (!fmaValid) {
      setFlagsFromString('--experimental-wasm-relaxed-simd')
      fmaValid = WebAssembly.validate(bytes)
    }
  }
  return fmaValid
}

/** The build this thread runs: 'fma' where the engine has relaxed SIMD, unless LLMTS_WASM_FMA=off. */
export function wasmVariant(env: Record<string, string | undefined> = process.env): WasmVariant {
  return env['LLMTS_WASM_FMA'] !== 'off' && engineHasRelaxedSimd() ? 'fma' : 'simd'
}

interface KernelExports {
  memory: WebAssembly.Memory
  gemm_block(ap: number, bp: number, c: number, ldc: number, mc: number, nc: number, kc: number, tmp: number): void
  pack_a_n(src: number, lda: number, mc: number, kc: number, dst: number): void
  pack_a_t(src: number, lda: number, mc: number, kc: number, dst: number): void
  pack_b_n(src: number, ldb: number, nc: number, kc: number, dst: number): void
  pack_b_t(src: number, ldb: number, nc: number, kc: number, dst: number): void
  vmax(p: number, n: number): number
  vexp_sum(p: number, n: number, scale: number, shift: number): number
  vscale(p: number, n: number, s: number): void
  gelu_fwd(out: number, x: number, n: number): void
  gelu_bwd(dx: number, dout: number, x: number, n: number): void
  swiglu_fwd(out: number, g: number, u: number, n: number): void
  swiglu_bwd(dg: number, du: number, dout: number, g: number, u: number, n: number): void
  adamw(p: number, g: number, m: number, v: number, n: number, lr: number, b1: number, b2: number, eps: number,
        wd: number, bc1: number, bc2: number, gs: number): void
  sumsq(p: number, n: number): number
  attn_softmax_fwd(st: number, n: number, r: number, q0: number, scale: number, pmax: number, psum: number): void
  attn_softmax_bwd(pt: number, dpt: number, n: number, r: number, q0: number, scale: number, plse: number): void
  strips_to_panels(src: number, n: number, r: number, dst: number): void
}

export class KernelInstance {
  readonly x: KernelExports
  f32: Float32Array

  constructor(readonly variant: WasmVariant = wasmVariant()) {
    if (variant === 'fma') engineHasRelaxedSimd()   // switches on the V8 flag where needed (a worker asked for 'fma')
    const bytes = Buffer.from(variant === 'fma' ? kernelsFmaWasmBase64 : kernelsWasmBase64, 'base64')
    this.x = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as KernelExports
    this.f32 = new Float32Array(this.x.memory.buffer)
  }

  /** Grows memory to hold at least `floats` float32s (from address 0) and refreshes the view. */
  reserve(floats: number): Float32Array {
    const need = floats * 4, have = this.x.memory.buffer.byteLength
    if (need > have) this.x.memory.grow(Math.ceil((need - have) / 65536))
    if (this.f32.buffer !== this.x.memory.buffer) this.f32 = new Float32Array(this.x.memory.buffer)
    return this.f32
  }
}

const instances = new Map<WasmVariant, KernelInstance | null>()

/** This thread's instance of a build (default: wasmVariant()), or null when the engine lacks WebAssembly SIMD. */
export function kernelInstance(variant: WasmVariant = wasmVariant()): KernelInstance | null {
  let k = instances.get(variant)
  if (k === undefined) {
    try {
      k = new KernelInstance(variant)
    } catch {
      k = null
    }
    instances.set(variant, k)
  }
  return k
}
