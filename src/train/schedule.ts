// The learning-rate schedule of llm.c: linear warmup to the peak, then cosine decay to minLrFrac · peak.
// Steps are counted from 0 (the first optimizer step uses learningRate(s, 0)); computed in float64.

interface LrSchedule {
  lr: number            // peak learning rate
  warmupSteps: number   // steps [0, warmupSteps) ramp linearly to lr
  steps: number         // total optimizer steps; the cosine would reach its minimum at step `steps`, so the
                        // last step (steps − 1) is one short of it, as in llm.c
  minLrFrac: number     // minimum = lr · minLrFrac
}

/** lr · (s+1)/warmup during warmup; then min + ½·(1 + cos(π·(s − warmup)/(steps − warmup)))·(lr − min). */
export function learningRate(sched: LrSchedule, step: number): number {
  const { lr, warmupSteps, steps, minLrFrac } = sched
  if (step < warmupSteps) return lr * (step + 1) / warmupSteps
  const minLr = lr * minLrFrac
  // steps == warmupSteps never reaches here inside a run; clamp so a caller past the end gets the minimum
  const ratio = Math.min(1, (step - warmupSteps) / Math.max(1, steps - warmupSteps))
  const coeff = 0.5 * (1 + Math.cos(Math.PI * ratio))
  return minLr + coeff * (lr - minLr)
}
