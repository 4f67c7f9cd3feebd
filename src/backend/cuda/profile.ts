// Per-op GPU time: wraps each op method of a backend so a CUDA event is recorded before and after it on the
// default stream; report() waits for the GPU and sums the elapsed times per op name. Off unless asked for
// (LLMTS_CUDA_PROFILE=1 or { profile: true }): events cost a driver call each.

import type { CudaContext } from './context.js'

export const profiledOps = ['encoderForward', 'encoderBackward', 'layernormForward', 'layernormBackward', 'rmsnormForward',
  'rmsnormBackward', 'residualRmsnormForward', 'residualLayernormForward', 'matmulForward', 'matmulBackward',
  'ropeForward', 'ropeBackward', 'attentionForward', 'attentionBackward', 'attentionInference', 'geluForward',
  'geluBackward', 'swigluForward', 'swigluBackward', 'residualForward', 'crossEntropyForward', 'crossEntropyBackward',
  'adamwUpdate', 'sumSquares', 'sum', 'zero', 'copy'] as const

interface OpTime { op: string; calls: number; ms: number }

export class Profiler {
  private pending: { op: string; start: bigint; end: bigint }[] = []
  private readonly totals = new Map<string, OpTime>()

  constructor(private readonly ctx: CudaContext, target: object) {
    const t = target as Record<string, (...a: unknown[]) => unknown>
    for (const op of profiledOps) {
      const inner = t[op]!.bind(target)
      t[op] = (...args: unknown[]) => {
        const start = ctx.recordEvent()
        const r = inner(...args)
        this.pending.push({ op, start, end: ctx.recordEvent() })
        if (this.pending.length > 4096) this.collect()
        return r
      }
    }
  }

  /** Folds the recorded events into the totals (waits for the GPU). */
  private collect(): void {
    for (const p of this.pending) {
      const t = this.totals.get(p.op) ?? { op: p.op, calls: 0, ms: 0 }
      t.calls++
      t.ms += this.ctx.elapsedMs(p.start, p.end)
      this.totals.set(p.op, t)
    }
    this.pending = []
  }

  /** Totals since the last reset, slowest first. */
  report(): OpTime[] {
    this.collect()
    return [...this.totals.values()].sort((a, b) => b.ms - a.ms)
  }

  reset(): void {
    this.collect()
    this.totals.clear()
  }
}
