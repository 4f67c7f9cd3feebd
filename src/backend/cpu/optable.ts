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
  return {
    sgemm: (...a: Parameters<Gemm['sgemm']>) => {
      if (k.gemm === null) throw new Error('sgemm task on a thread without a fast GEMM')
      k.gemm.sgemm(...a)
    },
    attentionForward: (out: Float32Array, lse: Float32Array, qkv: Float32Array, B: number, T: number, NH: number,
                       KVH: number, HS: number) => {
      if (k.simd !== null) attentionForwardWasm(k.simd, out, lse, qkv, B, T, NH, KVH, HS)
      else gemmed(attentionForward)(out, lse, qkv, B, T, NH, KVH, HS)
    },
    attentionBackward: (dqkv: Float32Array, dout: Float32Array, qkv: Float32Array, lse: Float32Array, B: number,
                        T: number, NH: number, KVH: number, HS: number) => {
      if (k.simd !== null) attentionBackwardWasm(k.simd, dqkv, dout, qkv, lse, B, T, NH, KVH, HS)
      else gemmed(attentionBackward)(dqkv, dout, qkv, lse, B, T, NH, KVH, HS)
    },
    attentionInference: gemmed(attentionInference),
    crossEntropyForward: (losses: Float32Array, probs: Float32Array, logits: Float32Array, targets: Int32Array,
                          N: number, V: number, Vp: number) => {
      if (k.simd !== null) crossEntropyForwardWasm(k.simd, losses, probs, logits, targets, N, V, Vp)
      else crossEntropyForward(losses, probs, logits, targets, N, V, Vp)
    },
    crossEntropyBackward: (dlogits: Float32Array, probs: Float32Array, targets: Int32Array, dlossScale: number,
                           N: number, V: number, Vp: number) => {
      if (k.simd !== null) crossEntropyBackwardWasm(k.simd, dlogits, probs, targets, dlossScale, N, V, Vp)
      else crossEntropyBackward(dlogits, probs, targets, dlossScale, N, V, Vp)
    },
    geluForward: (out: Float32Array, inp: Float32Array, n: number) => {
      if (k.simd !== null) geluForwardWasm(k.simd, out, inp, n)
      else geluForward(out, inp, n)
    },
    geluBackward: (dinp: Float32Array, dout: Float32Array, inp: Float32Array, n: number) => {
      if (k.simd !== null) geluBackwardWasm(k.simd, dinp, dout, inp, n)
      else geluBackward(dinp, dout, inp, n)
    },
    swigluForward: (out: Float32Array, inp: Float32Array, N: number, H: number) => {
      if (k.simd !== null) swigluForwardWasm(k.simd, out, inp, N, H)
      else swigluForward(out, inp, N, H)
    },
    swigluBackward: (dinp: Float32Array, dout: Float32Array, inp: Float32Array, N: number, H: number) => {
      if (k.simd !== null) swigluBackwardWasm(k.simd, dinp, dout, inp, N, H)
      else swigluBackward(dinp, dout, inp, N, H)
    },
    adamwUpdate: (params: Float32Array, grads: Float32Array, m: Float32Array, v: Float32Array, n: number,
                  opts: AdamWOptions) => {
      if (k.simd !== null) adamwUpdateWasm(k.simd, params, grads, m, v, n, opts)
      else adamwUpdate(params, grads, m, v, n, opts)
    },
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
