// The learning-rate schedule against llm.c's formula computed here independently, and against values worked
// out by hand for the report's settings (peak 1.2e-3, warmup 715, 19,073 steps, minimum 10%).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cooldownStart, learningRate } from '../../src/train/schedule.js'

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

// ---- the other schedules (--lr-schedule): llm.c's formulas written out here, and hand values ----------------------

test('linear: hand values, and min + (1 − t)·(lr − min) at every step of other settings', () => {
  const linear = { ...report, lrSchedule: 'linear' as const }
  close(learningRate(linear, 714), 1.2e-3, 'the warmup is the cosine\'s')
  close(learningRate(linear, 715), 1.2e-3, 'decay starts at the peak')
  close(learningRate(linear, 715 + (19_073 - 715) / 2), (1.2e-3 + 1.2e-4) / 2, 'midpoint: halfway between peak and floor')
  close(learningRate(linear, 715 + (19_073 - 715) / 4), 1.2e-4 + 0.75 * 1.08e-3, 'a quarter of the way')
  close(learningRate(linear, 40_000), 1.2e-4, 'past the end: the floor')
  for (const s of [{ lr: 1e-2, warmupSteps: 3, steps: 10, minLrFrac: 0.1 }, { lr: 6e-4, warmupSteps: 0, steps: 50, minLrFrac: 0 }]) {
    for (let step = s.warmupSteps; step < s.steps; step++) {
      const t = (step - s.warmupSteps) / (s.steps - s.warmupSteps), minLr = s.lr * s.minLrFrac
      close(learningRate({ ...s, lrSchedule: 'linear' }, step), s.lr - t * (s.lr - minLr), `${JSON.stringify(s)} step ${step}`)
    }
  }
})

test('constant: the peak after the warmup, whatever the floor', () => {
  const constant = { ...report, lrSchedule: 'constant' as const }
  close(learningRate(constant, 0), 1.2e-3 / 715, 'warmup')
  for (const step of [715, 10_000, 19_072, 30_000]) close(learningRate(constant, step), 1.2e-3, `step ${step}`)
})

test('wsd: the peak until the last cooldownFrac of the steps, then 1 − √t to the floor (llm.c\'s at the report\'s settings)', () => {
  const wsd = { ...report, lrSchedule: 'wsd' as const }
  // llm.c: decay_point = (int)(0.8 · 19073) = 15258; the 3,815 steps from there decay
  assert.equal(cooldownStart(wsd), 15_258)
  close(learningRate(wsd, 15_257), 1.2e-3, 'last stable step')
  close(learningRate(wsd, 15_258), 1.2e-3, 'the cooldown starts at the peak (t = 0)')
  for (const step of [15_259, 16_000, 17_165, 19_072]) {
    const t = (step - 15_258) / (19_073 - 15_258)
    close(learningRate(wsd, step), 1.2e-4 + (1 - Math.sqrt(t)) * 1.08e-3, `step ${step}`)
  }
  close(learningRate(wsd, 19_073), 1.2e-4, 'one past the last: the floor')
  // 20 steps, a warmup of 2, the last 4 steps cool down from step 16: step 17 is at t = 1/4, √t = 1/2
  const small = { lr: 1e-2, warmupSteps: 2, steps: 20, minLrFrac: 0, lrSchedule: 'wsd' as const, cooldownFrac: 0.2 }
  assert.deepEqual([0, 1, 2, 15, 16, 17, 19].map(s => learningRate(small, s)), [5e-3, 1e-2, 1e-2, 1e-2, 1e-2, 5e-3, 1e-2 * (1 - Math.sqrt(3 / 4))])
})

test('wsd\'s cooldown: ⌈f·steps⌉ steps (no float drift), never inside the warmup; f = 1 decays from the warmup\'s end, 0 never', () => {
  const at = (steps: number, warmupSteps: number, cooldownFrac: number): number =>
    cooldownStart({ lr: 1, warmupSteps, steps, minLrFrac: 0, lrSchedule: 'wsd', cooldownFrac })
  assert.equal(at(100, 0, 0.55), 45, '0.55 · 100 is 55.00000000000001 in float64: still 55 steps')
  assert.equal(at(10, 0, 0.25), 7, '2.5 steps round up to 3')
  assert.equal(at(10, 9, 0.5), 9, 'the cooldown waits for the warmup')
  assert.equal(at(10, 2, 1), 2)
  assert.equal(at(10, 2, 0), 10)
  const none = { lr: 1, warmupSteps: 2, steps: 10, minLrFrac: 0.1, lrSchedule: 'wsd' as const, cooldownFrac: 0 }
  for (let s = 2; s < 10; s++) close(learningRate(none, s), 1, `f = 0, step ${s}`)
  const all = { ...none, cooldownFrac: 1 }
  close(learningRate(all, 6), 0.1 + (1 - Math.sqrt(0.5)) * 0.9, 'f = 1: halfway from the warmup\'s end')
})
