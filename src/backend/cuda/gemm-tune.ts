// Opt-in cuBLASLt algorithm autotune (gemmTune > 1, LLMTS_CUDA_GEMM_TUNE): the heuristic's top candidates for a GEMM
// shape are timed on the operands of that shape's first call (one warm-up call, then the median of three calls
// between CUDA events) and the fastest is kept; ties keep the heuristic's order. An accumulating GEMM (D += A·B) has
// its D saved before the trials and put back after, so the real call adds to what was there.

import type { CudaContext } from './context.js'

/** What the trials need of the GPU: events on the default stream, a device copy, a temporary buffer. */
export type TuneDevice = Pick<CudaContext, 'recordEvent' | 'elapsedMs' | 'dtod' | 'alloc' | 'free'>

/** One tuned GEMM shape: its description, each candidate's median ms (heuristic order), the index kept. */
export interface GemmTuning { gemm: string; ms: number[]; chosen: number }

export const TIMED_CALLS = 3
export const MAX_GEMM_TUNE = 32   // candidates at most (LLMTS_CUDA_GEMM_TUNE, :gemm-tune=N)

/** The index of the lowest median; on a tie the earlier one (the heuristic's preference). */
export function fastest(ms: readonly number[]): number {
  let best = 0
  for (let i = 1; i < ms.length; i++) if (ms[i]! < ms[best]!) best = i
  return best
}

/** Each candidate's median ms over TIMED_CALLS calls of `call(i)` after one warm-up; `saved` (D's bytes of an
 *  accumulating GEMM) is copied aside first and back after, so the trials leave it as it was. */
export function timeCandidates(dev: TuneDevice, count: number, call: (i: number) => void,
                               saved: { ptr: number; bytes: number } | null): number[] {
  const copy = saved === null ? null : dev.alloc(Math.ceil(saved.bytes / 4), 'i32')
  if (copy !== null) dev.dtod(copy.ptr, saved!.ptr, saved!.bytes)
  try {
    return Array.from({ length: count }, (_, i) => {
      call(i)
      const times = Array.from({ length: TIMED_CALLS }, () => {
        const start = dev.recordEvent()
        call(i)
        return dev.elapsedMs(start, dev.recordEvent())
      })
      return times.sort((a, b) => a - b)[TIMED_CALLS >> 1]!
    })
  } finally {
    if (copy !== null) {
      dev.dtod(saved!.ptr, copy.ptr, saved!.bytes)
      dev.free(copy)
    }
  }
}

/** One line for a log: the shape, the candidate kept, its time against the heuristic's first. */
export function formatTuning(t: GemmTuning): string {
  const ms = (v: number): string => `${v.toFixed(4)} ms`
  const gain = t.chosen === 0 ? 'the heuristic\'s first' : `${ms(t.ms[0]!)} for candidate 0, ` +
    `${((1 - t.ms[t.chosen]! / t.ms[0]!) * 100).toFixed(1)}% less`
  return `gemm-tune: ${t.gemm}: candidate ${t.chosen} of ${t.ms.length}, ${ms(t.ms[t.chosen]!)} (${gain})`
}
