// --keep-every N in real CPU runs of a tiny model: the step checkpoints at multiples of N outlive --keep-checkpoints'
// pruning (a stop's checkpoint and the last step's are minor ones unless their step is a multiple), a --resume keeps
// the run's N without being told it (state.json carries it) and prunes by a new one when told, and an N that is not
// a multiple of --checkpoint-every is refused, from --config JSON and at a resume that changes --checkpoint-every.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readCheckpoint } from '../../src/train/checkpoint.js'
import { trainDefaults, type TrainConfig } from '../../src/train/config.js'
import { readLog } from '../../src/train/log.js'
import { trainRun } from '../../src/train/run.js'
import { isOneLine, llmts, tempRoot, withoutTiming } from '../faults/helpers.js'
import { makeToyRun } from './helpers.js'

const root = tempRoot('keep-every')
const toy = makeToyRun(root)

// checkpoints every 2 steps, the newest 1 minor one kept, every 4th step kept for good
const base: TrainConfig = {
  ...trainDefaults, model: toy.modelJson, data: toy.data, batchSize: 4, seqLen: 16, totalBatchSize: 128, steps: 11,
  lr: 3e-3, warmupSteps: 3, valEvery: 4, valSteps: 2, checkpointEvery: 2, keepCheckpoints: 1, keepEvery: 4, sampleEvery: 0,
  device: 'cpu', seed: 5,
}
const steps = (run: string): string[] => readdirSync(join(run, 'checkpoints')).filter(n => n.startsWith('step_')).sort()
const full = join(root, 'full'), split = join(root, 'split')

test('a run keeps the checkpoints of every 4th step and the newest other one; a resume across a stop keeps the same', async () => {
  await trainRun({ ...base, out: full }, { resume: false, overwrite: false })
  // saves at 2, 4, 6, 8, 10 and 11 (the end, a minor one): 4 and 8 stay whatever follows them
  assert.deepEqual(steps(full), ['step_000004', 'step_000008', 'step_000011'])

  // stopped at the end of step 7: its checkpoint is a minor one, and step 6's goes for it
  const stop = { requested: false }
  const first = await trainRun({ ...base, out: split }, { resume: false, overwrite: false, stop,
    reporter: { step: r => { if (r.step === 7) stop.requested = true } } })
  assert.ok(first.result.interrupted)
  assert.deepEqual(steps(split), ['step_000004', 'step_000007'])
  // the CLI's --resume without --keep-every: the run's own (in step 7's state.json) goes on
  const r = llmts(['train', '--out', split, '--resume'])
  assert.equal(r.code, 0, r.stderr)
  assert.doesNotMatch(r.stderr, /--keep-every/)
  assert.deepEqual(steps(split), ['step_000004', 'step_000008', 'step_000011'])
  assert.deepEqual(withoutTiming(readLog(join(split, 'log.jsonl'))), withoutTiming(readLog(join(full, 'log.jsonl'))))
  for (const s of ['step_000004', 'step_000008']) {
    const kept = (run: string): Float32Array => readCheckpoint(join(run, 'checkpoints', s), { withOptimizer: false }).params
    assert.deepEqual(kept(split), kept(full), `${s} is that step's checkpoint in both runs`)
  }
})

test('a last step that is a multiple is kept; a --resume with --keep-every 0 prunes the old majors', () => {
  // step 12, the end of this resume, is a multiple of 4: step 14's prune deletes 11 (the newest minor then), not 12
  for (const [to, left] of [[12, ['step_000004', 'step_000008', 'step_000011', 'step_000012']],
    [14, ['step_000004', 'step_000008', 'step_000012', 'step_000014']]] as const) {
    const r = llmts(['train', '--out', split, '--resume', '--steps', String(to)])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(steps(split), left, `after the resume to ${to}`)
  }
  const r = llmts(['train', '--out', split, '--resume', '--steps', '15', '--keep-every', '0'])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, /^llmts train: note: --resume with --keep-every 0 \(the run had 4\), from step 14$/m)
  assert.deepEqual(steps(split), ['step_000015'])
})

test('--keep-every not a multiple of --checkpoint-every is refused: from --config JSON, and at a resume', () => {
  const config = join(root, 'keep.json')
  writeFileSync(config, JSON.stringify({ 'keep-every': 3, 'checkpoint-every': 2, 'batch-size': 4, 'seq-len': 16, 'total-batch-size': 64,
    steps: 6, 'warmup-steps': 1 }))
  const fresh = llmts(['train', '--config', config, '--model', toy.modelJson, '--data', toy.data, '--out', join(root, 'refused'),
    '--device', 'cpu'])
  assert.equal(fresh.code, 2, fresh.stderr)
  assert.ok(isOneLine(fresh.stderr), fresh.stderr)
  assert.equal(fresh.stderr.trim(), 'llmts train: --keep-every 3 is not a multiple of --checkpoint-every 2 (checkpoints are written ' +
    'every 2 steps, so only those at multiples of 6 would be kept; e.g. --keep-every 4)')
  // the run's --keep-every 4 against a new --checkpoint-every 3
  const resumed = llmts(['train', '--out', full, '--resume', '--steps', '13', '--checkpoint-every', '3'])
  assert.equal(resumed.code, 2, resumed.stderr)
  assert.match(resumed.stderr, /--keep-every 4 is not a multiple of --checkpoint-every 3 .*e\.g\. --keep-every 3\)$/m)
  assert.deepEqual(steps(full), ['step_000004', 'step_000008', 'step_000011'], 'nothing pruned')
})
