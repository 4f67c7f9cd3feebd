// CudaBackend: the Backend contract on one NVIDIA GPU. Tensors live in device memory as f32, or as bf16 when
// allocated with { precision: 'compute' } (activations); upload/download always speak float32. Ops delegate
// to layers.ts / sequence.ts (kernels in kernels/*.cu, matmuls through cuBLASLt). Everything runs on the legacy
// default stream, so downloads and sums see every earlier op; `profile` times each op with CUDA events.

import type { AdamWOptions, AllocOptions, Backend, Collective, IntTensor, RopeArgs, Tensor } from '../backend.js'
import { openContext, type ContextOptions, type CudaContext } from './context.js'
import { BLOCK, Kit } from './kit.js'
import * as L from './layers.js'
import { asDevice, asIntTensor, asTensor, bf16ToF32, DeviceTensor, dtypeBytes, f32ToBf16, splitPending, type Allocation } from './memory.js'
import { SequenceOps } from './sequence.js'
import { Profiler } from './profile.js'
import { specPeakTflops, type MatmulPrecision } from './peak.js'
import { MAX_GEMM_TUNE, type GemmTuning } from './gemm-tune.js'
import { InputError } from '../../util/errors.js'

export interface CudaBackendOptions extends ContextOptions {
  /** 'mixed' (default): { precision: 'compute' } tensors are bf16; 'f32': every tensor is float32. */
  storage?: 'mixed' | 'f32'
  profile?: boolean          // time every op with CUDA events (profiler.report())
  /** 'auto' (default): tensor-core flash attention for bf16, head size 64/128; 'atomic-dq': the same, with dQ
   *  computed in the dK/dV kernel and summed by f32 atomics (fewer tile products, not deterministic); '4-blocks': the
   *  same kernels as 'auto', the backward ones capped at 128 registers so four blocks fit an SM (head size 64; same
   *  results); 'wgmma': the same kernels on Hopper's warpgroup MMA where they are built for sm_90a (head
   *  size 64; elsewhere as 'auto'); 'wgmma-whole': 'wgmma' with the dK/dV kernel on whole query tiles (two blocks
   *  an SM instead of three); 'reference': the simple kernels. LLMTS_CUDA_ATTENTION sets it from the environment. */
  attention?: AttentionMode
}

export type AttentionMode = 'auto' | 'atomic-dq' | '4-blocks' | 'wgmma' | 'wgmma-whole' | 'reference'
const attentionModes: readonly AttentionMode[] = ['auto', 'atomic-dq', '4-blocks', 'wgmma', 'wgmma-whole', 'reference']

/** Environment knob `name`, checked against `allowed` (an InputError names them); unset or empty is the first. */
function envChoice<T extends string>(name: string, allowed: readonly T[]): T {
  const v = process.env[name] ?? ''
  if (v === '') return allowed[0]!
  if ((allowed as readonly string[]).includes(v)) return v as T
  throw new InputError(`cuda: ${name}=${v} is not one of ${allowed.join(', ')}`)
}

/** The gemmTune option, else LLMTS_CUDA_GEMM_TUNE (unset or empty: 1); an InputError unless an integer 1..32. */
function gemmTuneOf(opts: CudaBackendOptions): number {
  const name = opts.gemmTune !== undefined ? 'gemmTune' : 'LLMTS_CUDA_GEMM_TUNE'
  const v = opts.gemmTune !== undefined ? String(opts.gemmTune) : process.env[name] || '1'
  if (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= MAX_GEMM_TUNE) return Number(v)
  throw new InputError(`cuda: ${name}=${v} is not an integer 1..${MAX_GEMM_TUNE} (cuBLASLt algorithms to time per GEMM shape)`)
}

export class CudaBackend implements Backend {
  readonly name = 'cuda'
  readonly ctx: CudaContext
  readonly profiler: Profiler | null
  private readonly k: Kit
  private readonly seq: SequenceOps

  constructor(readonly opts: CudaBackendOptions = {}) {
    // a bad knob fails before any GPU work
    const attention = opts.attention ?? envChoice('LLMTS_CUDA_ATTENTION', attentionModes)
    const syncLaunches = opts.syncLaunches ?? envChoice('LLMTS_CUDA_SYNC', ['0', '1']) === '1'
    const gemmTune = gemmTuneOf(opts)
    this.ctx = openContext({ ...opts, syncLaunches, gemmTune })
    this.k = new Kit(this.ctx)
    this.seq = new SequenceOps(this.k, attention)
    this.profiler = (opts.profile ?? process.env['LLMTS_CUDA_PROFILE'] === '1') ? new Profiler(this.ctx, this) : null
  }

  /** One line: device, compute capability, memory, library paths (after first use). */
  describe(): string {
    const i = this.ctx.info
    const precision = { bf16: 'bf16 mixed precision', fp32: 'fp32', tf32: 'fp32 tensors, TF32 matmuls' }[this.matmulPrecision()]
    return `${i.name} (sm_${i.cc[0]}${i.cc[1]}, ${i.sms} SMs, ${(i.totalBytes / 2 ** 30).toFixed(1)} GiB), ` +
      `driver ${i.driverVersion}, ${precision}`
  }

  /** The precision the matmuls run in: bf16 with mixed storage, else TF32 unless turned off. */
  private matmulPrecision(): MatmulPrecision {
    return this.opts.storage !== 'f32' ? 'bf16' : this.opts.tf32 === false ? 'fp32' : 'tf32'
  }

  /** The GPU's spec dense peak at the matmuls' precision (peak.ts), null for a GPU not in its table. */
  peakFlops(): number | null {
    const tflops = specPeakTflops(this.ctx.info.name, this.matmulPrecision())
    return tflops === null ? null : tflops * 1e12
  }

  /** Compiles (or loads from the cache) every kernel now. */
  warmup(): void { this.ctx.kernels.compileAll() }

  synchronize(): void { this.ctx.synchronize() }

  /** What gemmTune > 1 timed: per GEMM shape, each candidate's median ms and the one kept (empty otherwise). */
  gemmTuning(): GemmTuning[] { return this.ctx.gemmTuning() }

  /** NCCL on this GPU for data-parallel ranks (loaded only then: one GPU never needs the library). */
  async openCollective(host: Collective): Promise<Collective> {
    const { NcclCollective } = await import('./collective.js')
    return NcclCollective.open(this.ctx, host)
  }

  // ---- memory -------------------------------------------------------------------------------------------

  alloc(n: number, opts?: AllocOptions): Tensor {
    const bf16 = opts?.precision === 'compute' && this.opts.storage !== 'f32'
    const a = this.ctx.alloc(n, bf16 ? 'bf16' : 'f32')
    return asTensor(new DeviceTensor(a, 0, n))
  }

  allocInt(n: number): IntTensor { return asIntTensor(new DeviceTensor(this.ctx.alloc(n, 'i32'), 0, n)) }

  view(t_: Tensor, offset: number, length: number): Tensor {
    const t = asDevice(t_, 'view', 't', 'handle')   // a view reads nothing: pending zeros stay pending
    if (!(offset >= 0 && length >= 0 && offset + length <= t.length)) {
      throw new Error(`cuda backend: view [${offset}, ${offset + length}) is outside a tensor of ${t.length}`)
    }
    return asTensor(new DeviceTensor(t.alloc, t.offset + offset, length))
  }

  upload(dst_: Tensor, src: Float32Array): void {
    const dst = this.k.dev('upload', 'dst', dst_, src.length)
    this.ctx.htod(dst.ptr, dst.dtype === 'bf16' ? f32ToBf16(src) : src)
    this.k.wrote(dst)
  }

  uploadInt(dst_: IntTensor, src: Int32Array): void {
    const dst = this.k.dev('uploadInt', 'dst', dst_, src.length)
    if (dst.dtype !== 'i32') throw new Error('cuda backend: uploadInt into a float tensor')
    this.ctx.htod(dst.ptr, src)
    this.k.wrote(dst)
  }

  download(src_: Tensor): Float32Array {
    const src = this.k.dev('download', 'src', src_)
    if (src.dtype === 'bf16') {
      const bits = new Uint16Array(src.length)
      this.ctx.dtoh(bits, src.ptr)
      return bf16ToF32(bits)
    }
    const out = new Float32Array(src.length)
    this.ctx.dtoh(out, src.ptr)
    return out
  }

  /** Lazy: the range is recorded (Allocation.pendingZero) and a part of it is cleared only if something other than
   *  an op that can overwrite instead of accumulating (Kit.accumulator) touches that part first — most zeros of a
   *  training step (zeroGrad, gradient buffers before `+=` ops) then cost nothing. */
  zero(t_: Tensor): void {
    const t = asDevice(t_, 'zero', 't', 'handle'), pending = t.alloc.pendingZero
    if (!pending.some(r => r.offset === t.offset && r.length === t.length)) pending.push({ offset: t.offset, length: t.length })
    t.alloc.clearPending ??= this.clearZeros
    this.k.wrote(t)
  }

  private readonly clearZeros = (a: Allocation, offset?: number, length?: number): void => {
    const size = dtypeBytes[a.dtype]
    for (const r of splitPending(a, offset, length)) this.ctx.memsetZero(a.ptr + r.offset * size, r.length * size)
  }

  copy(dst_: Tensor, src_: Tensor): void {
    const src = this.k.dev('copy', 'src', src_), dst = this.k.dev('copy', 'dst', dst_, src.length)
    if (dst.dtype === src.dtype) this.ctx.dtod(dst.ptr, src.ptr, src.bytes)
    else if (dst.dtype === 'i32' || src.dtype === 'i32') throw new Error(
      `cuda backend: copy: converts only between f32 and bf16, not ${src.dtype} to ${dst.dtype}`)
    else this.k.convert(dst.ptr, dst.dtype, src)
    this.k.wrote(dst)
  }

  sum(t: Tensor): number { return this.reduce(t, 0) }
  sumSquares(t: Tensor): number { return this.reduce(t, 1) }

  /** Σ x or Σ x² in float64: per-block float64 partials on the device, summed here. */
  private reduce(t_: Tensor, square: 0 | 1): number {
    const t = this.k.dev(square ? 'sumSquares' : 'sum', 't', t_)
    if (t.length === 0) return 0
    const G = Math.max(1, Math.min(1024, Math.ceil(t.length / (BLOCK * 8))))
    const partial = this.ctx.scratch('sum-partial', G * 8)
    this.k.launch('sum_partial', [G, 1, 1], [BLOCK, 1, 1], 0, [partial, t.ptr, t.length, square, this.k.mask(t)])
    const host = new Float64Array(G)
    this.ctx.dtoh(host, partial)
    let s = 0
    for (let i = 0; i < G; i++) s += host[i]!
    return s
  }

  free(t_: Tensor | IntTensor): void {
    const t = t_ as unknown as DeviceTensor
    if (t instanceof DeviceTensor && t.whole) this.ctx.free(t.alloc)
  }

  // ---- ops ----------------------------------------------------------------------------------------------

  encoderForward(out: Tensor, tokens: IntTensor, wte: Tensor, wpe: Tensor | null, B: number, T: number, C: number, posStart: number): void {
    L.encoderForward(this.k, out, tokens, wte, wpe, B, T, C, posStart)
  }
  encoderBackward(dwte: Tensor, dwpe: Tensor | null, dout: Tensor, tokens: IntTensor, B: number, T: number, C: number): void {
    L.encoderBackward(this.k, dwte, dwpe, dout, tokens, B, T, C)
  }
  layernormForward(out: Tensor, mean: Tensor, rstd: Tensor, inp: Tensor, weight: Tensor, bias: Tensor, N: number, C: number, eps: number): void {
    L.layernormForward(this.k, out, mean, rstd, inp, weight, bias, N, C, eps)
  }
  layernormBackward(dinp: Tensor, dweight: Tensor, dbias: Tensor, dout: Tensor, inp: Tensor, weight: Tensor, mean: Tensor,
                    rstd: Tensor, N: number, C: number): void {
    L.layernormBackward(this.k, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C)
  }
  rmsnormForward(out: Tensor, rstd: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, eps: number): void {
    L.rmsnormForward(this.k, out, rstd, inp, weight, N, C, eps)
  }
  rmsnormBackward(dinp: Tensor, dweight: Tensor, dout: Tensor, inp: Tensor, weight: Tensor, rstd: Tensor, N: number, C: number): void {
    L.rmsnormBackward(this.k, dinp, dweight, dout, inp, weight, rstd, N, C)
  }
  residualRmsnormForward(res: Tensor, out: Tensor, rstd: Tensor, a: Tensor, b: Tensor, weight: Tensor,
                         N: number, C: number, eps: number): void {
    L.residualRmsnormForward(this.k, res, out, rstd, a, b, weight, N, C, eps)
  }
  residualLayernormForward(res: Tensor, out: Tensor, mean: Tensor, rstd: Tensor, a: Tensor, b: Tensor, weight: Tensor,
                           bias: Tensor, N: number, C: number, eps: number): void {
    L.residualLayernormForward(this.k, res, out, mean, rstd, a, b, weight, bias, N, C, eps)
  }
  matmulForward(out: Tensor, inp: Tensor, weight: Tensor, bias: Tensor | null, N: number, C: number, OC: number): void {
    L.matmulForward(this.k, out, inp, weight, bias, N, C, OC)
  }
  matmulBackward(dinp: Tensor | null, dweight: Tensor, dbias: Tensor | null, dout: Tensor, inp: Tensor, weight: Tensor,
                 N: number, C: number, OC: number): void {
    L.matmulBackward(this.k, dinp, dweight, dbias, dout, inp, weight, N, C, OC)
  }
  ropeForward(out: Tensor, qkv: Tensor, B: number, T: number, NH: number, KVH: number, HS: number, theta: number, posStart: number): void {
    this.seq.ropeForward(out, qkv, B, T, NH, KVH, HS, theta, posStart)
  }
  ropeBackward(dqkv: Tensor, dout: Tensor, B: number, T: number, NH: number, KVH: number, HS: number, theta: number, posStart: number): void {
    this.seq.ropeBackward(dqkv, dout, B, T, NH, KVH, HS, theta, posStart)
  }
  attentionForward(out: Tensor, lse: Tensor, qkv: Tensor, B: number, T: number, NH: number, KVH: number, HS: number): void {
    this.seq.attentionForward(out, lse, qkv, B, T, NH, KVH, HS)
  }
  attentionBackward(dqkv: Tensor, dout: Tensor, qkv: Tensor, out: Tensor, lse: Tensor, B: number, T: number, NH: number,
                    KVH: number, HS: number, rope?: RopeArgs): void {
    this.seq.attentionBackward(dqkv, dout, qkv, out, lse, B, T, NH, KVH, HS, rope)
  }
  attentionInference(out: Tensor, cache: Tensor, B: number, Tq: number, posStart: number, Tmax: number, NH: number,
                     KVH: number, HS: number): void {
    this.seq.attentionInference(out, cache, B, Tq, posStart, Tmax, NH, KVH, HS)
  }
  geluForward(out: Tensor, inp: Tensor, n: number): void { L.geluForward(this.k, out, inp, n) }
  geluBackward(dinp: Tensor, dout: Tensor, inp: Tensor, n: number): void { L.geluBackward(this.k, dinp, dout, inp, n) }
  swigluForward(out: Tensor, inp: Tensor, N: number, H: number): void { L.swigluForward(this.k, out, inp, N, H) }
  swigluBackward(dinp: Tensor, dout: Tensor, inp: Tensor, N: number, H: number): void { L.swigluBackward(this.k, dinp, dout, inp, N, H) }
  residualForward(out: Tensor, a: Tensor, b: Tensor, n: number): void { L.residualForward(this.k, out, a, b, n) }
  crossEntropyForward(losses: Tensor, probs: Tensor, logits: Tensor, targets: IntTensor, N: number, V: number, Vp: number,
                      dlossScale?: number): void {
    this.seq.crossEntropyForward(losses, probs, logits, targets, N, V, Vp, dlossScale)
  }
  crossEntropyBackward(dlogits: Tensor, probs: Tensor, targets: IntTensor, dlossScale: number, N: number, V: number, Vp: number): void {
    this.seq.crossEntropyBackward(dlogits, probs, targets, dlossScale, N, V, Vp)
  }
  adamwUpdate(params: Tensor, grads: Tensor, m: Tensor, v: Tensor, opts: AdamWOptions): void {
    this.seq.adamwUpdate(params, grads, m, v, opts)
  }
}

/** The CUDA backend on device 0 (what `--device cuda` loads); InputError naming what is missing otherwise. */
export function createCudaBackend(opts: CudaBackendOptions = {}): CudaBackend {
  return new CudaBackend(opts)
}

/** Whether a GPU is usable, with the reason when not (tests and tools; `--device auto` decides the same way, by
 *  starting the backend and falling back to the CPU on its InputError). */
export function probeCuda(): { ok: true; device: string } | { ok: false; reason: string } {
  try { return { ok: true, device: new CudaBackend().describe() } } catch (e) { return { ok: false, reason: (e as Error).message } }
}
