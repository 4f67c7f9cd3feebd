// Divergence guards of the training loop. A non-finite loss or gradient norm never reaches the weights: with
// --on-nan stop the run ends (DivergenceError, the last checkpoint kept), with skip the update is skipped.
// Spikes are scored as llm.c's OutlierDetector does, a z-score against the last WINDOW values, except that the
// window excludes the value scored (a spike cannot widen its own yardstick), scoring starts after MIN_COUNT
// values rather than a full window, and skipped steps never enter it. The windows are checkpointed.

import { InputError } from '../util/errors.js'
import type { TrainConfig } from './config.js'

export const OUTLIER_WINDOW = 128
export const OUTLIER_MIN_COUNT = 32
const SPIKE_REPORT_Z = 5       // z-scores above this are reported even when nothing is skipped
const MAX_CONSECUTIVE_NAN = 8  // --on-nan skip gives up after this many non-finite steps in a row

/** Training diverged (non-finite loss, gradient or weights); the CLI exits with code 3. */
export class DivergenceError extends InputError {
  override name = 'DivergenceError'
  override readonly exitCode = 3
}

export class OutlierDetector {
  private values: number[]

  constructor(state: readonly number[] = []) {
    this.values = state.slice(-OUTLIER_WINDOW)
  }

  /** (value - mean) / std of the window; NaN while it holds fewer than MIN_COUNT values; 0 when std is 0. */
  score(value: number): number {
    const n = this.values.length
    if (n < OUTLIER_MIN_COUNT) return NaN
    let sum = 0
    for (const v of this.values) sum += v
    const mean = sum / n
    let sq = 0
    for (const v of this.values) sq += (v - mean) ** 2
    const std = Math.sqrt(sq / n)
    return std === 0 ? 0 : (value - mean) / std
  }

  /** Adds a finite value to the window, dropping the oldest beyond WINDOW. */
  push(value: number): void {
    if (!Number.isFinite(value)) return
    this.values.push(value)
    if (this.values.length > OUTLIER_WINDOW) this.values.shift()
  }

  state(): number[] {
    return [...this.values]
  }
}

/** The checkpointed windows of the two detectors. */
export interface GuardState { loss: number[]; gradNorm: number[] }

export function isGuardState(x: unknown): x is GuardState {
  const ok = (a: unknown): boolean => Array.isArray(a) && a.length <= OUTLIER_WINDOW && a.every(v => typeof v === 'number' && Number.isFinite(v))
  return typeof x === 'object' && x !== null && ok((x as GuardState).loss) && ok((x as GuardState).gradNorm)
}

/** What the guard decided about one step. */
export interface StepVerdict {
  skip: 'nan' | 'spike' | null    // why the update is skipped, if it is
  lossZ: number                   // NaN while the window fills
  gradZ: number
  spike: boolean                  // a z-score above the report (or skip) threshold
}

export class StepGuard {
  private readonly loss: OutlierDetector
  private readonly grad: OutlierDetector
  private nanRun = 0

  constructor(private readonly c: Pick<TrainConfig, 'onNan' | 'skipSpikes'>, state?: GuardState) {
    this.loss = new OutlierDetector(state?.loss)
    this.grad = new OutlierDetector(state?.gradNorm)
  }

  /** Judges step `step` (from 1) before its update; throws DivergenceError when the run must stop. */
  check(step: number, loss: number, gradNorm: number): StepVerdict {
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      this.nanRun++
      const what = `step ${step}: loss ${loss.toFixed(4)}, gradient norm ${gradNorm.toFixed(3)}`   // as the step lines (NaN stays NaN)
      if (this.c.onNan === 'stop') throw new DivergenceError(`train: ${what} is not finite; stopped before updating the weights`)
      if (this.nanRun >= MAX_CONSECUTIVE_NAN) {
        throw new DivergenceError(`train: ${what}: ${this.nanRun} non-finite steps in a row (--on-nan skip gives up)`)
      }
      return { skip: 'nan', lossZ: NaN, gradZ: NaN, spike: false }
    }
    this.nanRun = 0
    const lossZ = this.loss.score(loss), gradZ = this.grad.score(gradNorm)
    const threshold = this.c.skipSpikes > 0 ? this.c.skipSpikes : SPIKE_REPORT_Z
    const spike = lossZ > threshold || gradZ > threshold
    const skip = spike && this.c.skipSpikes > 0 ? 'spike' : null
    if (skip === null) {
      this.loss.push(loss)
      this.grad.push(gradNorm)
    }
    return { skip, lossZ, gradZ, spike }
  }

  state(): GuardState {
    return { loss: this.loss.state(), gradNorm: this.grad.state() }
  }
}

/** Throws DivergenceError when `params` hold a NaN or infinity (checked before a checkpoint is written). */
export function checkFiniteParams(params: Float32Array, step: number): void {
  for (let i = 0; i < params.length; i++) {
    if (!Number.isFinite(params[i]!)) {
      throw new DivergenceError(`train: step ${step}: parameter ${i} is ${params[i]} after the update; no checkpoint written`)
    }
  }
}
