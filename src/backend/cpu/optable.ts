// The op table shared by the calling thread and the pool's workers: op name → the op run with this thread's
// kernels: the reference op functions (their GEMMs inside withGemm), or, where the thread has WebAssembly SIMD,
// the wasm versions of the hot spots (attention, softmax + cross-entropy, GELU, SwiGLU, AdamW). A task is one op on
// a slice of the tensors (accel.ts cuts the slices), so every thread runs the same code on its slice.

import type { AdamWOptions } from '../backend.js'
import { adamwUpdate } from './adamw.js'
import { attentionBackward, attentionForward, attentionInference } from './attention.js'
import { crossEntropyBackward, crossEntropyForward } from './crossentropy.js'
import { withGemm, type Gemm } from './gemm.js'
import { geluBackward, geluForward } from './gelu.js'
import { layernormBackward, layernormForward } from './layernorm.js'
import { residualForward } from './residual.js'
import { rmsnormBackward, rmsnormForward } from './rmsnorm.js'
import { ropeBackward, ropeForward } from './rope.js'
import { swigluBackward, swigluForward } from './swiglu.js'
import { attentionBackwardWasm, attentionForwardWasm } from './wasm/attention.js'
import { geluBackwardWasm, geluForwardWasm, swigluBackwardWasm, swigluForwardWasm } from './wasm/activations.js'
import { crossEntropyBackwardWasm, crossEntropyForwardWasm } from './wasm/crossentropy.js'
import type { KernelInstance } from './wasm/module.js'
import { adamwUpdateWasm, sumSquaresWasm } from './wasm/optimizer.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tasks arrive untyped from postMessage
export type OpFn = (...args: any[]) => void

interface ThreadKernels { gemm: Gemm | null; gemmMinWork: number; simd: KernelInstance | null }

/** The ops by name, each with its own parameter types (a task's args are checked against them in accel.ts). */
export type OpTable = ReturnType<typeof makeOpTable>
export type OpName = keyof OpTable

export function makeOpTable(k: ThreadKernels) {   // its type is OpTable: the object's own, so names and args are checked
  const gemmed = <A extends unknown[]>(fn: (...a: A) => void) =>
    (...a: A): void => withGemm(k.gemm, k.gemmMinWork, () => fn(...a))
  // the wasm kernel where this thread has SIMD, else the reference op; the task's args are the wasm kernel's
  const simdOr = <A extends unknown[]>(wasm: (simd: KernelInstance, ...a: A) => void, ref: (...a: NoInfer<A>) => void) =>
    (...a: A): void => { if (k.simd !== null) wasm(k.simd, ...a); else ref(...a) }
  return {
    sgemm: (...a: Parameters<Gemm['sgemm']>) => {
      if (k.gemm === null) throw new Error('sgemm task on a thread without a fast GEMM')
      k.gemm.sgemm(...a)
    },
    attentionForward: simdOr(attentionForwardWasm, gemmed(attentionForward)),
    attentionBackward: simdOr(attentionBackwardWasm, gemmed(attentionBackward)),
    attentionInference: gemmed(attentionInference),
    crossEntropyForward: simdOr(crossEntropyForwardWasm, crossEntropyForward),
    crossEntropyBackward: simdOr(crossEntropyBackwardWasm, crossEntropyBackward),
    geluForward: simdOr(geluForwardWasm, geluForward),
    geluBackward: simdOr(geluBackwardWasm, geluBackward),
    swigluForward: simdOr(swigluForwardWasm, swigluForward),
    swigluBackward: simdOr(swigluBackwardWasm, swigluBackward),
    adamwUpdate: simdOr(adamwUpdateWasm, adamwUpdate),
    /** out[i] = Σ a²  (float64): a slice's share of the gradient norm */
    sumSquaresInto: (out: Float64Array, i: number, a: Float32Array) => {
      if (k.simd !== null) { out[i] = sumSquaresWasm(k.simd, a); return }
      let s = 0
      for (let j = 0; j < a.length; j++) { const x = a[j]!; s += x * x }
      out[i] = s
    },
    residualForward,
    rmsnormForward, rmsnormBackward, layernormForward, layernormBackward, ropeForward, ropeBackward,
  } satisfies Record<string, OpFn>
}
