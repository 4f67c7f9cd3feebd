// bench/cuda's order of runs: for each --runs entry, llm.ts and PyTorch alternate for --repeat rounds (ours, torch,
// ours, torch, ...), so a drift of the GPU (clocks, heat, a neighbour) falls on both sides alike. PyTorch runs once
// per model:B and round; a later entry of that model:B (a variant of the llm.ts run) compares with the same runs.
// The measuring functions are passed in: the order and the failure handling are tested without a GPU.

import type { KernelProfile, OpTime } from './cuda-profile.js'
import type { Run } from './cuda-runs.js'

/** One measurement: an llm.ts child's or bench/torch_reference.py's JSON line, or a failed run (error set). */
export interface Result {
  impl: 'llm.ts' | 'pytorch'; model: string; B: number; T: number; params: number
  ms_per_step: number; tokens_per_s: number; peak_bytes: number; loss_first: number; loss_last: number
  device?: string; torch?: string; error?: string
  profile?: OpTime[]                 // llm.ts --profile: GPU time per op and step
  kernel_profile?: KernelProfile     // PyTorch --profile: GPU time per kernel category and step
}

/** An entry's runs in round order; torch null without PyTorch (--python none). torchFirst: this entry made the
 *  PyTorch runs (false: an earlier entry of the same model:B did, and its table rows show them). */
export interface EntryRuns { entry: Run; ours: Result[]; torch: Result[] | null; torchFirst: boolean }

export interface Measurers {
  ours: (entry: Run) => Result
  torch: ((model: string, B: number) => Result) | null
  /** After each round of an entry (progress: a stage cut short by its time limit still logs every finished run). */
  round?: (entry: Run, round: number, ours: Result, torch: Result | null) => void
  /** After an entry's last round. */
  done?: (runs: EntryRuns) => void
}

/** The result of a run that threw: its first line as the error, the numbers NaN. */
export function failedResult(impl: Result['impl'], model: string, B: number, T: number, e: unknown): Result {
  return { impl, model, B, T, params: 0, ms_per_step: NaN, tokens_per_s: NaN, peak_bytes: NaN, loss_first: NaN, loss_last: NaN,
    error: (e instanceof Error ? e.message : String(e)).split('\n')[0]! }
}

/** Every entry's `repeat` rounds, measured in the order above; a run that throws is recorded as failed. */
export function measureEntries(runs: readonly Run[], repeat: number, T: number, m: Measurers): EntryRuns[] {
  const torchRuns = new Map<string, Result[]>()   // model:B → its PyTorch runs by round
  return runs.map(entry => {
    const { model, B } = entry, key = `${model}:${B}`
    const torchFirst = m.torch !== null && !torchRuns.has(key)
    const torch = m.torch === null ? null : torchRuns.get(key) ?? []
    if (torch !== null) torchRuns.set(key, torch)
    const ours: Result[] = []
    for (let r = 0; r < repeat; r++) {
      ours.push(attempt(() => m.ours(entry), 'llm.ts', model, B, T))
      if (torch !== null && torch.length <= r) torch.push(attempt(() => m.torch!(model, B), 'pytorch', model, B, T))
      m.round?.(entry, r, ours[r]!, torch?.[r] ?? null)
    }
    const out = { entry, ours, torch, torchFirst }
    m.done?.(out)
    return out
  })
}

function attempt(fn: () => Result, impl: Result['impl'], model: string, B: number, T: number): Result {
  try { return fn() } catch (e) { return failedResult(impl, model, B, T, e) }
}
