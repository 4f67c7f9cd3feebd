// The default run's settings (the full run takes minutes and is `npm start`): its configs pass validation for
// both presets with the same tokens, the step count fits the time budget, and the verdict says which way it went.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { presetConfig } from '../../src/config.js'
import { verdict } from '../../src/cli/default-run.js'
import { countSpikes } from '../../src/plot/summary.js'
import { gradAccumSteps, validateTrainConfig } from '../../src/train/config.js'
import { defaultRun, defaultRunConfig, stepsForBudget, warmupFor, type ModelOutcome } from '../../src/train/default-run.js'

test('both models get valid configs with the same tokens and schedule', () => {
  const [a, b] = defaultRun.models.map(m => defaultRunConfig(m, 'data', 40, 'runs/x', { device: 'cpu' }))
  for (const c of [a!, b!]) validateTrainConfig(c, presetConfig(c.model))
  assert.equal(gradAccumSteps(a!), defaultRun.gradAccum)
  const { model: _m, out: _o, ...restA } = a!, { model: _n, out: _p, ...restB } = b!
  assert.deepEqual(restA, restB)
  assert.equal(a!.warmupSteps, 20)
  // warmup: 10% of the steps, at least 1/(1-0.95) = 20 (AdamW's second moment settles), at most half the run
  assert.deepEqual([10, 30, 40, 81, 200, 300].map(warmupFor), [5, 15, 20, 20, 20, 30])
  assert.equal(a!.valEvery, Math.ceil(40 / defaultRun.valTimes))
  // validations (step 0, every valEvery, the last step) stay within stepsForBudget's valTimes + 1, whatever the steps
  for (const steps of [10, 37, 50, 61, 200]) {
    const c = defaultRunConfig('tiny-gpt2', 'data', steps, 'runs/x', { device: 'cpu' })
    const at = new Set([0, steps])
    for (let s = c.valEvery; s < steps; s += c.valEvery) at.add(s)
    assert.ok(at.size <= defaultRun.valTimes + 1, `${steps} steps: ${at.size} validations (valEvery ${c.valEvery})`)
  }
})

test('steps fit the budget: steps·(step time)·margin + validations <= budget, clamped', () => {
  const cal = [{ model: 'tiny-gpt2', forwardMs: 1000, stepMs: 6000 }, { model: 'tiny-variant', forwardMs: 1000, stepMs: 6000 }]
  // per step: 2 models · 6 s = 12 s (times the margin); validations: 2 models · (valTimes+1) · valSteps · 1 s
  const val = 2 * (defaultRun.valTimes + 1) * defaultRun.valSteps
  assert.equal(stepsForBudget(cal, 400), Math.floor((400 - val) / (12 * defaultRun.overhead)))
  assert.equal(stepsForBudget(cal, 10), defaultRun.minSteps)
  assert.equal(stepsForBudget(cal.map(c => ({ ...c, forwardMs: 1, stepMs: 3 })), 400), defaultRun.maxSteps)
})

test('the verdict names the direction honestly', () => {
  const o = (v: number): ModelOutcome => ({ finalValLoss: v } as ModelOutcome)
  assert.match(verdict(o(7.5), o(7.2), 1000), /variant converged faster .* 7\.200 vs 7\.500/)
  assert.match(verdict(o(7.2), o(7.5), 1000), /did NOT converge faster .* 7\.500 vs 7\.200/)
  assert.match(verdict(o(7.2), o(7.5), 41_472), /; 41,472 tokens mostly measure how fast/)
  assert.doesNotMatch(verdict(o(7.5), o(7.2), 1000), /^verdict/, 'the label is the printout\'s, not the JSON value\'s')
  assert.match(verdict(o(7.2), o(7.205), 1000), /no clear difference/)
  assert.match(verdict(o(7.205), o(7.2), 1000), /no clear difference/)
  for (const [a, b] of [[NaN, 7.2], [7.2, NaN], [Infinity, 7.2]]) assert.match(verdict(o(a!), o(b!), 1000), /no validation loss to compare/)
})

test('loss spikes: a step more than 2 nats above the previous one', () => {
  assert.equal(countSpikes([10, 9, 8, 16.5, 7.7, 7.5, 9.6, 7].map(loss => ({ loss }))), 2)
  assert.equal(countSpikes([10, 9, 8, 9.9].map(loss => ({ loss }))), 0)
})
