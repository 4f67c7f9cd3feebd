// best/ across a resume from a checkpoint older than best/: a run stopped (a NaN, a kill) after a validation that
// set best/ between checkpoints trains those steps again, so best/ must go back to the best as of the resumed
// checkpoint — byte for byte the weights of that step, recorded with the step and val loss the log keeps.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { readCheckpoint } from '../../src/train/checkpoint.js'
import { resolveCheckpointDir } from '../../src/train/checkpoint-dirs.js'
import { trainDefaults, type TrainConfig } from '../../src/train/config.js'
import { DivergenceError } from '../../src/train/divergence.js'
import { readLog } from '../../src/train/log.js'
import { findResumePoint, repairBest } from '../../src/train/resume.js'
import { trainRun } from '../../src/train/run.js'
import { makeToyRun } from '../train/helpers.js'
import { tempRoot } from './helpers.js'

const root = tempRoot('best')
const toy = makeToyRun(root)
// validations at 3, 6, 9, 12, checkpoints at 4, 8, 12: step 3's best/ is weights only, the newest checkpoint's best
const base: TrainConfig = {
  ...trainDefaults, model: toy.modelJson, data: toy.data, batchSize: 4, seqLen: 16, totalBatchSize: 64, steps: 12, lr: 3e-3,
  warmupSteps: 1, valEvery: 3, valSteps: 1, checkpointEvery: 4, keepCheckpoints: 3, sampleEvery: 0, device: 'cpu',
}

/** Trains `c` with a NaN gradient at `nanStep` (the run stops there, exit 3 in the CLI, keeping its last checkpoint). */
async function stoppedAt(c: TrainConfig, nanStep: number, overwrite = false): Promise<void> {
  process.env['LLMTS_TEST_NAN_GRAD_STEPS'] = String(nanStep)
  try {
    await assert.rejects(trainRun(c, { resume: false, overwrite }), DivergenceError)
  } finally { delete process.env['LLMTS_TEST_NAN_GRAD_STEPS'] }
}

const lowestVal = (run: string): { step: number; val_loss: number } => {
  const vals = readLog(join(run, 'log.jsonl')).filter(l => l.step > 0 && 'val_loss' in l) as unknown as { step: number; val_loss: number }[]
  return vals.reduce((a, b) => (b.val_loss < a.val_loss ? b : a))
}

test('a resume from before best/\'s step puts back the best as of its checkpoint (weights, step and val loss of the log)', async () => {
  const at3 = join(root, 'at3'), run = join(root, 'run'), old = join(root, 'older-version')
  await stoppedAt({ ...base, out: at3 }, 4)    // the truth: step 3's weights, from a run that never got further
  await stoppedAt({ ...base, out: run }, 7)    // best/ is step 6's; the last checkpoint is step 4's
  const discarded = readCheckpoint(join(run, 'best'), { withOptimizer: false }).progress
  assert.equal(discarded.step, 6)
  assert.ok(discarded.valLoss! < lowestVal(at3).val_loss, 'step 6 validated better than step 3')
  cpSync(run, old, { recursive: true })
  cpSync(run, join(root, 'over'), { recursive: true })
  await stoppedAt({ ...base, out: join(root, 'over') }, 1, true)   // --overwrite, stopped before writing anything
  assert.ok(!existsSync(join(root, 'over', '.best-committed')), '--overwrite removes the old run\'s copy with its best/')
  const notes: string[] = []
  // a higher --lr: the retrained steps validate worse than step 3 (else best/ would be replaced by them anyway)
  const r = await trainRun({ ...base, out: run, lr: 0.1 }, { resume: true, overwrite: false, note: n => notes.push(n) })
  assert.equal(r.info.startStep, 4)
  const lowest = lowestVal(run), best = readCheckpoint(join(run, 'best'), { withOptimizer: false }).progress
  assert.equal(lowest.step, 3, 'no retrained step validated better than step 3')
  assert.deepEqual([best.step, best.valLoss, r.result.bestValLoss], [3, lowest.val_loss, lowest.val_loss])
  assert.ok(readFileSync(join(run, 'best', 'model.safetensors')).equals(readFileSync(join(at3, 'best', 'model.safetensors'))),
    'best/ holds step 3\'s weights')
  assert.ok(notes.includes(`train: note: --resume drops best/ of step 6 (val loss ${discarded.valLoss!.toFixed(4)}), after the resumed ` +
    `step 4; best/ is step 3's again (val loss ${lowest.val_loss.toFixed(4)})`), notes.join('\n'))
  assert.ok(!existsSync(join(run, '.best-committed')), 'the copy is gone once the run has checkpointed past it')

  // a run directory without the copy (written by an older llm.ts): step 6's weights go all the same, with a note
  rmSync(join(old, '.best-committed'), { recursive: true })
  notes.length = 0
  const point = findResumePoint(old)
  assert.equal(point.kind === 'checkpoint' && point.checkpoint.progress.step, 4)
  if (point.kind === 'checkpoint') repairBest(old, point, n => notes.push(n))
  assert.deepEqual(notes, [`train: note: --resume drops best/ of step 6 (val loss ${discarded.valLoss!.toFixed(4)}), after the resumed step 4; ` +
    `no copy of its best as of then (val loss ${lowest.val_loss.toFixed(4)}) is left, so it has no best/ until a validation beats that`])
  assert.ok(!existsSync(join(old, 'best')), 'no best/ from the discarded steps')
  assert.match(resolveCheckpointDir(old), /step_000004$/)
})
