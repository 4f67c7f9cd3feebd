// Launchers of the sequence and loss ops: RoPE (cos/sin tables cached per shape), causal GQA attention (forward,
// KV-cache inference, backward), the fused classifier (softmax + cross-entropy, then its gradient in place) and
// AdamW (which refreshes the parameters' bf16 mirror in the same pass, so weights are converted once per step).

import { decayPieces, type AdamWOptions, type IntTensor, type RopeArgs, type Tensor } from '../backend.js'
import { BLOCK, gridFor, type Kit } from './kit.js'
import type { AttentionMode } from './index.js'
import { Allocation, DeviceTensor } from './memory.js'

const ROPE_TABLES = 16   // cached (T, HS, posStart, theta) tables; decode uses a new posStart each token
const SPAN_TABLES = 8    // cached AdamW no-decay span tables (one per optimizer in practice)

export class SequenceOps {
  private readonly ropeTables = new Map<string, { cos: number; sin: number }>()
  private readonly spanTables = new Map<string, { ptr: number; count: number; keep: unknown }>()

  /** attention 'auto': tensor-core kernels (attention_mma.cu) where they apply ('atomic-dq': with the one-kernel
   *  backward; '4-blocks': with the backward kernels at 128 registers, head size 64; 'wgmma': attention_wgmma.cu's,
   *  head size 64 on sm_90a; 'wgmma-whole': the same with its dK/dV kernel on whole query tiles); 'reference':
   *  attention.cu always. */
  constructor(private readonly k: Kit, private readonly attention: AttentionMode = 'auto') {}

  /** The tensor-core path: bf16 q|k|v (and outputs), f32 statistics, head size 64 or 128, 16-byte-aligned rows. */
  private fast(HS: number, lse: DeviceTensor | null, ...bf16: DeviceTensor[]): boolean {
    return this.attention !== 'reference' && (HS === 64 || HS === 128) && (lse === null || lse.dtype === 'f32') &&
      bf16.every(t => t.dtype === 'bf16' && t.ptr % 16 === 0)
  }

  /** The wgmma kernels (attention_wgmma.cu) run: asked for, head size 64, and the kernels built for sm_90a. */
  private wgmma(HS: number): boolean {
    return (this.attention === 'wgmma' || this.attention === 'wgmma-whole') && HS === 64 && this.k.ctx.compileTarget.arch === 'sm_90a'
  }

  private static faShared(HS: number, tiles: number, extraBytes = 0): number { return tiles * 64 * (HS + 8) * 2 + extraBytes }

  private qkvWidth(op: string, NH: number, KVH: number, HS: number): number {
    if (KVH < 1 || NH % KVH !== 0) throw new Error(`cuda backend: ${op}: heads ${NH} is not a multiple of kvHeads ${KVH}`)
    return (NH + 2 * KVH) * HS
  }

  /** cos/sin tables (T, HS/2) for positions posStart.., computed in float64 on the device once per shape. */
  private ropeTable(T: number, HS: number, posStart: number, theta: number): { cos: number; sin: number } {
    const key = `${T},${HS},${posStart},${theta}`
    const hit = this.ropeTables.get(key)
    if (hit !== undefined) return hit
    if (this.ropeTables.size >= ROPE_TABLES) {
      const oldest = this.ropeTables.keys().next().value!
      this.ropeTables.delete(oldest)
    }
    const n = T * (HS / 2)
    const cos = this.k.ctx.alloc(n, 'f32'), sin = this.k.ctx.alloc(n, 'f32')
    this.k.launch('rope_table', gridFor(n), [BLOCK, 1, 1], 0, [cos.ptr, sin.ptr, T, HS, posStart, theta])
    const table = { cos: cos.ptr, sin: sin.ptr, keep: [cos, sin] }
    this.ropeTables.set(key, table)
    return table
  }

  /**
   * One launch: on the q and k heads dst = R·src ('forward') or dst (+)= Rᵀ·src ('backward', += when accumulate); v
   * copied or added, except in the in-place forward (v is already in place). 8 pairs a thread (16-byte loads) when
   * HS/2 % 8 == 0 and every pointer is 16-byte aligned, else one pair a thread.
   */
  private rope(op: string, dst: DeviceTensor, src: DeviceTensor, B: number, T: number, NH: number, KVH: number, HS: number,
               theta: number, posStart: number, mode: { direction: 'forward' | 'backward'; accumulate: boolean }): void {
    if (HS % 2 !== 0) throw new Error(`${op}: head size ${HS} must be even`)
    const QKV = (NH + 2 * KVH) * HS, BT = B * T, heads = NH + KVH, tab = this.ropeTable(T, HS, posStart, theta), k = this.k
    const vcols = mode.direction === 'backward' || dst.ptr !== src.ptr ? KVH * HS : 0
    const vec = (HS / 2) % 8 === 0 && QKV % 8 === 0 && k.aligned(dst, src) === 1 && tab.cos % 16 === 0 && tab.sin % 16 === 0
    const units = BT * (heads * (HS / 2) + vcols) / (vec ? 8 : 1)
    k.launch('rope_rotate', gridFor(units), [BLOCK, 1, 1], 0,
      [dst.ptr, src.ptr, tab.cos, tab.sin, BT, T, heads, vcols, QKV, HS, mode.direction === 'backward' ? 1 : 0,
        mode.accumulate ? 1 : 0, vec ? 1 : 0, k.mask(dst, src)])
    k.wrote(dst)
  }

  // qkv, out: (B,T,QKV); out may alias qkv
  ropeForward(out_: Tensor, qkv_: Tensor, B: number, T: number, NH: number, KVH: number, HS: number, theta: number,
              posStart: number): void {
    const n = B * T * this.qkvWidth('ropeForward', NH, KVH, HS)
    const out = this.k.dev('ropeForward', 'out', out_, n), qkv = this.k.dev('ropeForward', 'qkv', qkv_, n)
    this.rope('ropeForward', out, qkv, B, T, NH, KVH, HS, theta, posStart, { direction: 'forward', accumulate: false })
  }

  // dqkv += Rᵀ·dout on q and k, += dout on v (= when freshly zeroed: the launch then writes every element);
  // dqkv, dout: (B,T,QKV)
  ropeBackward(dqkv_: Tensor, dout_: Tensor, B: number, T: number, NH: number, KVH: number, HS: number, theta: number,
               posStart: number): void {
    const n = B * T * this.qkvWidth('ropeBackward', NH, KVH, HS)
    const dout = this.k.dev('ropeBackward', 'dout', dout_, n), { d: dqkv, fresh } = this.k.accumulator('ropeBackward', 'dqkv', dqkv_, n)
    this.rope('ropeBackward', dqkv, dout, B, T, NH, KVH, HS, theta, posStart, { direction: 'backward', accumulate: !fresh })
  }

  /** The per-thread dimension count of the reference attention kernels (HS <= 128). */
  private dpt(op: string, HS: number): number {
    for (const d of [2, 4, 8, 16, 32]) if (HS <= 4 * d) return d
    throw new Error(`cuda backend: ${op}: head size ${HS} is above 128, which the CUDA attention kernels do not support`)
  }

  // out: (B,Tq,NH·HS)   lse: (B,NH,Tq) or null   qkv: (B,Tmax,QKV), queries at rows [posStart, posStart+Tq)
  private attend(op: string, out: DeviceTensor, lse: DeviceTensor | null, qkv: DeviceTensor, B: number, Tq: number,
                 posStart: number, Tmax: number, NH: number, KVH: number, HS: number): void {
    const k = this.k
    k.launch(`attention_forward_d${this.dpt(op, HS)}`, [Math.ceil(Tq / 32), NH, B], [128, 1, 1], 0,
      [out.ptr, k.ptr(lse), qkv.ptr, Tq, posStart, Tmax, NH, KVH, HS, 1 / Math.sqrt(HS), k.mask(out, lse, qkv)])
    k.wrote(out, lse)
  }

  // qkv: (B,T,QKV)   out: (B,T,NH·HS)   lse: (B,NH,T)
  attentionForward(out_: Tensor, lse_: Tensor, qkv_: Tensor, B: number, T: number, NH: number, KVH: number, HS: number): void {
    const op = 'attentionForward', k = this.k
    const out = k.dev(op, 'out', out_, B * T * NH * HS), lse = k.dev(op, 'lse', lse_, B * NH * T)
    const qkv = k.dev(op, 'qkv', qkv_, B * T * this.qkvWidth(op, NH, KVH, HS))
    if (this.fast(HS, lse, qkv, out)) {
      const args = [out.ptr, lse.ptr, qkv.ptr, T, NH, KVH, 1 / Math.sqrt(HS)]
      if (this.wgmma(HS)) {   // padded Q, swizzled K/V
        k.launch('attention_wgmma_forward_d64', [NH, B, Math.ceil(T / 64)], [128, 1, 1], SequenceOps.faShared(HS, 1, 4 * 8192 + 1024), args)
      } else {
        k.launch(`attention_mma_forward_d${HS}`, [NH, B, Math.ceil(T / 64)], [128, 1, 1], SequenceOps.faShared(HS, 5), args)
      }
      k.wrote(out, lse)
      return
    }
    this.attend(op, out, lse, qkv, B, T, 0, T, NH, KVH, HS)
  }

  // out: (B,Tq,NH·HS)   cache: (B,Tmax,QKV) holding rope'd rows of positions [0, posStart+Tq)
  attentionInference(out_: Tensor, cache_: Tensor, B: number, Tq: number, posStart: number, Tmax: number, NH: number,
                     KVH: number, HS: number): void {
    const op = 'attentionInference', k = this.k
    if (posStart + Tq > Tmax) throw new Error(`attentionInference: positions up to ${posStart + Tq} exceed the cache (${Tmax})`)
    const out = k.dev(op, 'out', out_, B * Tq * NH * HS), cache = k.dev(op, 'cache', cache_, B * Tmax * this.qkvWidth(op, NH, KVH, HS))
    this.attend(op, out, null, cache, B, Tq, posStart, Tmax, NH, KVH, HS)
  }

  // dqkv: (B,T,QKV) += (= when freshly zeroed)   dout, out: (B,T,NH·HS)   qkv: (B,T,QKV)   lse: (B,NH,T)
  // rope: dqkv gets the gradient before RoPE (the tensor-core kernels rotate dq and dk as they store them)
  attentionBackward(dqkv_: Tensor, dout_: Tensor, qkv_: Tensor, out_: Tensor, lse_: Tensor, B: number, T: number,
                    NH: number, KVH: number, HS: number, rope?: RopeArgs): void {
    const op = 'attentionBackward', k = this.k, n = B * T * this.qkvWidth(op, NH, KVH, HS)
    const dout = k.dev(op, 'dout', dout_, B * T * NH * HS), qkv = k.dev(op, 'qkv', qkv_, n)
    const out = k.dev(op, 'out', out_, B * T * NH * HS), lse = k.dev(op, 'lse', lse_, B * NH * T)
    const { d: dqkv, fresh } = k.accumulator(op, 'dqkv', dqkv_, n)
    const D = k.ctx.scratch('attention-D', B * NH * T * 4), scale = 1 / Math.sqrt(HS)
    k.launch('attention_backward_dot', gridFor(B * NH * T * 32), [BLOCK, 1, 1], 0, [D, dout.ptr, out.ptr, B, T, NH, HS, k.mask(dout, out)])
    if (this.fast(HS, lse, dqkv, dout, qkv)) {
      const tab = rope === undefined ? { cos: 0, sin: 0 } : this.ropeTable(T, HS, rope.posStart, rope.theta)
      const fa = [dqkv.ptr, dout.ptr, qkv.ptr, lse.ptr, D, T, NH, KVH, scale, fresh ? 0 : 1, tab.cos, tab.sin]
      if (this.attention === 'atomic-dq') {   // dQ summed in f32 by the dK/dV blocks, then moved into dqkv
        const bytes = B * T * NH * HS * 4, acc = k.ctx.scratch('attention-dq', bytes)
        k.ctx.memsetZero(acc, bytes)
        k.launch(`attention_mma_backward_dkvq_d${HS}`, [KVH, B, Math.ceil(T / 64)], [128, 1, 1],
          SequenceOps.faShared(HS, 6, 4 * 64 * 4 + 64 * 72 * 2), [...fa, acc])
        k.launch('attention_dq_finish', gridFor(B * T * NH * HS / 16), [BLOCK, 1, 1], 0,
          [dqkv.ptr, acc, tab.cos, tab.sin, B * T, T, NH, KVH, HS, fresh ? 0 : 1])
      } else {
        if (this.wgmma(HS)) {   // two padded tiles, two pairs of swizzled ones (and the lse and D rows)
          k.launch('attention_wgmma_backward_dq_d64', [NH, B, Math.ceil(T / 64)], [128, 1, 1], SequenceOps.faShared(HS, 2, 4 * 8192 + 1024), fa)
          k.launch(`attention_wgmma_backward_dkv_${this.attention === 'wgmma-whole' ? 'w64_' : ''}d64`, [KVH, B, Math.ceil(T / 64)], [128, 1, 1],
            SequenceOps.faShared(HS, 2, 4 * 8192 + 4 * 64 * 4 + 1024), fa)
        } else {
          const b4 = this.attention === '4-blocks' && HS === 64 ? 'b4_' : ''
          k.launch(`attention_mma_backward_dq_${b4}d${HS}`, [NH, B, Math.ceil(T / 64)], [128, 1, 1], SequenceOps.faShared(HS, 6), fa)
          k.launch(`attention_mma_backward_dkv_${b4}d${HS}`, [KVH, B, Math.ceil(T / 64)], [128, 1, 1], SequenceOps.faShared(HS, 6, 4 * 64 * 4), fa)
        }
      }
      k.wrote(dqkv)
      return
    }
    // the reference kernels only accumulate: into dqkv itself, or with rope into a zeroed scratch rotated back into it
    const into = rope === undefined ? dqkv
      : new DeviceTensor(new Allocation(k.ctx.scratch('attention-rope', dqkv.bytes), n, dqkv.dtype), 0, n)
    if (fresh || rope !== undefined) k.ctx.memsetZero(into.ptr, into.bytes)
    const args = [into.ptr, dout.ptr, qkv.ptr, lse.ptr, D, T, NH, KVH, HS, scale, k.mask(into, dout, qkv, lse)], d = this.dpt(op, HS)
    k.launch(`attention_backward_dq_d${d}`, [Math.ceil(T / 32), NH, B], [128, 1, 1], 0, args)
    k.launch(`attention_backward_dkv_d${d}`, [Math.ceil(T / 32), KVH, B], [128, 1, 1], 0, args)
    if (rope !== undefined) this.rope(op, dqkv, into, B, T, NH, KVH, HS, rope.theta, rope.posStart, { direction: 'backward', accumulate: !fresh })
    k.wrote(dqkv)
  }


  // losses: (N)   probs, logits: (N,Vp), probs may alias logits   targets: (N)
  // with dlossScale, probs receives dlogits = (softmax - onehot)·dlossScale instead (the fused classifier)
  crossEntropyForward(losses_: Tensor, probs_: Tensor, logits_: Tensor, targets_: IntTensor, N: number, V: number, Vp: number,
                      dlossScale?: number): void {
    const op = 'crossEntropyForward', k = this.k
    const losses = k.dev(op, 'losses', losses_, N), probs = k.dev(op, 'probs', probs_, N * Vp)
    const logits = k.dev(op, 'logits', logits_, N * Vp), targets = k.dev(op, 'targets', targets_, N)
    const vec = Vp % 8 === 0 ? k.aligned(probs, logits) : 0, scale = dlossScale ?? 0, grad = dlossScale === undefined ? 0 : 1
    // bf16 rows staged in shared memory (one DRAM read of the logits): up to 8 16-byte chunks a thread, 1024 threads,
    // ceil(V/8)·16 bytes (+ the kernel's 128 static) within the device's per-block limit; else two reads of each row
    const chunks = Vp / 8, staged = Math.ceil(V / 8) * 16
    if (vec === 1 && logits.dtype === 'bf16' && probs.dtype === 'bf16' && V <= Vp && chunks <= 8 * 1024 &&
        staged + 256 <= k.ctx.info.maxSharedPerBlock) {
      k.launch('crossentropy_forward_staged', [N, 1, 1], [Math.ceil(chunks / 8 / 32) * 32, 1, 1], staged,
        [losses.ptr, probs.ptr, logits.ptr, targets.ptr, N, V, Vp, scale, grad, k.mask(losses)])
    } else {
      k.launch('crossentropy_forward', [N, 1, 1], [BLOCK, 1, 1], 0,
        [losses.ptr, probs.ptr, logits.ptr, targets.ptr, N, V, Vp, scale, grad, k.mask(losses, probs, logits), vec])
    }
    k.wrote(losses, probs)
  }

  // dlogits, probs: (N,Vp), dlogits may alias probs (OVERWRITTEN)   targets: (N)
  crossEntropyBackward(dlogits_: Tensor, probs_: Tensor, targets_: IntTensor, dlossScale: number, N: number, V: number, Vp: number): void {
    const op = 'crossEntropyBackward', k = this.k
    const dlogits = k.dev(op, 'dlogits', dlogits_, N * Vp), probs = k.dev(op, 'probs', probs_, N * Vp)
    const targets = k.dev(op, 'targets', targets_, N)
    const vec = Vp % 8 === 0 ? k.aligned(dlogits, probs) : 0
    k.launch('crossentropy_backward', gridFor(Math.ceil(N * Vp / 8)), [BLOCK, 1, 1], 0,
      [dlogits.ptr, probs.ptr, targets.ptr, dlossScale, N, V, Vp, k.mask(dlogits, probs), vec])
    k.wrote(dlogits)
  }

  /** The no-decay spans as a device table (start, end) of int64, uploaded once per distinct set (the optimizer passes
   *  the same spans every step). */
  private decaySpans(n: number, o: AdamWOptions): { ptr: number; count: number } {
    const pieces = decayPieces(n, o.noDecay, 1).filter(p => p.weightDecay === 0)   // checks the spans too
    if (pieces.length === 0) return { ptr: 0, count: 0 }
    const key = pieces.map(p => `${p.offset}+${p.length}`).join(',')
    let table = this.spanTables.get(key)
    if (table === undefined) {
      const host = new BigInt64Array(pieces.flatMap(p => [BigInt(p.offset), BigInt(p.offset + p.length)]))
      const a = this.k.ctx.alloc(2 * host.length, 'f32')   // 8 bytes per int64
      this.k.ctx.htod(a.ptr, host)
      if (this.spanTables.size >= SPAN_TABLES) this.spanTables.delete(this.spanTables.keys().next().value!)
      table = { ptr: a.ptr, count: pieces.length, keep: a }
      this.spanTables.set(key, table)
    }
    return table
  }

  // params, grads, m, v: (n)   o.noDecay: spans updated without weight decay
  adamwUpdate(params_: Tensor, grads_: Tensor, m_: Tensor, v_: Tensor, o: AdamWOptions): void {
    const op = 'adamwUpdate', k = this.k
    const params = k.dev(op, 'params', params_), n = params.length
    const grads = k.dev(op, 'grads', grads_, n), m = k.dev(op, 'm', m_, n), v = k.dev(op, 'v', v_, n)
    if (!(o.step >= 1)) throw new Error(`cuda backend: adamwUpdate: step ${o.step} must count from 1`)
    const a = params.alloc, mirrorValid = a.mirror !== null && a.mirror.version === a.version
    const mirror = mirrorValid ? a.mirror!.ptr + params.offset * 2 : 0
    const bc1 = 1 - Math.pow(o.beta1, o.step), bc2 = 1 - Math.pow(o.beta2, o.step), spans = this.decaySpans(n, o)
    k.launch('adamw_update', gridFor(Math.ceil(n / 8)), [BLOCK, 1, 1], 0,
      [params.ptr, grads.ptr, m.ptr, v.ptr, mirror, spans.ptr, spans.count, n, o.lr, o.beta1, o.beta2, o.eps,
        o.weightDecay, o.gradScale, bc1, bc2,
        k.mask(params, grads, m, v), k.aligned(params, grads, m, v) && (mirror % 16 === 0 ? 1 : 0)])
    k.wrote(params, m, v)
    if (mirrorValid) a.mirror!.version = a.version
  }
}
