// A resumed run does not keep the checkpoint it resumed from: once the model and optimizer hold their own copies,
// the read weights and moments are dropped. Before, trainRun's and the CLI's frames, suspended in the training loop,
// kept them all run long: 1.4 GiB at gpt2-124m (a resume of it peaked at 5.0 GB of RSS, a fresh run at 4.0).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { trainDefaults, type TrainConfig } from '../../src/train/config.js'
import { findResumePoint } from '../../src/train/resume.js'
import { trainRun } from '../../src/train/run.js'
import { makeToyRun } from './helpers.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-resume-mem-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

test('a resume drops the checkpoint\'s weights and moments once the model holds them, and trains on', async () => {
  const { modelJson, data } = makeToyRun(root)
  const c: TrainConfig = {
    ...trainDefaults, model: modelJson, data, out: join(root, 'run'), batchSize: 4, seqLen: 16, totalBatchSize: 64, steps: 2,
    warmupSteps: 1, valEvery: 0, checkpointEvery: 1, sampleEvery: 0, device: 'cpu', threads: 1,
  }
  await trainRun(c, { resume: false, overwrite: false })
  const point = findResumePoint(c.out)
  assert.ok(point.kind === 'checkpoint' && point.checkpoint.params.length > 0 && point.checkpoint.optimizer !== null)
  const { result } = await trainRun({ ...c, steps: 3 }, { resume: true, overwrite: false, resumeFrom: point })
  assert.equal(result.step, 3)
  assert.equal(point.checkpoint.params.length, 0)
  assert.equal(point.checkpoint.optimizer, null)
  assert.equal(point.checkpoint.progress.step, 2)   // what is still read of it stays
})
