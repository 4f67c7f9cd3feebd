// CpuBackend: the Backend contract on Float32Arrays. A Tensor handle IS a Float32Array (an IntTensor an
// Int32Array), cast through unknown at this boundary only; views are subarrays sharing memory. Every op
// checks its buffer lengths (a wrong length is a bug in the caller) and delegates to the op files, the hot ones
// through accel.ts (native BLAS / WebAssembly GEMM, worker threads; tensors then live on SharedArrayBuffers).

import { decayPieces, type AdamWOptions, type Backend, type IntTensor, type RopeArgs, type Tensor } from '../backend.js'
import { createAccel, type Accel } from './accel.js'
import { encoderBackward, encoderForward } from './encoder.js'
import { withGemm } from './gemm.js'
import type { CpuOptions } from './kernels.js'
import { matmulBackward, matmulForward } from './matmul.js'
import { needLength } from './types.js'

const f = (t: Tensor): Float32Array => t as unknown as Float32Array
const fOrNull = (t: Tensor | null): Float32Array | null => t === null ? null : t as unknown as Float32Array
const i32 = (t: IntTensor): Int32Array => t as unknown as Int32Array
const tensor = (a: Float32Array): Tensor => a as unknown as Tensor

/** Checks each [name, tensor, needed length] of an op. */
function need(op: string, ...args: [string, { length: number } | null, number][]): void {
  for (const [name, t, n] of args) if (t !== null) needLength(op, name, t, n)
}

function qkvWidth(NH: number, KVH: number, HS: number): number {
  if (KVH < 1 || NH % KVH !== 0) throw new Error(`cpu backend: heads ${NH} is not a multiple of kvHeads ${KVH}`)
  return (NH + 2 * KVH) * HS
}

export type { CpuOptions } from './kernels.js'

export class CpuBackend implements Backend {
  readonly name = 'cpu'
  /** Kernels (BLAS, WebAssembly, JS) and threads of this backend (accel.ts, kernels.ts). */
  readonly accel: Accel
  private readonly sharedMemory: boolean
  private ropeScratch: Tensor | null = null   // attentionBackward's gradient after RoPE, grown on demand

  constructor(opts: CpuOptions = {}) {
    this.accel = createAccel(opts)
    this.sharedMemory = this.accel.pool !== null
  }

  /** One line for the CLI to print at start: which kernels and threads. */
  describe(): string { return `cpu backend: ${this.accel.kernels.description}` }

  // ---- memory (on SharedArrayBuffers when worker threads share the work) ------------------------------
  alloc(n: number): Tensor {
    return tensor(this.sharedMemory ? new Float32Array(new SharedArrayBuffer(4 * n)) : new Float32Array(n))
  }
  allocInt(n: number): IntTensor {
    return (this.sharedMemory ? new Int32Array(new SharedArrayBuffer(4 * n)) : new Int32Array(n)) as unknown as IntTensor
  }
  view(t: Tensor, offset: number, length: number): Tensor {
    if (offset < 0 || length < 0 || offset + length > t.length) {
      throw new Error(`cpu backend: view [${offset}, ${offset + length}) is outside a tensor of ${t.length}`)
    }
    return tensor(f(t).subarray(offset, offset + length))
  }
  upload(dst: Tensor, src: Float32Array): void { need('upload', ['dst', dst, src.length]); f(dst).set(src) }
  uploadInt(dst: IntTensor, src: Int32Array): void { need('uploadInt', ['dst', dst, src.length]); i32(dst).set(src) }
  download(src: Tensor): Float32Array { return f(src).slice() }
  zero(t: Tensor): void { f(t).fill(0) }
  copy(dst: Tensor, src: Tensor): void { need('copy', ['dst', dst, src.length]); f(dst).set(f(src)) }
  sum(t: Tensor): number {
    const a = f(t)
    let s = 0
    for (let i = 0; i < a.length; i++) s += a[i]!
    return s
  }
  sumSquares(t: Tensor): number { return this.accel.sumSquares(f(t)) }

  // ---- embeddings ---------------------------------------------------------------------------------
  encoderForward(out: Tensor, tokens: IntTensor, wte: Tensor, wpe: Tensor | null, B: number, T: number, C: number,
                 posStart: number): void {
    need('encoderForward', ['out', out, B * T * C], ['tokens', tokens, B * T])
    encoderForward(f(out), i32(tokens), f(wte), fOrNull(wpe), B, T, C, posStart)
  }
  encoderBackward(dwte: Tensor, dwpe: Tensor | null, dout: Tensor, tokens: IntTensor, B: number, T: number, C: number): void {
    need('encoderBackward', ['dout', dout, B * T * C], ['tokens', tokens, B * T], ['dwpe', dwpe, T * C])
    encoderBackward(f(dwte), fOrNull(dwpe), f(dout), i32(tokens), B, T, C)
  }

  // ---- normalization ------------------------------------------------------------------------------
  layernormForward(out: Tensor, mean: Tensor, rstd: Tensor, inp: Tensor, weight: Tensor, bias: Tensor,
                   N: number, C: number, eps: number): void {
    need('layernormForward', ['out', out, N * C], ['mean', mean, N], ['rstd', rstd, N], ['inp', inp, N * C],
      ['weight', weight, C], ['bias', bias, C])
    this.accel.layernormForward(f(out), f(mean), f(rstd), f(inp), f(weight), f(bias), N, C, eps)
  }
  layernormBackward(dinp: Tensor, dweight: Tensor, dbias: Tensor, dout: Tensor, inp: Tensor, weight: Tensor,
                    mean: Tensor, rstd: Tensor, N: number, C: number): void {
    need('layernormBackward', ['dinp', dinp, N * C], ['dweight', dweight, C], ['dbias', dbias, C], ['dout', dout, N * C],
      ['inp', inp, N * C], ['weight', weight, C], ['mean', mean, N], ['rstd', rstd, N])
    this.accel.layernormBackward(f(dinp), f(dweight), f(dbias), f(dout), f(inp), f(weight), f(mean), f(rstd), N, C)
  }
  rmsnormForward(out: Tensor, rstd: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, eps: number): void {
    need('rmsnormForward', ['out', out, N * C], ['rstd', rstd, N], ['inp', inp, N * C], ['weight', weight, C])
    this.accel.rmsnormForward(f(out), f(rstd), f(inp), f(weight), N, C, eps)
  }
  rmsnormBackward(dinp: Tensor, dweight: Tensor, dout: Tensor, inp: Tensor, weight: Tensor, rstd: Tensor,
                  N: number, C: number): void {
    need('rmsnormBackward', ['dinp', dinp, N * C], ['dweight', dweight, C], ['dout', dout, N * C], ['inp', inp, N * C],
      ['weight', weight, C], ['rstd', rstd, N])
    this.accel.rmsnormBackward(f(dinp), f(dweight), f(dout), f(inp), f(weight), f(rstd), N, C)
  }
  // The fused residual + norm: on the CPU the same two passes, so the results equal the unfused ops bit for bit
  // (the model's CPU goldens do not depend on which one it calls).
  residualRmsnormForward(res: Tensor, out: Tensor, rstd: Tensor, a: Tensor, b: Tensor, weight: Tensor,
                         N: number, C: number, eps: number): void {
    need('residualRmsnormForward', ['res', res, N * C], ['out', out, N * C], ['rstd', rstd, N], ['a', a, N * C],
      ['b', b, N * C], ['weight', weight, C])
    this.accel.residualForward(f(res), f(a), f(b), N * C)
    this.accel.rmsnormForward(f(out), f(rstd), f(res), f(weight), N, C, eps)
  }
  residualLayernormForward(res: Tensor, out: Tensor, mean: Tensor, rstd: Tensor, a: Tensor, b: Tensor, weight: Tensor,
                           bias: Tensor, N: number, C: number, eps: number): void {
    need('residualLayernormForward', ['res', res, N * C], ['out', out, N * C], ['mean', mean, N], ['rstd', rstd, N],
      ['a', a, N * C], ['b', b, N * C], ['weight', weight, C], ['bias', bias, C])
    this.accel.residualForward(f(res), f(a), f(b), N * C)
    this.accel.layernormForward(f(out), f(mean), f(rstd), f(res), f(weight), f(bias), N, C, eps)
  }

  // ---- matmul -------------------------------------------------------------------------------------
  matmulForward(out: Tensor, inp: Tensor, weight: Tensor, bias: Tensor | null, N: number, C: number, OC: number): void {
    need('matmulForward', ['out', out, N * OC], ['inp', inp, N * C], ['weight', weight, OC * C], ['bias', bias, OC])
    withGemm(this.accel.gemm, this.accel.gemmMinWork, () => matmulForward(f(out), f(inp), f(weight), fOrNull(bias), N, C, OC))
  }
  matmulBackward(dinp: Tensor | null, dweight: Tensor, dbias: Tensor | null, dout: Tensor, inp: Tensor, weight: Tensor,
                 N: number, C: number, OC: number): void {
    need('matmulBackward', ['dinp', dinp, N * C], ['dweight', dweight, OC * C], ['dbias', dbias, OC],
      ['dout', dout, N * OC], ['inp', inp, N * C], ['weight', weight, OC * C])
    withGemm(this.accel.gemm, this.accel.gemmMinWork,
      () => matmulBackward(fOrNull(dinp), f(dweight), fOrNull(dbias), f(dout), f(inp), f(weight), N, C, OC))
  }

  // ---- rotary position embedding ------------------------------------------------------------------
  ropeForward(out: Tensor, qkv: Tensor, B: number, T: number, NH: number, KVH: number, HS: number,
              theta: number, posStart: number): void {
    const n = B * T * qkvWidth(NH, KVH, HS)
    need('ropeForward', ['out', out, n], ['qkv', qkv, n])
    this.accel.ropeForward(f(out), f(qkv), B, T, NH, KVH, HS, theta, posStart)
  }
  ropeBackward(dqkv: Tensor, dout: Tensor, B: number, T: number, NH: number, KVH: number, HS: number,
               theta: number, posStart: number): void {
    const n = B * T * qkvWidth(NH, KVH, HS)
    need('ropeBackward', ['dqkv', dqkv, n], ['dout', dout, n])
    this.accel.ropeBackward(f(dqkv), f(dout), B, T, NH, KVH, HS, theta, posStart)
  }

  // ---- attention ----------------------------------------------------------------------------------
  attentionForward(out: Tensor, lse: Tensor, qkv: Tensor, B: number, T: number, NH: number, KVH: number, HS: number): void {
    need('attentionForward', ['out', out, B * T * NH * HS], ['lse', lse, B * NH * T], ['qkv', qkv, B * T * qkvWidth(NH, KVH, HS)])
    this.accel.attentionForward(f(out), f(lse), f(qkv), B, T, NH, KVH, HS)
  }
  attentionBackward(dqkv: Tensor, dout: Tensor, qkv: Tensor, out: Tensor, lse: Tensor,
                    B: number, T: number, NH: number, KVH: number, HS: number, rope?: RopeArgs): void {
    const n = B * T * qkvWidth(NH, KVH, HS)
    need('attentionBackward', ['dqkv', dqkv, n], ['dout', dout, B * T * NH * HS], ['qkv', qkv, n],
      ['out', out, B * T * NH * HS], ['lse', lse, B * NH * T])
    if (rope === undefined) { this.accel.attentionBackward(f(dqkv), f(dout), f(qkv), f(lse), B, T, NH, KVH, HS); return }
    // the gradient after RoPE into a zeroed scratch, then rotated back into dqkv: the two ops in sequence
    if (this.ropeScratch === null || this.ropeScratch.length < n) this.ropeScratch = this.alloc(n)
    const after = this.view(this.ropeScratch, 0, n)
    f(after).fill(0)
    this.accel.attentionBackward(f(after), f(dout), f(qkv), f(lse), B, T, NH, KVH, HS)
    this.ropeBackward(dqkv, after, B, T, NH, KVH, HS, rope.theta, rope.posStart)
  }
  attentionInference(out: Tensor, cache: Tensor, B: number, Tq: number, posStart: number, Tmax: number,
                     NH: number, KVH: number, HS: number): void {
    need('attentionInference', ['out', out, B * Tq * NH * HS], ['cache', cache, B * Tmax * qkvWidth(NH, KVH, HS)])
    this.accel.attentionInference(f(out), f(cache), B, Tq, posStart, Tmax, NH, KVH, HS)
  }

  // ---- MLP activations ----------------------------------------------------------------------------
  geluForward(out: Tensor, inp: Tensor, n: number): void {
    need('geluForward', ['out', out, n], ['inp', inp, n])
    this.accel.geluForward(f(out), f(inp), n)
  }
  geluBackward(dinp: Tensor, dout: Tensor, inp: Tensor, n: number): void {
    need('geluBackward', ['dinp', dinp, n], ['dout', dout, n], ['inp', inp, n])
    this.accel.geluBackward(f(dinp), f(dout), f(inp), n)
  }
  swigluForward(out: Tensor, inp: Tensor, N: number, H: number): void {
    need('swigluForward', ['out', out, N * H], ['inp', inp, N * 2 * H])
    this.accel.swigluForward(f(out), f(inp), N, H)
  }
  swigluBackward(dinp: Tensor, dout: Tensor, inp: Tensor, N: number, H: number): void {
    need('swigluBackward', ['dinp', dinp, N * 2 * H], ['dout', dout, N * H], ['inp', inp, N * 2 * H])
    this.accel.swigluBackward(f(dinp), f(dout), f(inp), N, H)
  }

  // ---- residual -----------------------------------------------------------------------------------
  residualForward(out: Tensor, a: Tensor, b: Tensor, n: number): void {
    need('residualForward', ['out', out, n], ['a', a, n], ['b', b, n])
    this.accel.residualForward(f(out), f(a), f(b), n)
  }

  // ---- classifier ---------------------------------------------------------------------------------
  crossEntropyForward(losses: Tensor, probs: Tensor, logits: Tensor, targets: IntTensor, N: number, V: number, Vp: number,
                      dlossScale?: number): void {
    need('crossEntropyForward', ['losses', losses, N], ['probs', probs, N * Vp], ['logits', logits, N * Vp], ['targets', targets, N])
    this.accel.crossEntropyForward(f(losses), f(probs), f(logits), i32(targets), N, V, Vp)
    // the fused classifier: on the CPU the same two passes, so the result equals forward + backward exactly
    if (dlossScale !== undefined) this.accel.crossEntropyBackward(f(probs), f(probs), i32(targets), dlossScale, N, V, Vp)
  }
  crossEntropyBackward(dlogits: Tensor, probs: Tensor, targets: IntTensor, dlossScale: number, N: number, V: number, Vp: number): void {
    need('crossEntropyBackward', ['dlogits', dlogits, N * Vp], ['probs', probs, N * Vp], ['targets', targets, N])
    this.accel.crossEntropyBackward(f(dlogits), f(probs), i32(targets), dlossScale, N, V, Vp)
  }

  // ---- optimizer ----------------------------------------------------------------------------------
  adamwUpdate(params: Tensor, grads: Tensor, m: Tensor, v: Tensor, opts: AdamWOptions): void {
    const n = params.length
    need('adamwUpdate', ['grads', grads, n], ['m', m, n], ['v', v, n])
    if (!(opts.step >= 1)) throw new Error(`cpu backend: adamwUpdate: step ${opts.step} must count from 1`)
    for (const p of decayPieces(n, opts.noDecay, opts.weightDecay)) {
      const cut = (t: Tensor): Float32Array => f(t).subarray(p.offset, p.offset + p.length)
      this.accel.adamwUpdate(cut(params), cut(grads), cut(m), cut(v), p.length, { ...opts, weightDecay: p.weightDecay })
    }
  }
}
