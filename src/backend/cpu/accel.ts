// The fast execution layer under CpuBackend: each op is cut into slices along an independent axis (rows,
// sequences, elements, GEMM columns) and the slices run on the worker pool and this thread at once, every slice
// through the same op table (optable.ts). Ops stay on one thread when there is no pool, the work is small, or
// an output does not live on a SharedArrayBuffer (it would be copied to the worker, not shared).

import type { AdamWOptions } from '../backend.js'
import { DEFAULT_MIN_WORK, type Gemm, type Trans } from './gemm.js'
import { chooseKernels, type CpuOptions, type KernelPath } from './kernels.js'
import { makeOpTable, type OpFn, type OpName, type OpTable } from './optable.js'
import { WorkerPool, type Task, type WorkerSetup } from './pool.js'

const SPLIT_MIN_WORK = 32 * 1024    // elements (multiply-adds / 64 for GEMMs) below which an op stays on one thread

type Arr = Float32Array | Int32Array

const shared = (...xs: (Arr | null)[]): boolean => xs.every(x => x === null || x.buffer instanceof SharedArrayBuffer)

/** [lo, hi) ranges covering [0, n) in at most `parts` pieces, each a multiple of `align` except the last. */
export function splitRange(n: number, parts: number, align = 1): [number, number][] {
  const units = Math.ceil(n / align), per = Math.ceil(units / Math.max(1, parts))
  const out: [number, number][] = []
  for (let u = 0; u < units; u += per) out.push([u * align, Math.min(n, (u + per) * align)])
  return out
}

const pools = new Map<string, WorkerPool>()

/** One pool per (size, setup) per process, shared by every backend that asks for it (workers are stateless). */
function sharedPool(size: number, setup: WorkerSetup): WorkerPool {
  const key = JSON.stringify([size, setup])
  let pool = pools.get(key)
  if (pool === undefined) pools.set(key, pool = new WorkerPool(size, setup))
  return pool
}

/** The kernels and threads for a backend's options: native BLAS threads itself, the worker pool does the rest. */
export function createAccel(opts: CpuOptions = {}): Accel {
  const k = chooseKernels(opts)
  const gemmMinWork = opts.minWork?.gemm ?? DEFAULT_MIN_WORK
  const pool = k.kind === 'js' || k.threads < 2 ? null
    : sharedPool(k.threads - 1, { simd: k.simd?.variant ?? null, gemm: k.simd !== null ? 'wasm' : 'js', gemmMinWork })
  return new Accel(k, pool, gemmMinWork, opts.minWork?.split ?? SPLIT_MIN_WORK)
}

export class Accel {
  private readonly ops: OpTable
  private partials: Float32Array = new Float32Array(0)   // per-slice partial sums of spreadWithSums
  private readonly results = new Float64Array(new SharedArrayBuffer(8 * 64))   // per-slice scalar results
  /** The GEMM of this thread's matmuls: the WebAssembly kernel spread over the pool, else the kernel itself. */
  readonly gemm: Gemm | null

  constructor(readonly kernels: KernelPath, readonly pool: WorkerPool | null, readonly gemmMinWork: number,
              private readonly splitMinWork: number) {
    this.ops = makeOpTable({ gemm: kernels.gemm, gemmMinWork, simd: kernels.simd })
    const threaded = kernels.kind === 'wasm' && pool !== null
    this.gemm = threaded ? { sgemm: this.sgemm.bind(this), minRows: kernels.gemm!.minRows } : kernels.gemm
  }

  /** Whether work of this size is worth splitting. */
  private big(work: number): boolean { return work >= this.splitMinWork }

  /** Threads an op can use: the pool's workers plus this one. */
  get threads(): number { return this.pool === null ? 1 : this.pool.size + 1 }

  /** Runs op on slices of [0, n) (aligned) across threads, or whole here; slice(lo, hi) builds a task's args. */
  private spread<K extends OpName>(op: K, n: number, align: number, work: number, outs: (Arr | null)[],
                                   slice: (lo: number, hi: number) => Parameters<OpTable[K]>): void {
    const fn: OpFn = this.ops[op]
    if (this.pool === null || !this.big(work) || !shared(...outs)) { fn(...slice(0, n)); return }
    const ranges = splitRange(n, this.threads, align)
    if (ranges.length < 2) { fn(...slice(0, n)); return }
    const tasks: Task[] = ranges.slice(1).map(([lo, hi]) => ({ op, args: slice(lo, hi) }))
    const [lo0, hi0] = ranges[0]!
    this.pool.run(tasks, () => fn(...slice(lo0, hi0)))
  }

  /**
   * spread() for ops that also ACCUMULATE into small per-column tensors (a norm's dweight, dbias): slice 0 adds
   * into `sums` directly, every other slice into a zeroed private partial (shared memory), added in afterwards.
   */
  private spreadWithSums<K extends OpName>(op: K, n: number, work: number, outs: Arr[], sums: Float32Array[],
                                           slice: (lo: number, hi: number, sums: Float32Array[]) => Parameters<OpTable[K]>): void {
    const fn: OpFn = this.ops[op]
    const ranges = this.pool === null || !this.big(work) || !shared(...outs) ? [] : splitRange(n, this.threads)
    if (ranges.length < 2) { fn(...slice(0, n, sums)); return }
    const width = sums.reduce((w, t) => w + t.length, 0), total = (ranges.length - 1) * width
    if (this.partials.length < total) this.partials = new Float32Array(new SharedArrayBuffer(4 * total))
    const part = this.partials.fill(0, 0, total)
    const views = ranges.slice(1).map((_, i) => {
      let at = i * width
      return sums.map(t => { at += t.length; return part.subarray(at - t.length, at) })
    })
    const tasks: Task[] = ranges.slice(1).map(([lo, hi], i) => ({ op, args: slice(lo, hi, views[i]!) }))
    this.pool!.run(tasks, () => fn(...slice(ranges[0]![0], ranges[0]![1], sums)))
    for (const v of views) {
      for (let j = 0; j < sums.length; j++) for (let c = 0; c < v[j]!.length; c++) sums[j]![c] += v[j]![c]!
    }
  }

  // ---- GEMM, split along the larger output dimension (wasm path; BLAS threads itself) --------------------
  sgemm(ta: Trans, tb: Trans, M: number, N: number, K: number, a: Float32Array, aOff: number, lda: number,
        b: Float32Array, bOff: number, ldb: number, beta: number, c: Float32Array, cOff: number, ldc: number): void {
    const work = this.kernels.kind === 'wasm' ? M * N * K / 64 : -1
    if (N >= M) {
      this.spread('sgemm', N, 16, work, [c], (j0, j1) => [ta, tb, M, j1 - j0, K, a, aOff, lda,
        b, bOff + (tb === 'N' ? j0 : j0 * ldb), ldb, beta, c, cOff + j0, ldc])
    } else {
      this.spread('sgemm', M, 16, work, [c], (i0, i1) => [ta, tb, i1 - i0, N, K,
        a, aOff + (ta === 'N' ? i0 * lda : i0), lda, b, bOff, ldb, beta, c, cOff + i0 * ldc, ldc])
    }
  }

  // ---- attention and RoPE, split by sequence ---------------------------------------------------------------
  attentionForward(out: Float32Array, lse: Float32Array, qkv: Float32Array, B: number, T: number, NH: number, KVH: number,
                   HS: number): void {
    const C = NH * HS, QKV = (NH + 2 * KVH) * HS
    this.spread('attentionForward', B, 1, B * T * T * HS, [out, lse], (b0, b1) => [out.subarray(b0 * T * C, b1 * T * C),
      lse.subarray(b0 * NH * T, b1 * NH * T), qkv.subarray(b0 * T * QKV, b1 * T * QKV), b1 - b0, T, NH, KVH, HS])
  }
  attentionBackward(dqkv: Float32Array, dout: Float32Array, qkv: Float32Array, lse: Float32Array,
                    B: number, T: number, NH: number, KVH: number, HS: number): void {
    const C = NH * HS, QKV = (NH + 2 * KVH) * HS
    this.spread('attentionBackward', B, 1, B * T * T * HS, [dqkv], (b0, b1) => [dqkv.subarray(b0 * T * QKV, b1 * T * QKV),
      dout.subarray(b0 * T * C, b1 * T * C), qkv.subarray(b0 * T * QKV, b1 * T * QKV),
      lse.subarray(b0 * NH * T, b1 * NH * T), b1 - b0, T, NH, KVH, HS])
  }
  attentionInference(out: Float32Array, cache: Float32Array, B: number, Tq: number, posStart: number, Tmax: number,
                     NH: number, KVH: number, HS: number): void {
    const C = NH * HS, QKV = (NH + 2 * KVH) * HS
    this.spread('attentionInference', B, 1, B * Tq * (posStart + Tq) * HS, [out], (b0, b1) => [
      out.subarray(b0 * Tq * C, b1 * Tq * C), cache.subarray(b0 * Tmax * QKV, b1 * Tmax * QKV), b1 - b0, Tq, posStart, Tmax,
      NH, KVH, HS])
  }
  ropeForward(out: Float32Array, qkv: Float32Array, B: number, T: number, NH: number, KVH: number, HS: number,
              theta: number, posStart: number): void {
    const n = T * (NH + 2 * KVH) * HS
    this.spread('ropeForward', B, 1, B * n, [out], (b0, b1) => [out.subarray(b0 * n, b1 * n),
      qkv.subarray(b0 * n, b1 * n), b1 - b0, T, NH, KVH, HS, theta, posStart])
  }
  ropeBackward(dqkv: Float32Array, dout: Float32Array, B: number, T: number, NH: number, KVH: number, HS: number,
               theta: number, posStart: number): void {
    const n = T * (NH + 2 * KVH) * HS
    this.spread('ropeBackward', B, 1, B * n, [dqkv], (b0, b1) => [dqkv.subarray(b0 * n, b1 * n),
      dout.subarray(b0 * n, b1 * n), b1 - b0, T, NH, KVH, HS, theta, posStart])
  }

  // ---- row-wise ops ---------------------------------------------------------------------------------------
  crossEntropyForward(losses: Float32Array, probs: Float32Array, logits: Float32Array, targets: Int32Array,
                      N: number, V: number, Vp: number): void {
    this.spread('crossEntropyForward', N, 1, N * Vp, [losses, probs], (n0, n1) => [losses.subarray(n0, n1),
      probs.subarray(n0 * Vp, n1 * Vp), logits.subarray(n0 * Vp, n1 * Vp), targets.subarray(n0, n1), n1 - n0, V, Vp])
  }
  crossEntropyBackward(dlogits: Float32Array, probs: Float32Array, targets: Int32Array, dlossScale: number,
                       N: number, V: number, Vp: number): void {
    this.spread('crossEntropyBackward', N, 1, N * Vp, [dlogits], (n0, n1) => [
      dlogits.subarray(n0 * Vp, n1 * Vp), probs.subarray(n0 * Vp, n1 * Vp), targets.subarray(n0, n1), dlossScale,
      n1 - n0, V, Vp])
  }
  rmsnormForward(out: Float32Array, rstd: Float32Array, inp: Float32Array, weight: Float32Array, N: number, C: number,
                 eps: number): void {
    this.spread('rmsnormForward', N, 1, N * C, [out, rstd], (n0, n1) => [out.subarray(n0 * C, n1 * C),
      rstd.subarray(n0, n1), inp.subarray(n0 * C, n1 * C), weight, n1 - n0, C, eps])
  }
  layernormForward(out: Float32Array, mean: Float32Array, rstd: Float32Array, inp: Float32Array, weight: Float32Array,
                   bias: Float32Array, N: number, C: number, eps: number): void {
    this.spread('layernormForward', N, 1, N * C, [out, mean, rstd], (n0, n1) => [out.subarray(n0 * C, n1 * C),
      mean.subarray(n0, n1), rstd.subarray(n0, n1), inp.subarray(n0 * C, n1 * C), weight, bias, n1 - n0, C, eps])
  }
  rmsnormBackward(dinp: Float32Array, dweight: Float32Array, dout: Float32Array, inp: Float32Array, weight: Float32Array,
                  rstd: Float32Array, N: number, C: number): void {
    this.spreadWithSums('rmsnormBackward', N, N * C, [dinp], [dweight], (n0, n1, [dw]) => [dinp.subarray(n0 * C, n1 * C), dw,
      dout.subarray(n0 * C, n1 * C), inp.subarray(n0 * C, n1 * C), weight, rstd.subarray(n0, n1), n1 - n0, C])
  }
  layernormBackward(dinp: Float32Array, dweight: Float32Array, dbias: Float32Array, dout: Float32Array, inp: Float32Array,
                    weight: Float32Array, mean: Float32Array, rstd: Float32Array, N: number, C: number): void {
    this.spreadWithSums('layernormBackward', N, N * C, [dinp], [dweight, dbias], (n0, n1, [dw, db]) => [
      dinp.subarray(n0 * C, n1 * C), dw, db, dout.subarray(n0 * C, n1 * C), inp.subarray(n0 * C, n1 * C), weight,
      mean.subarray(n0, n1), rstd.subarray(n0, n1), n1 - n0, C])
  }
  swigluForward(out: Float32Array, inp: Float32Array, N: number, H: number): void {
    this.spread('swigluForward', N, 1, N * H, [out], (n0, n1) => [out.subarray(n0 * H, n1 * H),
      inp.subarray(n0 * 2 * H, n1 * 2 * H), n1 - n0, H])
  }
  swigluBackward(dinp: Float32Array, dout: Float32Array, inp: Float32Array, N: number, H: number): void {
    this.spread('swigluBackward', N, 1, N * H, [dinp], (n0, n1) => [dinp.subarray(n0 * 2 * H, n1 * 2 * H),
      dout.subarray(n0 * H, n1 * H), inp.subarray(n0 * 2 * H, n1 * 2 * H), n1 - n0, H])
  }

  /** Σ a² in float64, slices summed on their threads. */
  sumSquares(a: Float32Array): number {
    const fn = this.ops['sumSquaresInto']!
    const split = this.pool !== null && this.big(a.length) && shared(a)
    const ranges = split ? splitRange(a.length, Math.min(this.threads, this.results.length), 16) : []
    if (ranges.length < 2) { fn(this.results, 0, a); return this.results[0]! }
    const tasks: Task[] = ranges.slice(1).map(([lo, hi], i) => ({
      op: 'sumSquaresInto', args: [this.results, i + 1, a.subarray(lo, hi)] }))
    this.pool!.run(tasks, () => fn(this.results, 0, a.subarray(ranges[0]![0], ranges[0]![1])))
    let s = 0
    for (let i = 0; i < ranges.length; i++) s += this.results[i]!
    return s
  }

  // ---- element-wise ops (ranges aligned to 16 floats = one cache line) --------------------------------------
  geluForward(out: Float32Array, inp: Float32Array, n: number): void {
    this.spread('geluForward', n, 16, n, [out], (i0, i1) => [out.subarray(i0, i1), inp.subarray(i0, i1), i1 - i0])
  }
  geluBackward(dinp: Float32Array, dout: Float32Array, inp: Float32Array, n: number): void {
    this.spread('geluBackward', n, 16, n, [dinp], (i0, i1) => [dinp.subarray(i0, i1), dout.subarray(i0, i1),
      inp.subarray(i0, i1), i1 - i0])
  }
  residualForward(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
    this.spread('residualForward', n, 16, n, [out], (i0, i1) => [out.subarray(i0, i1), a.subarray(i0, i1),
      b.subarray(i0, i1), i1 - i0])
  }
  adamwUpdate(params: Float32Array, grads: Float32Array, m: Float32Array, v: Float32Array, n: number,
              opts: AdamWOptions): void {
    this.spread('adamwUpdate', n, 16, n, [params, m, v], (i0, i1) => [params.subarray(i0, i1),
      grads.subarray(i0, i1), m.subarray(i0, i1), v.subarray(i0, i1), i1 - i0, opts])
  }
}
