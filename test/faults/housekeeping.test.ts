// Housekeeping in a run directory that fails: deleting an old checkpoint (--keep-checkpoints, --keep-every) or a
// leftover comes after what the run needs is durable, so a folder that cannot be deleted (read-only, another user's
// files) is a one-line warning naming what is left, and the run goes on, then and at every later resume. The same holds
// for a replaced best/ and for .best-committed/ (the best as of the newest checkpoint, kept while best/ is ahead of it).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { chmodSync, existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { readCheckpoint } from '../../src/train/checkpoint.js'
import { trainDefaults, type TrainConfig } from '../../src/train/config.js'
import { readLog } from '../../src/train/log.js'
import { DivergenceError } from '../../src/train/divergence.js'
import { trainRun } from '../../src/train/run.js'
import { makeToyRun } from '../train/helpers.js'
import { asNobody, main, tempRoot } from './helpers.js'

const root = tempRoot('housekeeping')
const toy = makeToyRun(root)
const base: TrainConfig = {
  ...trainDefaults, model: toy.modelJson, data: toy.data, batchSize: 4, seqLen: 16, totalBatchSize: 64, steps: 2, lr: 3e-3,
  warmupSteps: 1, valEvery: 2, valSteps: 1, checkpointEvery: 2, keepCheckpoints: 1, sampleEvery: 0, device: 'cpu',
}
const ck = (run: string, step: number): string => join(run, 'checkpoints', `step_${String(step).padStart(6, '0')}`)

test('an old checkpoint that cannot be deleted is a warning: the run goes on, best/ follows, later resumes work', async t => {
  const user = asNobody(root)
  if (typeof user === 'string') { t.skip(user); return }
  const run = join(root, 'run')
  await trainRun({ ...base, out: run }, { resume: false, overwrite: false })
  user.give(run)
  chmodSync(ck(run, 2), 0o555)   // its files cannot be unlinked (a user protecting a checkpoint, another user's copy)
  const resume = (steps: number): SpawnSyncReturns<string> => spawnSync(process.execPath, [main, 'train', '--out', run, '--resume',
    '--steps', String(steps)], { encoding: 'utf8', env: { ...process.env, LLMTS_DEBUG: '' }, ...user.spawn })
  try {
    const r = resume(4)
    assert.equal(r.status, 0, r.stderr)
    const left = readdirSync(join(run, 'checkpoints')).find(n => n.startsWith('.step_000002.del-'))
    assert.ok(left !== undefined, 'renamed away, then its deletion failed')
    const warning = `llmts train: warning: could not delete the old checkpoint ${ck(run, 2)} (--keep-checkpoints 1): permission denied ` +
      `(EACCES) at ${join(run, 'checkpoints', left)}/`
    assert.ok(r.stderr.split('\n').some(l => l.startsWith(warning) && l.endsWith(`; ${join(run, 'checkpoints', left)} is left ` +
      '(delete it by hand), the run goes on')), r.stderr)
    assert.deepEqual(readdirSync(join(run, 'checkpoints')).filter(n => n.startsWith('step_')), ['step_000004'])
    // the step after the prune: step 4 validated best, so best/ is its checkpoint (it stayed step 2's before the fix)
    const vals = readLog(join(run, 'log.jsonl')).filter(l => l.step > 0 && 'val_loss' in l) as unknown as { step: number; val_loss: number }[]
    assert.deepEqual(vals.map(l => l.step), [2, 4])
    assert.ok(vals[1]!.val_loss < vals[0]!.val_loss, 'step 4 is the best')
    assert.equal(readCheckpoint(join(run, 'best'), { withOptimizer: false }).progress.step, 4)

    const again = resume(6)   // the leftover is met again at startup: a warning, not a refusal
    assert.equal(again.status, 0, again.stderr)
    assert.match(again.stderr, new RegExp(`warning: could not delete a leftover of an interrupted write or deletion: permission denied ` +
      `\\(EACCES\\) at ${join(run, 'checkpoints', left)}/.*; ${join(run, 'checkpoints', left)} is left`))
    assert.equal(again.stderr.split('\n').filter(l => l.includes(left)).length, 1, 'once, not at every checkpoint')
    assert.deepEqual(readdirSync(join(run, 'checkpoints')).filter(n => n.startsWith('step_')), ['step_000006'])
  } finally {   // the temp root's removal at exit must get into it
    const left = readdirSync(join(run, 'checkpoints')).find(n => n.startsWith('.step_000002'))
    if (left !== undefined) chmodSync(join(run, 'checkpoints', left), 0o755)
  }
})

test('with --keep-every, the warning of an old checkpoint that cannot be deleted names both flags', async t => {
  const user = asNobody(root)
  if (typeof user === 'string') { t.skip(user); return }
  const run = join(root, 'keep-every')
  await trainRun({ ...base, out: run, keepEvery: 4 }, { resume: false, overwrite: false })
  user.give(run)
  chmodSync(ck(run, 2), 0o555)
  try {
    // step 4's checkpoint is a major one: step 2's (the only minor one) goes only at step 6's prune
    const r = spawnSync(process.execPath, [main, 'train', '--out', run, '--resume', '--steps', '6'],
      { encoding: 'utf8', env: { ...process.env, LLMTS_DEBUG: '' }, ...user.spawn })
    assert.equal(r.status, 0, r.stderr)
    const left = join(run, 'checkpoints', readdirSync(join(run, 'checkpoints')).find(n => n.startsWith('.step_000002.del-'))!)
    const warning = `llmts train: warning: could not delete the old checkpoint ${ck(run, 2)} (--keep-checkpoints 1, not a ` +
      `multiple of --keep-every 4): permission denied (EACCES) at ${left}/`
    assert.equal(r.stderr.split('\n').filter(l => l.startsWith(warning) && l.endsWith(`; ${left} is left (delete it by hand), ` +
      'the run goes on')).length, 1, r.stderr)
    assert.deepEqual(readdirSync(join(run, 'checkpoints')).filter(n => n.startsWith('step_')), ['step_000004', 'step_000006'])
  } finally {
    const left = readdirSync(join(run, 'checkpoints')).find(n => n.startsWith('.step_000002'))
    if (left !== undefined) chmodSync(join(run, 'checkpoints', left), 0o755)
  }
})

test('a replaced best/ and a .best-committed/ that cannot be deleted are warnings, once each: the resume goes on', async t => {
  const user = asNobody(root)
  if (typeof user === 'string') { t.skip(user); return }
  const run = join(root, 'best-run')
  // validations at every step, checkpoints at even steps: a NaN at step 4 stops the run with best/ = step 3's weights,
  // ahead of the newest checkpoint (step 2), whose best is kept in .best-committed/
  const c = { ...base, out: run, steps: 6, valEvery: 1, keepCheckpoints: 3 }
  process.env['LLMTS_TEST_NAN_GRAD_STEPS'] = '4'
  try { await assert.rejects(trainRun(c, { resume: false, overwrite: false }), DivergenceError) } finally {
    delete process.env['LLMTS_TEST_NAN_GRAD_STEPS']
  }
  assert.equal(readCheckpoint(join(run, 'best'), { withOptimizer: false }).progress.step, 3, 'precondition: step 3 validated best')
  assert.equal(readCheckpoint(join(run, '.best-committed'), { withOptimizer: false }).progress.step, 2)
  user.give(run)
  for (const d of ['best', '.best-committed']) chmodSync(join(run, d), 0o555)   // their files cannot be unlinked
  const resume = (steps: number): SpawnSyncReturns<string> => spawnSync(process.execPath, [main, 'train', '--out', run, '--resume',
    '--steps', String(steps)], { encoding: 'utf8', env: { ...process.env, LLMTS_DEBUG: '' }, ...user.spawn })
  const leftovers = (): string[] => readdirSync(run).filter(n => /^\.(best|\.best-committed)\.(old|tmp|del)-\d+(-\d+)?$/.test(n)).sort()
  try {
    // the resume from step 2 puts .best-committed/ back as best/ (replacing step 3's), then removes .best-committed/
    const r = resume(6)
    assert.equal(r.status, 0, r.stderr)
    const [committed, old] = leftovers()
    assert.ok(old?.startsWith('.best.old-') === true && committed?.startsWith('..best-committed.del-') === true, leftovers().join())
    const warning = (what: string, left: string): RegExp => new RegExp(`^llmts train: warning: could not delete ${what}: permission ` +
      `denied \\(EACCES\\) at ${join(run, left)}/[^;]+; ${join(run, left)} is left \\(delete it by hand\\), the run goes on$`)
    const lines = r.stderr.split('\n')
    assert.equal(lines.filter(l => warning(`the replaced ${join(run, 'best')}`, old!).test(l)).length, 1, r.stderr)
    assert.equal(lines.filter(l => warning(join(run, '.best-committed'), committed!).test(l)).length, 1, r.stderr)
    assert.ok(!existsSync(join(run, '.best-committed')), 'gone for the run: renamed away before its deletion failed')
    assert.deepEqual(readdirSync(join(run, 'checkpoints')).filter(n => n.startsWith('step_')), ['step_000002', 'step_000004', 'step_000006'])

    const again = resume(8)   // both leftovers are met again at the first checkpoint: one warning each, not a refusal
    assert.equal(again.status, 0, again.stderr)
    const leftover = (left: string): RegExp => warning('a leftover of an interrupted write or deletion', left)
    for (const left of [old!, committed!]) {
      assert.equal(again.stderr.split('\n').filter(l => leftover(left).test(l)).length, 1, again.stderr)
    }
    assert.deepEqual(leftovers(), [committed, old])
  } finally {   // the temp root's removal at exit must get into them
    for (const n of [...leftovers(), 'best', '.best-committed']) if (existsSync(join(run, n))) chmodSync(join(run, n), 0o755)
  }
})
