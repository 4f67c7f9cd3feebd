// trainRun and eval loss refused before their first step: the shards the loaders opened are closed (counted in
// /proc/self/fd: an --out that holds a run, a validation shard refused after the train loader opened its shard, a
// --resume whose saved position does not fit, a bad id in a later batch of eval loss), and a bad id in a later
// validation batch is refused before --overwrite deletes the run there, as the whole val shard's check was. A train
// shard deleted during a run is refused by name at the first checkpoint's fingerprints (an InputError: exit 2).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { command as evalLoss } from '../../src/cli/eval-loss.js'
import { writeShard } from '../../src/data/shards.js'
import { trainDefaults, type TrainConfig } from '../../src/train/config.js'
import { trainRun } from '../../src/train/run.js'
import { InputError } from '../../src/util/errors.js'
import { tempRoot } from '../faults/helpers.js'
import { needsProcFd, openUnder } from '../helpers/fds.js'
import { makeToyRun } from './helpers.js'

const root = tempRoot('run-close')
const toy = makeToyRun(root)
const base: TrainConfig = {
  ...trainDefaults, model: toy.modelJson, data: toy.data, batchSize: 2, seqLen: 8, totalBatchSize: 16, steps: 2, lr: 3e-3,
  warmupSteps: 1, valEvery: 0, checkpointEvery: 2, sampleEvery: 0, device: 'cpu', seed: 9,
}
const refusal = (re: RegExp) => (e: unknown): boolean => e instanceof InputError && re.test(e.message)

test('trainRun refused before its first step leaves no shard open', needsProcFd, async () => {
  const run = join(root, 'run'), left: Record<string, number> = {}
  const opened = async (what: string, refused: Promise<unknown>, re: RegExp): Promise<void> => {
    const before = openUnder(root).length
    await assert.rejects(refused, refusal(re))
    left[what] = openUnder(root).length - before
  }
  await trainRun({ ...base, out: run }, { resume: false, overwrite: false })
  assert.deepEqual(openUnder(root), [], 'a finished run')
  await opened('--out holds a run', trainRun({ ...base, out: run }, { resume: false, overwrite: false }), /already holds a run/)
  await opened('a saved position refused', trainRun({ ...base, out: run, shuffle: 'on' }, { resume: true, overwrite: false }),
    /this --resume changes --shuffle off → on/)
  const badVal = join(root, 'bad-val')
  mkdirSync(badVal)
  writeShard(join(badVal, 'toy_val_000000.bin'), Array.from({ length: 100 }, (_, i) => (i === 3 ? 200 : i % 96)))
  await opened('the val loader refused after the train loader', trainRun({ ...base, out: join(root, 'run2'), valData: badVal, valEvery: 1 },
    { resume: false, overwrite: false }), /has token id 200 at position 3, outside the vocabulary of 96/)
  assert.deepEqual(left, { '--out holds a run': 0, 'a saved position refused': 0, 'the val loader refused after the train loader': 0 })
})

test('eval loss failing at a bad id in a later batch leaves no shard open', needsProcFd, async () => {
  const dir = join(root, 'eval')
  mkdirSync(dir)
  const shard = join(dir, 'toy_val_000000.bin')
  writeShard(shard, Array.from({ length: 100 }, (_, i) => (i === 40 ? 200 : i % 96)))   // batch 3 of 2·8 tokens
  const stderr = process.stderr.write
  process.stderr.write = () => true   // its progress lines
  try {
    await assert.rejects(evalLoss.run(['--model', toy.modelJson, '--data', shard, '--batch-size', '2', '--seq-len', '8', '--steps', '4']),
      refusal(/has token id 200 at position 40, outside the vocabulary of 96/))
  } finally { process.stderr.write = stderr }
  assert.deepEqual(openUnder(dir), [])
})

test('a bad id in a later validation batch is refused before --overwrite deletes the run in --out', async () => {
  const run = join(root, 'kept'), val = join(root, 'late-bad-val')
  await trainRun({ ...base, out: run }, { resume: false, overwrite: false })
  mkdirSync(val)
  writeShard(join(val, 'toy_val_000000.bin'), Array.from({ length: 100 }, (_, i) => (i === 70 ? 200 : i % 96)))   // batch 5 of 2·8
  await assert.rejects(trainRun({ ...base, out: run, valData: val, valEvery: 1, valSteps: 6 }, { resume: false, overwrite: true }),
    refusal(/toy_val_000000\.bin has token id 200 at position 70, outside the vocabulary of 96/))
  assert.ok(existsSync(join(run, 'checkpoints', 'step_000002', 'state.json')), 'the run --overwrite would have replaced')
  const r = await trainRun({ ...base, out: join(root, 'valid'), valData: val, valEvery: 1, valSteps: 4 }, { resume: false, overwrite: false })
  assert.equal(r.result.step, 2, 'the batches before the bad id validate')
})

test('a train shard deleted during the run: the first checkpoint refuses it by name, as gone during the run', async () => {
  const data = join(root, 'deleted-data'), gone = join(data, 'toy_train_000001.bin')
  cpSync(toy.data, data, { recursive: true })
  const reporter = { step: (r: { step: number }): void => { if (r.step === 1) rmSync(gone) } }   // steps 1-2 read shard 0 only
  await assert.rejects(trainRun({ ...base, data, out: join(root, 'deleted') }, { resume: false, overwrite: false, reporter }),
    refusal(/^shards: no such file: .*toy_train_000001\.bin \(deleted or moved during the run\?\)$/))
})
