// What every op launcher needs: argument checks (a wrong length is a bug in the caller, as on the CPU backend),
// the dtype bitmask and 16-byte-alignment flag the kernels take, write tracking (a write bumps the allocation's
// version, which invalidates its bf16 mirror), and matmul operands in the type a GEMM needs (the bf16 mirror for
// weights, a converted scratch copy for anything else).

import type { IntTensor, Tensor } from '../backend.js'
import type { CudaContext } from './context.js'
import { asDevice, DeviceTensor, takePending } from './memory.js'

export const BLOCK = 256

/** Blocks of `block` threads for `threads` threads. */
export function gridFor(threads: number, block = BLOCK): [number, number, number] {
  return [Math.max(1, Math.ceil(threads / block)), 1, 1]
}

export class Kit {
  constructor(readonly ctx: CudaContext) {}

  /** The device tensor behind t, checked to hold at least n elements (n < 0: no length check). */
  dev(op: string, arg: string, t: Tensor | IntTensor, n = -1): DeviceTensor {
    const d = asDevice(t, op, arg)
    if (n >= 0 && d.length < n) throw new Error(`cuda backend: ${op}: ${arg} has ${d.length} elements, needs at least ${n}`)
    return d
  }

  devOrNull(op: string, arg: string, t: Tensor | null, n = -1): DeviceTensor | null {
    return t === null ? null : this.dev(op, arg, t, n)
  }

  /**
   * An op's `+=` destination, taken after its other arguments: `fresh` when it lies inside a range zeroed lazily
   * (CudaBackend.zero: a gradient buffer, or zeroGrad's whole flat buffer) that nothing touched since, so the op may
   * overwrite instead of accumulating (no memset, no read of zeros). Otherwise the pending zeros it overlaps are
   * cleared and the op accumulates. The op must write all n elements.
   */
  accumulator(op: string, arg: string, t: Tensor, n: number): { d: DeviceTensor; fresh: boolean } {
    const h = asDevice(t, op, arg, 'handle')
    // fresh only when the op writes every element of the tensor (n === its length)
    const fresh = h.length === n && takePending(h.alloc, h.offset, h.length)
    return { d: this.dev(op, arg, t, n), fresh }
  }

  /** Marks tensors as written: bumps their allocation's version, which invalidates a bf16 mirror of it. */
  wrote(...ts: (DeviceTensor | null)[]): void { for (const t of ts) if (t !== null) t.alloc.version++ }

  /** Bit i set when argument i is stored in bf16 (null arguments count as f32). */
  mask(...ts: (DeviceTensor | null)[]): number {
    let m = 0
    ts.forEach((t, i) => { if (t !== null && t.dtype === 'bf16') m |= 1 << i })
    return m
  }

  /** 1 when every tensor starts on a 16-byte boundary (the kernels' 8-element vector loads), else 0. */
  aligned(...ts: (DeviceTensor | null)[]): number {
    return ts.every(t => t === null || t.ptr % 16 === 0) ? 1 : 0
  }

  ptr(t: DeviceTensor | null): number { return t === null ? 0 : t.ptr }

  launch(name: string, grid: [number, number, number], block: [number, number, number], shared: number,
         args: readonly number[]): void {
    this.ctx.launch(name, grid, block, shared, args)
  }

  /** dst (of dtype `to`) = src converted (both src.length elements). */
  convert(dstPtr: number, to: 'f32' | 'bf16', src: DeviceTensor): void {
    const dt = (to === 'bf16' ? 1 : 0) | (src.dtype === 'bf16' ? 2 : 0)
    const vec = dstPtr % 16 === 0 && src.ptr % 16 === 0 ? 1 : 0
    this.launch('convert', gridFor(Math.ceil(src.length / 8)), [BLOCK, 1, 1], 0, [dstPtr, src.ptr, src.length, dt, vec])
  }

  /**
   * t's data as `want` for a matmul: t itself when it already is; for weights the allocation's bf16 mirror
   * (refreshed only when the allocation was written since); otherwise a converted copy in scratch `slot`.
   */
  operand(t: DeviceTensor, want: 'f32' | 'bf16', role: 'weight' | string): number {
    if (t.dtype === want) return t.ptr
    if (role === 'weight' && want === 'bf16') return this.mirror(t)
    const ptr = this.ctx.scratch(role, t.length * (want === 'bf16' ? 2 : 4))
    this.convert(ptr, want, t)
    return ptr
  }

  /** The bf16 mirror of t's (f32) allocation at t's offset, refreshed if stale. */
  mirror(t: DeviceTensor): number {
    const a = t.alloc
    if (a.pendingZero.length > 0) a.clearPending!(a)
    if (a.mirror === null) a.mirror = { ptr: this.ctx.allocMirror(a), version: -1 }
    if (a.mirror.version !== a.version) {
      this.convert(a.mirror.ptr, 'bf16', new DeviceTensor(a, 0, a.length))
      a.mirror.version = a.version
    }
    return a.mirror.ptr + t.offset * 2
  }
}
