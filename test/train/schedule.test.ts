// The learning-rate schedule against llm.c's formula computed here independently, and against values worked
// out by hand for the report's settings (peak 1.2e-3, warmup 715, 19,073 steps, minimum 10%).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { learningRate } from '../../src/train/schedule.js'

const report = { lr: 1.2e-3, warmupSteps: 715, steps: 19_073, minLrFrac: 0.1 }

function close(got: number, want: number, what: string): void {
  assert.ok(Math.abs(got - want) <= 1e-15 + 1e-12 * Math.abs(want), `${what}: got ${got}, want ${want}`)
}

test('hand-computed values of the report\'s schedule', () => {
  close(learningRate(report, 0), 1.2e-3 / 715, 'first warmup step')
  close(learningRate(report, 356), 1.2e-3 * 357 / 715, 'mid warmup')
  close(learningRate(report, 714), 1.2e-3, 'last warmup step reaches the peak')
  close(learningRate(report, 715), 1.2e-3, 'cosine starts at the peak')
  // halfway through the decay: cos(π/2) = 0 -> min + (lr - min)/2 = 1.2e-4 + 5.4e-4
  close(learningRate(report, 715 + (19_073 - 715) / 2), 6.6e-4, 'cosine midpoint')
  // the last step s = steps-1 is one step short of the minimum
  const last = learningRate(report, 19_072)
  assert.ok(last > 1.2e-4 && last < 1.2e-4 + 1e-9, `last step ${last} is just above the minimum 1.2e-4`)
})

test('the formula of llm.c, written out independently, at chosen steps of other settings', () => {
  for (const s of [{ lr: 1e-2, warmupSteps: 3, steps: 10, minLrFrac: 0.1 }, { lr: 6e-4, warmupSteps: 0, steps: 50, minLrFrac: 0 },
    { lr: 3e-4, warmupSteps: 20, steps: 21, minLrFrac: 0.5 }]) {
    for (let step = 0; step < s.steps; step++) {
      const minLr = s.lr * s.minLrFrac
      const want = step < s.warmupSteps
        ? s.lr * (step + 1) / s.warmupSteps
        : minLr + 0.5 * (1 + Math.cos(Math.PI * (step - s.warmupSteps) / (s.steps - s.warmupSteps))) * (s.lr - minLr)
      close(learningRate(s, step), want, `${JSON.stringify(s)} step ${step}`)
    }
  }
})

test('warmup is monotone up, decay monotone down', () => {
  let prev = 0
  for (let s = 0; s < 715; s++) { const v = learningRate(report, s); assert.ok(v > prev); prev = v }
  for (let s = 716; s < 19_073; s += 97) { const v = learningRate(report, s); assert.ok(v < prev, `step ${s}`); prev = v }
})

// inside a run s < steps; the clamp documented in schedule.ts holds a caller past the end at the minimum instead of
// climbing back up the cosine
test('past the last step the rate stays at the minimum', () => {
  for (const step of [19_073, 19_074, 40_000]) close(learningRate(report, step), 1.2e-4, `report, step ${step}`)
  close(learningRate({ lr: 3e-4, warmupSteps: 20, steps: 21, minLrFrac: 0.5 }, 21), 1.5e-4, 'one decay step, step 21')
})
