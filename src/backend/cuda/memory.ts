// Device tensors: an Allocation (one cuMemAlloc, f32, bf16 or i32 storage) and DeviceTensor views into it.
// Each allocation carries a write version; a bf16 "mirror" of an f32 allocation (the weight copy bf16 matmuls
// read) is valid while its version matches, so weights are converted once per optimizer step, not per use.
// Host-side f32 <-> bf16 conversion (round to nearest even, NaN kept) lives here too: uploads into bf16 storage.

import type { IntTensor, Tensor } from '../backend.js'

export type DType = 'f32' | 'bf16' | 'i32'
export const dtypeBytes: Record<DType, number> = { f32: 4, bf16: 2, i32: 4 }

export class Allocation {
  version = 0                                        // bumped by every write to any part of it
  mirror: { ptr: number; version: number } | null = null
  freed = false
  native: number[] = []                              // device pointers to free with it (itself, its mirror)
  /** Ranges zeroed lazily by CudaBackend.zero: an op that accumulates into a tensor lying inside such a range
   *  overwrites it instead (Kit.accumulator; the range keeps the rest), and any other use of a tensor first clears
   *  the pending zeros it overlaps for real (asDevice; the whole allocation for a bf16 mirror). */
  pendingZero: { offset: number; length: number }[] = []
  clearPending: ((a: Allocation, offset?: number, length?: number) => void) | null = null
  constructor(readonly ptr: number, readonly length: number, readonly dtype: DType) {}
  get bytes(): number { return this.length * dtypeBytes[this.dtype] }
}

/** A Tensor (or IntTensor) handle of the CUDA backend: `length` elements from element `offset` of `alloc`. */
export class DeviceTensor {
  declare readonly __tensor: 'f32' | 'i32'
  constructor(readonly alloc: Allocation, readonly offset: number, readonly length: number) {}
  get dtype(): DType { return this.alloc.dtype }
  get ptr(): number { return this.alloc.ptr + this.offset * dtypeBytes[this.alloc.dtype] }
  get bytes(): number { return this.length * dtypeBytes[this.alloc.dtype] }
  /** Whole allocation (not a strict view)? Only those can be freed. */
  get whole(): boolean { return this.offset === 0 && this.length === this.alloc.length }
}

/** The device tensor behind t; its allocation's pending zeros are cleared first unless `use` is 'handle'. */
export function asDevice(t: Tensor | IntTensor, op: string, arg: string, use: 'data' | 'handle' = 'data'): DeviceTensor {
  if (!(t instanceof DeviceTensor)) throw new Error(`cuda backend: ${op}: ${arg} is not a tensor of the CUDA backend`)
  if (t.alloc.freed) throw new Error(`cuda backend: ${op}: ${arg} was freed`)
  if (use === 'data' && t.alloc.pendingZero.length > 0) t.alloc.clearPending!(t.alloc, t.offset, t.length)
  return t
}

/** Takes [offset, offset+length) out of the pending zero range that contains it whole (the range keeps what is left
 *  on either side); false when no range contains it. */
export function takePending(a: Allocation, offset: number, length: number): boolean {
  const i = a.pendingZero.findIndex(r => r.offset <= offset && offset + length <= r.offset + r.length)
  if (i < 0) return false
  const r = a.pendingZero[i]!, end = offset + length, rEnd = r.offset + r.length
  const rest = [{ offset: r.offset, length: offset - r.offset }, { offset: end, length: rEnd - end }].filter(x => x.length > 0)
  a.pendingZero.splice(i, 1, ...rest)
  return true
}

/** Takes the parts of the pending zero ranges that overlap [offset, offset+length) out of them; returns those parts
 *  (to be zeroed for real now). */
export function splitPending(a: Allocation, offset = 0, length = a.length): { offset: number; length: number }[] {
  const end = offset + length, hit: { offset: number; length: number }[] = [], keep: { offset: number; length: number }[] = []
  for (const r of a.pendingZero) {
    const rEnd = r.offset + r.length, lo = Math.max(r.offset, offset), hi = Math.min(rEnd, end)
    if (lo >= hi) { keep.push(r); continue }
    hit.push({ offset: lo, length: hi - lo })
    if (r.offset < lo) keep.push({ offset: r.offset, length: lo - r.offset })
    if (hi < rEnd) keep.push({ offset: hi, length: rEnd - hi })
  }
  a.pendingZero = keep
  return hit
}

export const asTensor = (t: DeviceTensor): Tensor => t as unknown as Tensor
export const asIntTensor = (t: DeviceTensor): IntTensor => t as unknown as IntTensor

/** Largest power of two (up to 256) dividing a device address: what cuBLASLt and the vector kernels may assume. */
export function alignmentOf(ptr: number): number {
  let a = 1
  while (a < 256 && ptr % (a * 2) === 0) a *= 2
  return a
}

// ---- host-side bf16 ---------------------------------------------------------------------------------------

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** One float32 to bf16 bits, rounding to nearest even (NaN stays a quiet NaN, infinities stay). */
export function toBf16Bits(x: number): number {
  f32[0] = x
  const u = u32[0]!
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x007fffff) !== 0) return ((u >>> 16) | 0x0040) & 0xffff
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff
}

export function fromBf16Bits(h: number): number {
  u32[0] = (h & 0xffff) << 16
  return f32[0]!
}

/** src (n) float32 -> dst (n) bf16 bits, rounding to nearest even. */
export function f32ToBf16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const s = new Uint32Array(src.buffer, src.byteOffset, src.length)
  for (let i = 0; i < s.length; i++) {
    const u = s[i]!
    dst[i] = (u & 0x7f800000) === 0x7f800000 && (u & 0x007fffff) !== 0
      ? ((u >>> 16) | 0x0040) & 0xffff
      : ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff
  }
  return dst
}

/** src (n) bf16 bits -> dst (n) float32 (exact). */
export function bf16ToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  const d = new Uint32Array(dst.buffer, dst.byteOffset, dst.length)
  for (let i = 0; i < src.length; i++) d[i] = src[i]! << 16
  return dst
}

/** float32 values rounded through bf16 (what a bf16 tensor holds after an upload); for tests and references. */
export function roundToBf16(src: Float32Array): Float32Array {
  return bf16ToF32(f32ToBf16(src))
}
