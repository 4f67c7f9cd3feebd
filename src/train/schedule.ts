// Learning-rate schedules, llm.c's four: a linear warmup to the peak, then `cosine` (the default, the report's) or
// `linear` decay towards minLrFrac · peak, `constant` at the peak, or `wsd` (warmup-stable-decay: the peak until the
// last cooldownFrac of the steps, then down to the floor along 1 − √t, Hägele et al. 2024). Steps are counted from 0
// (the first optimizer step uses learningRate(s, 0)); computed in float64.

export const lrSchedules = ['cosine', 'linear', 'constant', 'wsd'] as const
export type LrScheduleKind = typeof lrSchedules[number]

export interface LrSchedule {
  lr: number            // peak learning rate
  warmupSteps: number   // steps [0, warmupSteps) ramp linearly to lr
  steps: number         // total optimizer steps; a decay would reach its floor at step `steps`, so the last step
                        // (steps − 1) is one short of it, as in llm.c
  minLrFrac: number     // floor = lr · minLrFrac (cosine, linear, wsd)
  lrSchedule?: LrScheduleKind   // default cosine
  cooldownFrac?: number         // wsd: the decay takes the last ⌈cooldownFrac · steps⌉ steps (default 0.2)
}

/** wsd's first decaying step: the last ⌈f·steps⌉ steps decay (step ⌊(1 − f)·steps⌋ on), but never inside the warmup. */
export function cooldownStart(sched: LrSchedule): number {
  const f = sched.cooldownFrac ?? 0.2
  return Math.max(sched.warmupSteps, sched.steps - Math.ceil(f * sched.steps - 1e-9))
}

/** lr · (s+1)/warmup during warmup; then, with t the decay's progress in [0, 1] (clamped past the end, so a caller
 *  past the last step gets the floor):
 *  cosine   min + ½·(1 + cos(π·t))·(lr − min),  t = (s − warmup)/(steps − warmup)
 *  linear   min + (1 − t)·(lr − min),           t as cosine's
 *  constant lr
 *  wsd      lr before the cooldown, then min + (1 − √t)·(lr − min),  t = (s − start)/(steps − start). */
export function learningRate(sched: LrSchedule, step: number): number {
  const { lr, warmupSteps, steps, minLrFrac } = sched
  const kind = sched.lrSchedule ?? 'cosine'
  if (step < warmupSteps) return lr * (step + 1) / warmupSteps
  if (kind === 'constant') return lr
  const start = kind === 'wsd' ? cooldownStart(sched) : warmupSteps
  if (step < start) return lr
  const minLr = lr * minLrFrac
  // steps == start never reaches here inside a run; clamp so a caller past the end gets the minimum
  const t = Math.min(1, (step - start) / Math.max(1, steps - start))
  const coeff = kind === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * t)) : kind === 'linear' ? 1 - t : 1 - Math.sqrt(t)
  return minLr + coeff * (lr - minLr)
}
