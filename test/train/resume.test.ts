// Exact resume: a run stopped at step k (with a checkpoint) and resumed to step n logs exactly what an
// uninterrupted n-step run logs (timing fields aside), and draws the same periodic samples; also the best
// checkpoint (lowest validation loss), keep-last-K during training, and refusing to reuse a run directory.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs, { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readCheckpoint } from '../../src/train/checkpoint.js'
import { trainDefaults, type TrainConfig } from '../../src/train/config.js'
import { readLog, type LogRecord } from '../../src/train/log.js'
import { trainRun } from '../../src/train/run.js'
import type { Reporter } from '../../src/train/trainer.js'
import { InputError } from '../../src/util/errors.js'
import { withoutTiming } from '../faults/helpers.js'
import { makeToyRun } from './helpers.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-resume-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const toy = makeToyRun(root)

// 12 steps of 2 micro-batches of 4×16 tokens: 1536 tokens, crossing from the first train shard to the second
const base: TrainConfig = {
  ...trainDefaults, model: toy.modelJson, data: toy.data, batchSize: 4, seqLen: 16, totalBatchSize: 128, steps: 12,
  lr: 3e-3, warmupSteps: 3, valEvery: 4, valSteps: 2, checkpointEvery: 5, keepCheckpoints: 2, sampleEvery: 3,
  sampleTokens: 8, device: 'cpu', seed: 5,
}

/** Records the periodic samples; with `stopAt`, its `stop` is requested as a signal would be: during step 7
 *  ('step': seen at that step's end) or during the second micro-batch of step 8 ('micro-batch'), counting the
 *  trainer's polls of stop.requested after step 7 is reported. */
function recorder(stopAt?: { step: number; during: 'step' | 'micro-batch' }):
  { reporter: Reporter; samples: string[]; stop: { requested: boolean } } {
  const samples: string[] = []
  let reported = 0, polls = 0
  const stop = {
    get requested(): boolean {
      if (stopAt !== undefined && reported === stopAt.step) polls++
      return polls >= (stopAt?.during === 'step' ? 1 : 2)   // poll 1: step 7's end; poll 2: inside step 8
    },
  }
  return {
    samples, stop,
    reporter: {
      step: r => { reported = r.step },
      sample: r => samples.push(`${r.step}:${[...r.tokens].join(',')}`),
    },
  }
}

/** Runs base (with `shuffle`) for 12 steps in one go and as 7 + resume to 12, stopped during step 7 or during
 *  step 8 (which is then dropped); returns the uninterrupted run's log. */
async function stopAndResume(shuffle: TrainConfig['shuffle'], during: 'step' | 'micro-batch'): Promise<LogRecord[]> {
  const c = { ...base, shuffle }, full = recorder()
  const a = await trainRun({ ...c, out: join(root, `full-${shuffle}`) }, { resume: false, overwrite: false, reporter: full.reporter })
  assert.equal(a.result.step, 12)

  const split = join(root, `split-${shuffle}`)
  const first = recorder({ step: 7, during })
  const b1 = await trainRun({ ...c, out: split }, { resume: false, overwrite: false, reporter: first.reporter, stop: first.stop })
  assert.equal(b1.result.step, 7)
  assert.ok(b1.result.interrupted)
  assert.deepEqual(readLog(join(split, 'log.jsonl')).map(r => r.step).at(-1), 7, 'no line of a dropped step 8')
  // checkpoints at 5 (regular) and 7 (the stop); keep 2
  assert.deepEqual(readdirSync(join(split, 'checkpoints')).sort(), ['step_000005', 'step_000007'])
  const second = recorder()
  const b2 = await trainRun({ ...c, out: split }, { resume: true, overwrite: false, reporter: second.reporter })
  assert.equal(b2.info.startStep, 7)
  assert.equal(b2.result.step, 12)

  const logA = readLog(join(root, `full-${shuffle}`, 'log.jsonl')), logB = readLog(join(split, 'log.jsonl'))
  assert.equal(logA.filter(r => 'loss' in r).length, 12)
  assert.deepEqual(withoutTiming(logB), withoutTiming(logA))
  assert.deepEqual([...first.samples, ...second.samples], full.samples, 'the sampling RNG is restored too')
  const losses = logA.filter(r => 'loss' in r).map(r => r['loss']!)
  assert.ok(losses.at(-1)! < losses[0]!, `the loss falls: ${losses[0]} -> ${losses.at(-1)}`)
  return logA
}

let unshuffled: LogRecord[] = []
test('stop at step 7, resume to 12: the log equals the uninterrupted run bit for bit', async () => {
  unshuffled = await stopAndResume('off', 'step')
})

test('--shuffle on, stopped inside step 8 (dropped): other batches than in order, and the resume is still exact', async () => {
  const shuffled = await stopAndResume('on', 'micro-batch')
  const loss = (log: LogRecord[]): number[] => log.filter(r => 'loss' in r).map(r => Number(r['loss']))
  assert.ok(unshuffled.length > 0, 'the unshuffled run ran first')
  assert.notDeepEqual(loss(shuffled), loss(unshuffled))
})

/** How often `fn` reads a file named log.jsonl (readFileSync swapped in node:fs, ESM named imports included). */
async function logReads(fn: () => Promise<unknown>): Promise<number> {
  const real = fs.readFileSync
  let reads = 0
  fs.readFileSync = ((path: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
    if (String(path).endsWith('log.jsonl')) reads++
    return (real as (...a: unknown[]) => unknown)(path, ...rest)
  }) as typeof fs.readFileSync
  syncBuiltinESMExports()
  try { await fn() } finally {
    fs.readFileSync = real
    syncBuiltinESMExports()
  }
  return reads
}

test('a resumed run after a crash past the checkpoint drops the log lines beyond it, reading log.jsonl once', async () => {
  // the uninterrupted run of the previous test wrote checkpoints 10 and 12 (keep 2); resuming it from 12 is a
  // no-op, so resume a copy that lost its newest checkpoint: lines 11..12 must be replaced, not duplicated
  const dir = join(root, 'full-off')
  rmSync(join(dir, 'checkpoints', 'step_000012'), { recursive: true })
  const before = withoutTiming(readLog(join(dir, 'log.jsonl')))
  // once: the missing-line check and the rewrite share one parse of a log that may hold 100,000 steps
  assert.equal(await logReads(() => trainRun({ ...base, out: dir }, { resume: true, overwrite: false })), 1)
  assert.deepEqual(withoutTiming(readLog(join(dir, 'log.jsonl'))), before)
})

test('RUN_DIR/best holds the lowest validation loss; reusing a run directory needs --resume or --overwrite', async () => {
  const dir = join(root, 'full-off')
  const vals = readLog(join(dir, 'log.jsonl')).filter(r => 'val_loss' in r && r.step > 0)
  const best = readCheckpoint(join(dir, 'best'), { withOptimizer: false })
  const lowest = vals.reduce((m, r) => r['val_loss']! < m['val_loss']! ? r : m)
  assert.equal(best.progress.step, lowest.step)
  assert.equal(best.progress.valLoss, lowest['val_loss'])
  await assert.rejects(trainRun({ ...base, out: dir }, { resume: false, overwrite: false }),
    (e: Error) => e instanceof InputError && /already holds a run .*--resume.*--overwrite/.test(e.message))
  await assert.rejects(trainRun({ ...base, model: 'tiny-gpt2', out: dir }, { resume: true, overwrite: false }),
    (e: Error) => e instanceof InputError && /--resume continues .* with its own model/.test(e.message))
  await assert.rejects(trainRun({ ...base, out: join(root, 'empty') }, { resume: true, overwrite: false }),
    (e: Error) => e instanceof InputError && /empty does not exist \(start without --resume/.test(e.message))
})

test('--init-from a run directory starts from its best weights (same validation loss before step 1)', async () => {
  const from = join(root, 'full-off')
  const best = readCheckpoint(join(from, 'best'), { withOptimizer: false })
  const r = await trainRun({ ...base, initFrom: from, steps: 1, warmupSteps: 1, out: join(root, 'init') }, { resume: false, overwrite: false })
  assert.match(r.info.modelSource, /checkpoint .*best/)
  const first = readLog(join(root, 'init', 'log.jsonl'))[0]!
  assert.deepEqual(first, { step: 0, val_loss: best.progress.valLoss })
})

test('--init-from: the given weights are a candidate for best/; a run that only makes them worse keeps them there', async () => {
  const from = join(root, 'full-off')
  const start = readCheckpoint(join(from, 'best'), { withOptimizer: false })
  // lr 1: every update makes the validation loss worse than the starting weights'
  const worse = { ...base, initFrom: from, steps: 3, warmupSteps: 1, lr: 1, valEvery: 1, checkpointEvery: 0, sampleEvery: 0 }
  const out = join(root, 'init-worse')
  const r = await trainRun({ ...worse, out }, { resume: false, overwrite: false })
  const vals = readLog(join(out, 'log.jsonl')).filter(l => 'val_loss' in l)
  assert.equal(vals[0]!.step, 0)
  assert.ok(vals.slice(1).every(l => l['val_loss']! > vals[0]!['val_loss']!), `every later validation is worse: ${JSON.stringify(vals)}`)
  assert.equal(r.result.bestValLoss, vals[0]!['val_loss'])
  const best = readCheckpoint(join(out, 'best'), { withOptimizer: false })
  assert.equal(best.progress.step, 0)
  assert.deepEqual(best.params, start.params, 'best/ holds the weights the run started from')
  // from scratch, step 0's random weights are no candidate: best/ is a later step even when step 0 was lower
  const scratch = join(root, 'scratch-worse')
  const s = await trainRun({ ...worse, initFrom: '', out: scratch }, { resume: false, overwrite: false })
  assert.notEqual(readCheckpoint(join(scratch, 'best'), { withOptimizer: false }).progress.step, 0)
  assert.ok(s.result.bestValLoss !== null)
})
