// The --runs list of the GPU benchmarks (bench/cuda, bench/cuda-memory): model:B pairs, each optionally followed by
// options that pick a variant of the llm.ts run (activation recomputation, attention kernels, classifier chunk,
// cuBLASLt algorithm autotune).

import { MAX_GEMM_TUNE } from '../src/backend/cuda/gemm-tune.js'
import type { AttentionMode } from '../src/backend/cuda/index.js'
import { presetConfig } from '../src/config.js'
import { InputError } from '../src/util/errors.js'

/** Variants of an llm.ts run (the options of a --runs entry). */
export interface Variant { recompute: boolean; attention: AttentionMode; classifierRows?: number; gemmTune?: number }
export const variantHelp = ':recompute (activation recomputation), :atomic-dq (the one-kernel attention backward), ' +
  ':4-blocks (the attention backward at 128 registers, four blocks an SM), :wgmma (the attention on Hopper\'s ' +
  'warpgroup MMA), :wgmma-whole (:wgmma with the dK/dV kernel on whole query tiles, two blocks an SM), ' +
  `:rows=N (classifier chunk rows), :gemm-tune=N (time the top N cuBLASLt algorithms per GEMM shape, ` +
  `keep the fastest; 1..${MAX_GEMM_TUNE})`
const variantNames = ['recompute', 'atomic-dq', '4-blocks', 'wgmma', 'wgmma-whole', 'rows=N', 'gemm-tune=N'] as const

export interface Run { run: string; model: string; B: number; variant: Variant; label: string }

/** The variant of a --runs entry's options, or null when one is not recognized. */
function parseVariant(opts: string[]): Variant | null {
  const v: Variant = { recompute: false, attention: 'auto' }
  for (const o of opts) {
    const rows = /^rows=(\d+)$/.exec(o), tune = /^gemm-tune=(\d+)$/.exec(o)
    if (o === 'recompute') v.recompute = true
    else if (o === 'atomic-dq' || o === '4-blocks' || o === 'wgmma' || o === 'wgmma-whole') v.attention = o
    else if (rows !== null && Number(rows[1]) >= 1) v.classifierRows = Number(rows[1])
    else if (tune !== null && Number(tune[1]) >= 1 && Number(tune[1]) <= MAX_GEMM_TUNE) v.gemmTune = Number(tune[1])
    else return null
  }
  return v
}

/** The entries of a --runs flag (`tool` names the benchmark in errors); an unknown preset or option is an InputError. */
export function parseRuns(tool: string, runs: string): Run[] {
  return runs.split(',').map(s => s.trim()).map(run => {
    const [model, b, ...opts] = run.split(':'), B = Number(b), variant = parseVariant(opts)
    if (!(Number.isSafeInteger(B) && B >= 1) || variant === null) {
      throw new InputError(`${tool}: --runs entry "${run}" must be model:B, optionally followed by any of :${variantNames.join(', :')}`)
    }
    presetConfig(model!)   // an unknown preset fails here, before any GPU work
    return { run, model: model!, B, variant, label: opts.length > 0 ? ` (${opts.join(', ')})` : '' }
  })
}
