// Kill at any moment: `llmts train` is SIGKILLed at seeded random moments (during startup, steps, validation and
// above all checkpoint writes, which LLMTS_TEST_SLOW_CHECKPOINT_MS stretches) and resumed each time with --resume.
// After every kill each listed checkpoint must verify, and best/ as the resume will make it must be the best the log
// has up to the resumed step; at the end the log, the final checkpoint's bytes, best/ and the periodic samples must
// equal those of a run that was never interrupted. Two schedules: a checkpoint every step (kills inside writes), and
// checkpoints sparser than validations (kills while best/ is ahead of the newest checkpoint: .best-committed/).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { listCheckpoints, readCheckpoint } from '../../src/train/checkpoint.js'
import { readLog } from '../../src/train/log.js'
import { findResumePoint, repairBest } from '../../src/train/resume.js'
import { Rng } from '../../src/util/rng.js'
import { makeToyRun } from '../train/helpers.js'
import { start, tempRoot, withoutTiming, type Result } from './helpers.js'

const root = tempRoot('kill')
const toy = makeToyRun(root)

interface Plan {
  name: string; kills: number; steps: number; valEvery: number; checkpointEvery: number
  armedBy: (stderr: string) => boolean   // a kill of mode 'event' comes a random delay (up to delayMs) after this
  delayMs: number
  minMidWrite: number       // kills that must land inside a checkpoint write
  minAhead: number          // kills that must land while best/ is ahead of the newest checkpoint
}

/** A validation between checkpoints that set a new best (best/ moves past the newest checkpoint), after the session's
 *  first checkpoint (a kill before it would start the run over). */
const bestBetweenCheckpoints = (every: number) => (stderr: string): boolean => {
  const first = stderr.indexOf('| checkpoint ')
  return first >= 0 && [...stderr.slice(first).matchAll(/^step (\d+) \| val loss [\d.]+ \(best\)$/gm)].some(m => Number(m[1]) % every !== 0)
}

const settings = (p: Plan): string[] => ['--model', toy.modelJson, '--data', toy.data, '--batch-size', '4', '--seq-len', '16',
  '--total-batch-size', '64', '--steps', String(p.steps), '--warmup-steps', '2', '--lr', '3e-3', '--val-every', String(p.valEvery),
  '--val-steps', '2', '--checkpoint-every', String(p.checkpointEvery), '--keep-checkpoints', '2', '--sample-every', '7',
  '--sample-tokens', '8', '--device', 'cpu']

/** step -> the sample printed at that step (the last print wins: a step redone after a kill prints again). */
function collectSamples(stderr: string, into: Map<number, string>): void {
  for (const m of stderr.matchAll(/^step (\d+) \| sample: (.*)$/gm)) into.set(Number(m[1]), m[2]!)
}

/** Hidden temp entries an interrupted write leaves (removed or renamed back by the next run). */
function leftovers(runDir: string): string[] {
  const list = (d: string): string[] => existsSync(d) ? readdirSync(d) : []
  return [...list(runDir), ...list(join(runDir, 'checkpoints'))].filter(n => /\.(tmp|old|del)-\d+$/.test(n))
}

/** Launches the run (or resumes it once it has a config.json, as a user would) and SIGKILLs it after `delayMs`
 *  from spawn ('time') or from the plan's event ('event'), or, once the event came, at the first moment best/ is
 *  ahead of the newest checkpoint ('ahead': polled every 2 ms; a random delay alone hits that window by chance only,
 *  as the best/ write takes most of the delays' range on a loaded machine). */
async function launchAndKill(plan: Plan, dir: string, mode: 'time' | 'event' | 'ahead', delayMs: number): Promise<Result> {
  const cmd = existsSync(join(dir, 'config.json')) ? ['train', '--out', dir, '--resume'] : ['train', ...settings(plan), '--out', dir]
  let armed = false
  const arm = (kill: () => void): void => {
    if (armed) return
    armed = true
    if (mode !== 'ahead') { setTimeout(kill, delayMs); return }
    const poll = setInterval(() => { if (bestAhead(dir)) { clearInterval(poll); kill() } }, 2)
    void run.done.then(() => clearInterval(poll))
  }
  const run = start(cmd, {
    env: { LLMTS_TEST_SLOW_CHECKPOINT_MS: '25' },
    onStderr: (text, child) => { if (mode !== 'time' && plan.armedBy(text)) arm(() => child.kill('SIGKILL')) },
  })
  if (mode === 'time') arm(() => run.child.kill('SIGKILL'))
  return run.done
}

/** Whether a validation between checkpoints has moved best/ past the newest checkpoint (false while a write swaps
 *  either in: the poll of 'ahead' kills reads them while the run writes). */
function bestAhead(dir: string): boolean {
  try {
    const last = listCheckpoints(dir).at(-1)
    if (last === undefined || !existsSync(join(dir, 'best', 'state.json'))) return false
    return readCheckpoint(join(dir, 'best'), { withOptimizer: false }).progress.step > last.step
  } catch { return false }
}

/** best/ as the next --resume makes it (repaired on a copy): the lowest val loss the log has from step 1 to the resumed
 *  step, with that step's number (no best/ before a validation); the later steps are trained again. */
function checkBestOnResume(dir: string, copy: string): void {
  if (!existsSync(join(dir, 'config.json'))) return   // killed before it: the next launch starts the run
  rmSync(copy, { recursive: true, force: true })
  cpSync(dir, copy, { recursive: true })
  const point = findResumePoint(copy)
  if (point.kind !== 'checkpoint') return
  repairBest(copy, point)
  const at = point.checkpoint.progress.step
  const vals = readLog(join(copy, 'log.jsonl')).filter(l => l.step > 0 && l.step <= at && 'val_loss' in l) as unknown as
    { step: number; val_loss: number }[]
  if (vals.length === 0) { assert.ok(!existsSync(join(copy, 'best')), `no validation up to step ${at}, yet a best/`); return }
  const lowest = vals.reduce((a, b) => (b.val_loss < a.val_loss ? b : a))
  const best = readCheckpoint(join(copy, 'best'), { withOptimizer: false }).progress
  assert.deepEqual([best.step, best.valLoss], [lowest.step, lowest.val_loss], `best/ on a resume from step ${at}`)
}

const plans: Plan[] = [
  { name: 'a checkpoint every step', kills: 20, steps: 40, valEvery: 5, checkpointEvery: 1, armedBy: text => /\| checkpoint /.test(text),
    delayMs: 150, minMidWrite: 5, minAhead: 0 },
  // validations at even steps, checkpoints every third: a kill up to 300 ms after a best at step 2, 4, 8, ... lands in
  // its best/ write (.best-committed/ is made first), the next step or checkpoint write (best/ ahead), or after;
  // 'ahead' kills wait for best/ to be ahead
  { name: 'checkpoints sparser than validations', kills: 12, steps: 30, valEvery: 2, checkpointEvery: 3, armedBy: bestBetweenCheckpoints(3),
    delayMs: 300, minMidWrite: 1, minAhead: 1 },
]

for (const plan of plans) {
  test(`${plan.kills} SIGKILLs at random moments (${plan.name}), each resumed: the final run equals an uninterrupted one`,
    { timeout: 150_000 }, t => killAndResume(plan, t.diagnostic.bind(t)))
}

async function killAndResume(plan: Plan, diagnostic: (line: string) => void): Promise<void> {
  const KILLS = plan.kills, STEPS = plan.steps, base = join(root, plan.name.replace(/ /g, '-'))
  const refSamples = new Map<number, string>()
  const ref = await start(['train', ...settings(plan), '--out', join(base, 'ref')]).done
  assert.equal(ref.code, 0, ref.stderr)
  collectSamples(ref.stderr, refSamples)

  const dir = join(base, 'killed')
  const rng = new Rng(2024)
  const samples = new Map<number, string>()
  let kills = 0, midWrite = 0, beforeFirstCheckpoint = 0, ahead = 0, committed = 0
  for (let attempt = 0; kills < KILLS; attempt++) {
    assert.ok(attempt < 3 * KILLS, `too many launches without a kill landing (${kills} kills)`)
    // the first two land in startup or the first steps (before any checkpoint); then 1 in 4 at a random time
    // after spawn, the rest at a random moment after the session's first checkpoint (mostly inside a write)
    // (with minAhead, half the event kills wait for best/ to be ahead of the newest checkpoint)
    const mode = attempt < 2 || rng.uniform() < 0.25 ? 'time' : plan.minAhead > 0 && rng.uniform() < 0.5 ? 'ahead' : 'event'
    const r = await launchAndKill(plan, dir, mode, mode === 'time' ? (attempt < 2 ? 200 : 0) + rng.uniform() * 500 : rng.uniform() * plan.delayMs)
    collectSamples(r.stderr, samples)
    if (r.signal !== 'SIGKILL') {
      assert.equal(r.code, 0, `a launch failed: ${r.stderr}`)
      break   // the run finished before the kill landed
    }
    kills++
    if (leftovers(dir).length > 0) midWrite++
    const cks = listCheckpoints(dir)
    if (cks.length === 0) beforeFirstCheckpoint++
    for (const c of cks) readCheckpoint(c.path, { withOptimizer: true })   // a listed checkpoint is never torn
    if (bestAhead(dir)) ahead++
    if (existsSync(join(dir, '.best-committed'))) committed++
    checkBestOnResume(dir, join(base, 'repaired'))
  }
  assert.equal(kills, KILLS, `the run finished after only ${kills} kills`)
  const last = await start(['train', '--out', dir, '--resume']).done
  assert.equal(last.code, 0, last.stderr)
  collectSamples(last.stderr, samples)
  diagnostic(`${kills} kills survived: ${midWrite} inside a checkpoint write, ${beforeFirstCheckpoint} before the first checkpoint, ` +
    `${ahead} with best/ ahead of the newest checkpoint, ${committed} with a .best-committed/`)
  assert.ok(midWrite >= plan.minMidWrite, `only ${midWrite} kills landed inside a checkpoint write`)
  assert.ok(ahead >= plan.minAhead, `only ${ahead} kills landed while best/ was ahead of the newest checkpoint`)

  assert.deepEqual(withoutTiming(readLog(join(dir, 'log.jsonl'))), withoutTiming(readLog(join(base, 'ref', 'log.jsonl'))))
  const final = `checkpoints/step_${String(STEPS).padStart(6, '0')}`
  for (const f of ['model.safetensors', 'optimizer.safetensors']) {
    assert.ok(readFileSync(join(dir, final, f)).equals(readFileSync(join(base, 'ref', final, f))), `${final}/${f} differs`)
  }
  const best = (d: string): unknown => { const s = readCheckpoint(join(d, 'best'), { withOptimizer: false }).progress; return [s.step, s.valLoss] }
  assert.deepEqual(best(dir), best(join(base, 'ref')))
  assert.ok(readFileSync(join(dir, 'best', 'model.safetensors')).equals(readFileSync(join(base, 'ref', 'best', 'model.safetensors'))))
  assert.deepEqual([...samples].sort((a, b) => a[0] - b[0]), [...refSamples].sort((a, b) => a[0] - b[0]))
  assert.deepEqual(leftovers(dir), [])
  assert.ok(!existsSync(join(dir, '.best-committed')), 'gone once the last checkpoint is written')
}
