// Divergence: a NaN in the gradient (LLMTS_TEST_NAN_GRAD_STEPS) or a real blow-up (an absurd --lr) is caught
// before it reaches the weights: --on-nan stop exits 3 keeping the last checkpoint, --on-nan skip skips the
// update and carries on. Loss spikes are scored by z-score (checked against hand-computed values), reported,
// skipped with --skip-spikes, and the detector's window survives a resume bit for bit.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeShard } from '../../src/data/shards.js'
import { listCheckpoints, readCheckpoint } from '../../src/train/checkpoint.js'
import { trainDefaults, type TrainConfig } from '../../src/train/config.js'
import { DivergenceError, OUTLIER_MIN_COUNT, OUTLIER_WINDOW, OutlierDetector, StepGuard } from '../../src/train/divergence.js'
import { metric, readLog, type LogRecord } from '../../src/train/log.js'
import { trainRun } from '../../src/train/run.js'
import type { StepVerdict } from '../../src/train/divergence.js'
import { Rng } from '../../src/util/rng.js'
import { makeToyRun, tinyModelJson } from '../train/helpers.js'
import { llmts, tempRoot, withoutTiming } from './helpers.js'

const root = tempRoot('diverge')
const toy = makeToyRun(root)
const settings = ['--model', toy.modelJson, '--data', toy.data, '--batch-size', '4', '--seq-len', '16', '--total-batch-size', '64',
  '--steps', '10', '--warmup-steps', '1', '--lr', '3e-3', '--val-every', '5', '--val-steps', '1', '--checkpoint-every', '2',
  '--sample-every', '0', '--device', 'cpu']
const losses = (log: LogRecord[]): LogRecord[] => log.filter(r => 'loss' in r)

test('--on-nan stop (the default): exit 3, one line, the last checkpoint kept and finite; --resume then completes', { timeout: 60_000 }, () => {
  const ref = join(root, 'ref'), out = join(root, 'nan-stop')
  assert.equal(llmts(['train', ...settings, '--out', ref]).code, 0)
  const r = llmts(['train', ...settings, '--out', out], { env: { LLMTS_TEST_NAN_GRAD_STEPS: '5' } })
  assert.equal(r.code, 3, r.stderr)
  const last = r.stderr.trim().split('\n').at(-1)!
  assert.match(last, /^llmts train: step 5: loss \d+\.\d{4}, gradient norm NaN is not finite; stopped before updating the weights; the last checkpoint, .*step_000004, is kept \(continue with llmts train --out .* --resume, perhaps with a lower --lr or --on-nan skip\)$/)
  assert.ok(!/\n\s+at /.test(r.stderr))
  assert.deepEqual(listCheckpoints(out).map(c => c.step), [2, 4])
  assert.ok(readCheckpoint(listCheckpoints(out)[1]!.path, { withOptimizer: true }).params.every(Number.isFinite))
  assert.equal(losses(readLog(join(out, 'log.jsonl'))).at(-1)!.step, 4, 'the failed step is not logged')
  const again = llmts(['train', '--out', out, '--resume'])
  assert.equal(again.code, 0, again.stderr)
  assert.deepEqual(withoutTiming(readLog(join(out, 'log.jsonl'))), withoutTiming(readLog(join(ref, 'log.jsonl'))))
})

test('--on-nan skip: the poisoned updates are skipped and logged, training goes on with finite weights', { timeout: 60_000 }, () => {
  const out = join(root, 'nan-skip')
  const r = llmts(['train', ...settings, '--on-nan', 'skip', '--out', out], { env: { LLMTS_TEST_NAN_GRAD_STEPS: '3,7' } })
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, /step 3 \| loss \d+\.\d{4}, grad norm NaN: not finite; update skipped/)
  const log = losses(readLog(join(out, 'log.jsonl')))
  assert.deepEqual(log.filter(l => l['skipped'] === 1).map(l => l.step), [3, 7])
  assert.ok(log.every(l => Number.isFinite(l['loss'])), 'a NaN never reached the weights (every later loss is finite)')
  assert.deepEqual(log.filter(l => l['grad_norm'] === null).map(l => l.step), [3, 7])
  const final = readCheckpoint(listCheckpoints(out).at(-1)!.path, { withOptimizer: true })
  assert.equal(final.optimizer!.step, 8, 'AdamW took 8 of 10 steps')
  assert.ok(final.params.every(Number.isFinite))
  assert.match(r.stdout, /^finished at step 10: loss [\d.]+, val loss [\d.]+ \(best [\d.]+\), 2 of 10 updates skipped, /)
})

test('--on-nan skip: a run ending in non-finite steps says so in its summary (the last loss, not an earlier finite one)', { timeout: 60_000 }, () => {
  // --lr 1e30: step 1's update blows the weights up, and every later step is skipped (6 steps: fewer than 8 in a row)
  const r = llmts(['train', ...settings, '--steps', '6', '--lr', '1e30', '--val-every', '3', '--on-nan', 'skip', '--json',
    '--out', join(root, 'boom-skip-6')])
  assert.equal(r.code, 0, r.stderr)
  const summary = JSON.parse(r.stdout) as Record<string, unknown>
  assert.deepEqual([summary['steps'], summary['loss'], summary['val_loss'], summary['skipped_updates']], [6, null, null, 5])
  const human = llmts(['train', ...settings, '--steps', '6', '--lr', '1e30', '--val-every', '3', '--on-nan', 'skip',
    '--out', join(root, 'boom-skip-6h')])
  assert.match(human.stdout, /^finished at step 6: loss NaN, val loss NaN \(best -\), 5 of 6 updates skipped, /)
})

test('a real blow-up (--lr 1e30) stops with exit 3; with --on-nan skip it gives up after 8 non-finite steps in a row', { timeout: 60_000 }, () => {
  const stop = llmts(['train', ...settings, '--lr', '1e30', '--out', join(root, 'boom')])
  assert.equal(stop.code, 3, stop.stderr)
  assert.match(stop.stderr.trim().split('\n').at(-1)!, /^llmts train: step \d+: (loss .* is not finite|parameter \d+ is .* after the update)/)
  const skip = llmts(['train', ...settings, '--steps', '30', '--lr', '1e30', '--on-nan', 'skip', '--checkpoint-every', '0',
    '--out', join(root, 'boom-skip')])
  assert.equal(skip.code, 3, skip.stderr)
  assert.match(skip.stderr, /8 non-finite steps in a row \(--on-nan skip gives up\)/)
})

test('z-scores: hand-computed values, the warm-up count, the window length, skipped values kept out', () => {
  const d = new OutlierDetector()
  for (let i = 1; i < OUTLIER_MIN_COUNT; i++) { d.push(i); assert.ok(Number.isNaN(d.score(100))) }
  for (let i = OUTLIER_MIN_COUNT; i <= 40; i++) d.push(i)
  // 1..40: mean 20.5, population variance (40² - 1) / 12 = 133.25
  assert.ok(Math.abs(d.score(100) - (100 - 20.5) / Math.sqrt(133.25)) < 1e-12)
  d.push(NaN)
  assert.equal(d.state().length, 40, 'non-finite values never enter the window')
  for (let i = 0; i < 200; i++) d.push(7)
  assert.equal(d.state().length, OUTLIER_WINDOW)
  assert.equal(d.score(9), 0, 'a constant window has std 0: z is 0')
  assert.deepEqual(new OutlierDetector(d.state()).state(), d.state())
})

test('StepGuard: a skipped spike stays out of the window, so the same spike is skipped again with the same z-scores', () => {
  const g = new StepGuard({ onNan: 'stop', skipSpikes: 5 })
  // 40 steady steps alternating 2.0 and 2.2 (loss) and 1.0 and 1.2 (grad norm): mean 2.1 / 1.1, std 0.1 each
  for (let s = 1; s <= 40; s++) assert.equal(g.check(s, s % 2 === 0 ? 2.0 : 2.2, s % 2 === 0 ? 1.0 : 1.2).skip, null)
  const first = g.check(41, 3.1, 1.1), second = g.check(42, 3.1, 1.1)
  assert.equal(first.skip, 'spike')
  assert.ok(Math.abs(first.lossZ - 10) < 1e-9 && Math.abs(first.gradZ) < 1e-9, `z (3.1 - 2.1) / 0.1 = 10: got ${first.lossZ}, ${first.gradZ}`)
  assert.equal(second.skip, 'spike', 'the first spike did not widen the yardstick')
  assert.equal(second.lossZ, first.lossZ)
  assert.equal(g.state().loss.length, 40)
  // a gradient-norm spike alone (the loss steady) is a spike too
  const grad = g.check(43, 2.1, 2.1)
  assert.equal(grad.skip, 'spike')
  assert.ok(Math.abs(grad.gradZ - 10) < 1e-9 && Math.abs(grad.lossZ) < 1e-9, `grad z (2.1 - 1.1) / 0.1 = 10: got ${grad.gradZ}, ${grad.lossZ}`)
})

test('StepGuard with --on-nan skip: a non-finite step is skipped; only 8 in a row give up, a finite step resets the count', () => {
  const g = new StepGuard({ onNan: 'skip', skipSpikes: 0 })
  for (let s = 1; s <= 40; s += 2) {   // 20 non-finite steps, never two in a row
    assert.equal(g.check(s, NaN, NaN).skip, 'nan')
    assert.equal(g.check(s + 1, 2, 1).skip, null)
  }
  for (let s = 41; s < 48; s++) assert.equal(g.check(s, 2, Infinity).skip, 'nan')
  assert.throws(() => g.check(48, NaN, 1), (e: unknown) => e instanceof DivergenceError && /8 non-finite steps in a row/.test(e.message))
})

/** Shards of a chain over tokens 0..63 (vocabulary 96), with the window of step `spikeStep` (accumulation 1,
 *  B·T = 64) replaced by tokens 64..95, which the model has learned never to expect: a loss spike. */
function spikyData(dir: string, spikeStep: number): string {
  mkdirSync(dir, { recursive: true })
  const rng = new Rng(3)
  const tokens = [rng.int(64)]
  for (let i = 1; i < 14000; i++) tokens.push(rng.uniform() < 0.9 ? (tokens[i - 1]! * 5 + 1) % 64 : rng.int(64))
  for (let i = (spikeStep - 1) * 64; i <= spikeStep * 64; i++) tokens[i] = 64 + rng.int(32)
  writeShard(join(dir, 'spiky_train_000001.bin'), tokens)
  return dir
}

test('a loss spike is reported (z in the log), skipped with --skip-spikes, and scored the same after a resume', { timeout: 60_000 }, async () => {
  const modelJson = join(root, 'spiky-model.json')
  writeFileSync(modelJson, JSON.stringify({ ...tinyModelJson, layers: 1 }))
  const c: TrainConfig = {
    ...trainDefaults, model: modelJson, data: spikyData(join(root, 'spiky'), 190), batchSize: 4, seqLen: 16, totalBatchSize: 64,
    steps: 200, warmupSteps: 2, lr: 1e-2, valEvery: 0, checkpointEvery: 0, sampleEvery: 0, device: 'cpu',
  }
  const anomalies: { step: number; verdict: StepVerdict }[] = []
  await trainRun({ ...c, out: join(root, 'spike-report') }, { resume: false, overwrite: false, reporter: { anomaly: r => anomalies.push(r) } })
  const report = losses(readLog(join(root, 'spike-report', 'log.jsonl')))
  const at190 = report.find(l => l.step === 190)!
  assert.ok(metric(at190, 'loss_z')! > 5, `the spike's loss z-score: ${at190['loss_z']} (loss ${at190['loss']} after ${report[188]!['loss']})`)
  assert.equal(at190['skipped'], undefined, 'reported, not skipped')
  assert.ok(anomalies.some(a => a.step === 190 && a.verdict.spike && a.verdict.skip === null))
  assert.ok(report.filter(l => l['loss_z'] !== undefined).length <= 3, 'spikes are rare in a smooth run')

  await trainRun({ ...c, skipSpikes: 5, out: join(root, 'spike-skip') }, { resume: false, overwrite: false })
  const skipped = losses(readLog(join(root, 'spike-skip', 'log.jsonl')))
  assert.equal(skipped.find(l => l.step === 190)!['skipped'], 1)
  assert.deepEqual(withoutTiming(skipped.slice(0, 189)), withoutTiming(report.slice(0, 189)), 'identical before the spike')
  assert.notDeepEqual(skipped[190]!['loss'], report[190]!['loss'], 'the skipped update changed what followed')

  // stop at 150 (the detector's window goes into the checkpoint), resume: the spike at 190 is scored as before
  const stop = { requested: false }
  await trainRun({ ...c, out: join(root, 'spike-resume') },
    { resume: false, overwrite: false, stop, reporter: { step: r => { if (r.step === 150) stop.requested = true } } })
  await trainRun({ ...c, out: join(root, 'spike-resume') }, { resume: true, overwrite: false })
  assert.deepEqual(withoutTiming(readLog(join(root, 'spike-resume', 'log.jsonl'))), withoutTiming(readLog(join(root, 'spike-report', 'log.jsonl'))))
})
