// Kill at any moment: `llmts train` is SIGKILLed at 20 seeded random moments (during startup, steps,
// validation and above all checkpoint writes, which LLMTS_TEST_SLOW_CHECKPOINT_MS stretches) and resumed each
// time with --resume. After every kill each listed checkpoint must verify; at the end the log, the final
// checkpoint's bytes, best/ and the periodic samples must equal those of a run that was never interrupted.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { listCheckpoints, readCheckpoint } from '../../src/train/checkpoint.js'
import { readLog } from '../../src/train/log.js'
import { Rng } from '../../src/util/rng.js'
import { makeToyRun } from '../train/helpers.js'
import { start, tempRoot, withoutTiming, type Result } from './helpers.js'

const KILLS = 20
const STEPS = 40
const root = tempRoot('kill')
const toy = makeToyRun(root)
const settings = ['--model', toy.modelJson, '--data', toy.data, '--batch-size', '4', '--seq-len', '16', '--total-batch-size', '64',
  '--steps', String(STEPS), '--warmup-steps', '2', '--lr', '3e-3', '--val-every', '5', '--val-steps', '2', '--checkpoint-every', '1',
  '--keep-checkpoints', '2', '--sample-every', '7', '--sample-tokens', '8', '--device', 'cpu']

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
 *  from spawn ('time') or from its first checkpoint line ('event'). */
async function launchAndKill(dir: string, mode: 'time' | 'event', delayMs: number): Promise<Result> {
  const cmd = existsSync(join(dir, 'config.json')) ? ['train', '--out', dir, '--resume'] : ['train', ...settings, '--out', dir]
  let armed = false
  const arm = (kill: () => void): void => { if (!armed) { armed = true; setTimeout(kill, delayMs) } }
  const run = start(cmd, {
    env: { LLMTS_TEST_SLOW_CHECKPOINT_MS: '25' },
    onStderr: (text, child) => { if (mode === 'event' && /\| checkpoint /.test(text)) arm(() => child.kill('SIGKILL')) },
  })
  if (mode === 'time') arm(() => run.child.kill('SIGKILL'))
  return run.done
}

test(`${KILLS} SIGKILLs at random moments, each resumed: the final run equals an uninterrupted one`, { timeout: 150_000 }, async t => {
  const refSamples = new Map<number, string>()
  const ref = await start(['train', ...settings, '--out', join(root, 'ref')]).done
  assert.equal(ref.code, 0, ref.stderr)
  collectSamples(ref.stderr, refSamples)

  const dir = join(root, 'killed')
  const rng = new Rng(2024)
  const samples = new Map<number, string>()
  let kills = 0, midWrite = 0, beforeFirstCheckpoint = 0
  for (let attempt = 0; kills < KILLS; attempt++) {
    assert.ok(attempt < 3 * KILLS, `too many launches without a kill landing (${kills} kills)`)
    // the first two land in startup or the first steps (before any checkpoint); then 1 in 4 at a random time
    // after spawn, the rest at a random moment after the session's first checkpoint (mostly inside a write)
    const mode = attempt < 2 || rng.uniform() < 0.25 ? 'time' : 'event'
    const r = await launchAndKill(dir, mode, mode === 'time' ? (attempt < 2 ? 200 : 0) + rng.uniform() * 500 : rng.uniform() * 150)
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
  }
  assert.equal(kills, KILLS, `the run finished after only ${kills} kills`)
  const last = await start(['train', '--out', dir, '--resume']).done
  assert.equal(last.code, 0, last.stderr)
  collectSamples(last.stderr, samples)
  t.diagnostic(`${kills} kills survived: ${midWrite} inside a checkpoint write, ${beforeFirstCheckpoint} before the first checkpoint`)
  assert.ok(midWrite >= 5, `only ${midWrite} kills landed inside a checkpoint write`)

  assert.deepEqual(withoutTiming(readLog(join(dir, 'log.jsonl'))), withoutTiming(readLog(join(root, 'ref', 'log.jsonl'))))
  const final = `checkpoints/step_${String(STEPS).padStart(6, '0')}`
  for (const f of ['model.safetensors', 'optimizer.safetensors']) {
    assert.ok(readFileSync(join(dir, final, f)).equals(readFileSync(join(root, 'ref', final, f))), `${final}/${f} differs`)
  }
  const best = (d: string): unknown => { const s = readCheckpoint(join(d, 'best'), { withOptimizer: false }).progress; return [s.step, s.valLoss] }
  assert.deepEqual(best(dir), best(join(root, 'ref')))
  assert.deepEqual([...samples].sort((a, b) => a[0] - b[0]), [...refSamples].sort((a, b) => a[0] - b[0]))
  assert.deepEqual(leftovers(dir), [])
})
