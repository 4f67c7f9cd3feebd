// Checkpoints saved in the background (CheckpointSaver): the files are byte-identical to a synchronous
// writeCheckpoint's; a failed save's error reaches the main thread as the synchronous save's (class, message, code),
// from poll() without blocking and from wait(), once; a run reports a checkpoint only once it is complete on disk,
// and a save that fails stops the run with that error (by the next save at latest).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkpointName, listCheckpoints, readCheckpoint, writeCheckpoint } from '../../src/train/checkpoint.js'
import { CheckpointSaver, performSave, type SaveJob } from '../../src/train/checkpoint-writer.js'
import { trainDefaults, type TrainConfig } from '../../src/train/config.js'
import { AdamW } from '../../src/train/optimizer.js'
import { trainRun } from '../../src/train/run.js'
import { makeToyRun, randomCheckpoint } from './helpers.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-ckwriter-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

const job = (runDir: string, step: number, over: Partial<SaveJob> = {}): SaveJob =>
  ({ runDir, ck: randomCheckpoint(step), regular: true, isBest: false, keep: { last: 0, every: 0 }, ...over })

test('a background save writes the bytes a synchronous writeCheckpoint writes; done only once complete', () => {
  const sync = join(root, 'sync'), bg = join(root, 'bg')
  writeCheckpoint(sync, randomCheckpoint(3))
  const saver = new CheckpointSaver(line => assert.fail(`unexpected warning ${line}`))
  const j = job(bg, 3, { isBest: true })
  const dir = join(bg, 'checkpoints', checkpointName(3))
  let done = false
  saver.start(j, () => { done = true; assert.ok(existsSync(join(dir, 'state.json')) && existsSync(join(bg, 'best', 'state.json'))) })
  assert.equal(j.ck.params.length, 0, 'the snapshot went to the worker (its buffer transferred)')
  saver.close()
  assert.ok(done, 'onDone ran by the end of close()')
  for (const d of [dir, join(bg, 'best')]) {
    assert.deepEqual(readdirSync(d).sort(), ['model.safetensors', 'optimizer.safetensors', 'state.json'])
    for (const f of readdirSync(d)) assert.ok(readFileSync(join(d, f)).equals(readFileSync(join(sync, f))), `${d}/${f} differs`)
  }
  assert.deepEqual(readdirSync(join(bg, 'checkpoints')), [checkpointName(3)], 'no temp directory left')
})

/** A run directory whose checkpoints/ is a file: every save fails (makeDirs), synchronously or not. */
function blockedRun(name: string): string {
  const dir = join(root, name)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'checkpoints'), 'not a folder')
  return dir
}

function syncError(runDir: string): Error {
  try { performSave(job(runDir, 2), () => {}) } catch (e) { return e as Error }
  assert.fail('the synchronous save did not fail')
}

test('a failed save: the synchronous error (class, message, code) from poll(), without blocking, and only once', () => {
  const runDir = blockedRun('blocked-poll')
  const want = syncError(runDir)
  const saver = new CheckpointSaver(() => {})
  let done = false
  saver.start(job(runDir, 2), () => { done = true })
  let got: unknown = null
  const sleep = new Int32Array(new SharedArrayBuffer(4))
  for (let i = 0; i < 1000 && got === null; i++) {   // up to 10 s for the worker to start and fail
    try { saver.poll() } catch (e) { got = e }
    if (got === null) Atomics.wait(sleep, 0, 0, 10)
  }
  assert.ok(got instanceof Error, 'poll() threw the error')
  assert.equal(got.constructor, want.constructor)
  assert.equal(got.message, want.message)
  assert.equal((got as NodeJS.ErrnoException).code, (want as NodeJS.ErrnoException).code)
  assert.ok(!done, 'a failed save is not reported as done')
  saver.close()   // does not throw it again
})

test('a failed save: wait() throws the synchronous error; the next save goes on', () => {
  const runDir = blockedRun('blocked-wait')
  const want = syncError(runDir)
  const saver = new CheckpointSaver(() => {})
  saver.start(job(runDir, 2), () => {})
  assert.throws(() => saver.wait(), (e: Error) => e.constructor === want.constructor && e.message === want.message)
  rmSync(join(runDir, 'checkpoints'))
  let done = false
  saver.start(job(runDir, 4), () => { done = true })
  saver.close()
  assert.ok(done)
  assert.deepEqual(listCheckpoints(runDir).map(c => c.step), [4])
})

const toy = makeToyRun(join(root, 'toy'))
const T = 16
const run: TrainConfig = {
  ...trainDefaults, model: toy.modelJson, data: toy.data, batchSize: 4, seqLen: T, totalBatchSize: 4 * T, steps: 6, warmupSteps: 1,
  lr: 3e-3, valEvery: 0, checkpointEvery: 2, keepCheckpoints: 0, sampleEvery: 0, device: 'cpu', threads: 1,
}

test('a run reports each checkpoint once it is complete on disk, after its step', async () => {
  const out = join(root, 'run-ok'), events: string[] = []
  await trainRun({ ...run, out }, { resume: false, overwrite: false, reporter: {
    step: r => events.push(`step ${r.step}`),
    checkpoint: r => {
      events.push(`checkpoint ${r.step}`)
      assert.equal(readCheckpoint(r.path, { withOptimizer: true }).progress.step, r.step, 'complete and verified when reported')
    },
  } })
  for (const s of [2, 4, 6]) assert.ok(events.indexOf(`checkpoint ${s}`) > events.indexOf(`step ${s}`), events.join(', '))
  assert.equal(events.at(-1), 'checkpoint 6', 'the last one is complete before the run returns')
})

test('a save that fails in the background stops the run with its error, by the next save at latest', async () => {
  const out = join(root, 'run-fail'), events: string[] = []
  const failure = trainRun({ ...run, out }, { resume: false, overwrite: false, reporter: {
    step: r => events.push(`step ${r.step}`),
    checkpoint: r => {
      events.push(`checkpoint ${r.step}`)
      if (r.step === 2) {   // complete: moved aside, and step 4's save will fail
        renameSync(join(out, 'checkpoints'), join(out, 'kept'))
        writeFileSync(join(out, 'checkpoints'), 'not a folder')
      }
    },
  } })
  await assert.rejects(failure, (e: Error) => e.message === `EEXIST: file already exists, mkdir '${join(out, 'checkpoints')}'`)
  assert.ok(events.includes('checkpoint 2') && !events.includes('checkpoint 4') && !events.includes('checkpoint 6'), events.join(', '))
  readCheckpoint(join(out, 'kept', checkpointName(2)), { withOptimizer: true })
})

test('a throw on the save thread outside a save (a bug there) wakes the waiting main thread with an error, not a hang', () => {
  process.env['LLMTS_TEST_SAVER_FAULT'] = '1'   // read by the worker, which copies the environment when it starts
  const saver = new CheckpointSaver(line => assert.fail(`unexpected warning ${line}`))
  try {
    saver.ensureWorker()
  } finally {
    delete process.env['LLMTS_TEST_SAVER_FAULT']
  }
  const out = join(root, 'thread-fault')
  let done = false
  saver.start(job(out, 2), () => { done = true })
  assert.throws(() => saver.wait(), (e: Error) => e.message ===
    'train: checkpoint of step 2 not written: checkpoint worker failed: test hook: the save thread fails (LLMTS_TEST_SAVER_FAULT)')
  assert.ok(!done && !existsSync(join(out, 'checkpoints')), 'nothing reported or written')
  saver.close()
})

test('an answer numbered for another save is no answer to the pending one: a note, and its own is awaited', () => {
  process.env['LLMTS_TEST_SAVER_FAULT'] = 'stale'   // each save answered first with an error numbered as the save before
  const notes: string[] = []
  const saver = new CheckpointSaver(line => notes.push(line))
  try {
    saver.ensureWorker()
  } finally {
    delete process.env['LLMTS_TEST_SAVER_FAULT']
  }
  const out = join(root, 'stale-answer'), done: number[] = []
  for (const step of [2, 4]) {
    saver.start(job(out, step), () => done.push(step))
    saver.wait()   // the stale answer comes 300 ms before the save's own: taken for it, this throws the stale error
    assert.deepEqual(done.at(-1), step, `save of step ${step} reported done`)
    assert.ok(existsSync(join(out, 'checkpoints', checkpointName(step), 'state.json')), `step ${step} on disk when reported`)
  }
  saver.close()
  const stale = (was: number, is: number, step: number): string => `train: note: ignored an answer of the checkpoint thread ` +
    `to save #${was} while save #${is} (step ${step}) was pending (error: test hook: a stale answer (LLMTS_TEST_SAVER_FAULT=stale))`
  assert.deepEqual(notes, [stale(0, 1, 2), stale(1, 2, 4)])
  assert.deepEqual(listCheckpoints(out).map(c => c.step), [2, 4])
})

test('a best/-only save (a validation step that is no checkpoint step) takes no copy of the moments; step checkpoints do', async () => {
  const out = join(root, 'best-only'), steps: number[] = []
  const getState = AdamW.prototype.getState
  AdamW.prototype.getState = function (this: AdamW) { steps.push(this.step); return getState.call(this) }
  try {
    // validation at every step: the toy run's loss falls, so most steps are a new best; checkpoints at 3 and 6
    await trainRun({ ...run, out, valEvery: 1, valSteps: 1, checkpointEvery: 3 }, { resume: false, overwrite: false })
  } finally {
    AdamW.prototype.getState = getState
  }
  assert.deepEqual(steps, [3, 6], 'the moments were downloaded for the step checkpoints only')
  assert.equal(readCheckpoint(join(out, 'best'), { withOptimizer: false }).optimizer, null)
})
