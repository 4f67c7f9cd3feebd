// The background save's thread ending without running a JS handler of its own (a worker's process.exit, out of memory,
// a module that fails to load) must not leave the trainer blocked for good in Atomics.wait: the watchdog thread wakes
// it with an error naming the thread's death and exit code. LLMTS_TEST_SAVER_FAULT=exit ends the thread with
// process.exit(7) as a save starts. The watchdog's own death (LLMTS_TEST_WATCHDOG_FAULT) must not hang it either: its
// heartbeat stops, and the wait ends WATCHDOG_SILENCE_MS later with an error naming it; a save longer than that on a
// live watchdog is no death. Each case runs in a child process with a time limit: a hang fails, not hangs.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { listCheckpoints } from '../../src/train/checkpoint.js'
import { WATCHDOG_SILENCE_MS } from '../../src/train/checkpoint-writer.js'
import { main, tempRoot } from '../faults/helpers.js'
import { makeToyRun } from './helpers.js'
import type { ChildSave } from './saver-child.js'

const root = tempRoot('watchdog')
const child = fileURLToPath(new URL('./saver-child.js', import.meta.url))

/** Runs saver-child.js on `runDir` (its waits after 2 s idle with `idle`); killed after `limitMs` (a hang), when it is
 *  reported as such. */
function runChild(runDir: string, env: Record<string, string>, { idle = false, limitMs = 20_000 } = {}):
  Promise<{ saves: ChildSave[]; code: number | null; killed: boolean }> {
  return new Promise(resolve => {
    execFile(process.execPath, [child, runDir, ...idle ? ['idle'] : []], { env: { ...process.env, ...env }, timeout: limitMs, killSignal: 'SIGKILL' },
      (e, stdout) => {
        const line = stdout.trim()
        resolve({ saves: line === '' ? [] : JSON.parse(line) as ChildSave[], code: e === null ? 0 : (e.code as number | null), killed: e?.killed === true })
      })
  })
}

test('a save thread that exits mid-save (no JS handler runs) wakes the waiting main thread at once, with its exit code', { timeout: 30_000 }, async () => {
  const runDir = join(root, 'exit')
  const r = await runChild(runDir, { LLMTS_TEST_SAVER_FAULT: 'exit' })
  assert.ok(!r.killed, 'the child hung (blocked in wait() for good) and was killed after 20 s')
  assert.equal(r.code, 0, 'the child ended by itself after close()')
  const died = (step: number): string => `train: checkpoint of step ${step} not written: the checkpoint thread died (exit code 7)`
  assert.deepEqual(r.saves.map(s => [s.step, s.done, s.error]), [[2, false, died(2)], [4, false, died(4)]],
    'the save in flight fails with the death, and the next one is refused at once')
  for (const s of r.saves) assert.ok(s.ms < 5000, `step ${s.step}: the wait took ${s.ms.toFixed(0)} ms`)
  assert.ok(!existsSync(join(runDir, 'checkpoints')), 'nothing written')
})

test('saves on a healthy thread: both complete, close() is no death, and the process ends by itself', { timeout: 30_000 }, async () => {
  const runDir = join(root, 'ok')
  const r = await runChild(runDir, {})
  assert.ok(!r.killed, 'the child hung and was killed after 20 s')
  assert.equal(r.code, 0)
  assert.deepEqual(r.saves.map(s => [s.step, s.done, s.error]), [[2, true, null], [4, true, null]])
  assert.deepEqual(listCheckpoints(runDir).map(c => c.step), [2, 4])
})

const stopped = (why: string): string => `the checkpoint watchdog thread stopped (${why})`
const silence = `no heartbeat for ${WATCHDOG_SILENCE_MS / 1000} s`

test('a watchdog that dies before its first beat: the wait for the save thread to be ready ends with its death', { timeout: 30_000 }, async () => {
  const runDir = join(root, 'watchdog-start')
  const r = await runChild(runDir, { LLMTS_TEST_WATCHDOG_FAULT: 'start' })
  assert.ok(!r.killed, 'the child hung (blocked waiting for the thread to be ready) and was killed after 20 s')
  assert.equal(r.code, 0, 'the child ended by itself after close()')
  assert.deepEqual(r.saves.map(s => [s.step, s.done, s.error]), [[2, false, `train: ${stopped(silence)} as it started`],
    [4, false, `train: checkpoint of step 4 not written: ${stopped(silence)}`]], 'the start fails, and the next save is refused at once')
  assert.ok(r.saves[0]!.ms >= WATCHDOG_SILENCE_MS && r.saves[1]!.ms < 1000, r.saves.map(s => s.ms.toFixed(0)).join(', '))
})

test('a watchdog that dies mid-save (the save thread with it): the wait for the save ends with its death, nothing written', { timeout: 30_000 }, async () => {
  const runDir = join(root, 'watchdog-ready')
  // each stage of the save 1 s: the watchdog (and the save thread, its child) is gone within 0.25 s of the thread's start
  const r = await runChild(runDir, { LLMTS_TEST_WATCHDOG_FAULT: 'ready', LLMTS_TEST_SLOW_CHECKPOINT_MS: '1000' })
  assert.ok(!r.killed, 'the child hung (blocked in wait() for good) and was killed after 20 s')
  assert.equal(r.code, 0)
  const lost = (step: number): string => `train: checkpoint of step ${step} not written: ${stopped(silence)}`
  assert.deepEqual(r.saves.map(s => [s.step, s.done, s.error]), [[2, false, lost(2)], [4, false, lost(4)]])
  assert.ok(r.saves[0]!.ms >= WATCHDOG_SILENCE_MS && r.saves[1]!.ms < 1000, r.saves.map(s => s.ms.toFixed(0)).join(', '))
  assert.deepEqual(listCheckpoints(runDir), [], 'no checkpoint')
})

test('a watchdog that ends while the event loop is free: the next wait fails at once with its exit code or error', { timeout: 60_000 }, async () => {
  const lost = (step: number, why: string): string => `train: checkpoint of step ${step} not written: ${stopped(why)}`
  const cases = [['ready', 'exit code 9'], ['throw', 'exit code 1: test hook: the watchdog fails (LLMTS_TEST_WATCHDOG_FAULT)']]
  for (const [fault, why] of cases) {
    const runDir = join(root, `watchdog-idle-${fault}`)
    const r = await runChild(runDir, { LLMTS_TEST_WATCHDOG_FAULT: fault!, LLMTS_TEST_SLOW_CHECKPOINT_MS: '1000' }, { idle: true })
    assert.ok(!r.killed, `${fault}: the child hung and was killed after 20 s`)
    assert.equal(r.code, 0, fault)
    assert.deepEqual(r.saves.map(s => [s.step, s.done, s.error]), [[2, false, lost(2, why!)], [4, false, lost(4, why!)]], fault)
    for (const s of r.saves) assert.ok(s.ms < 2000 + WATCHDOG_SILENCE_MS / 2, `${fault}, step ${s.step}: ${s.ms.toFixed(0)} ms, not at once`)
    assert.deepEqual(listCheckpoints(runDir), [], fault)
  }
})

test('a save longer than the watchdog\'s silence limit, on a live watchdog, is no death: both complete', { timeout: 60_000 }, async () => {
  const runDir = join(root, 'slow')
  // three stages of 2 s each: a save of 6 s, the main thread blocked in wait() throughout
  const r = await runChild(runDir, { LLMTS_TEST_SLOW_CHECKPOINT_MS: '2000' }, { limitMs: 45_000 })
  assert.ok(!r.killed, 'the child hung and was killed after 45 s')
  assert.equal(r.code, 0)
  assert.deepEqual(r.saves.map(s => [s.step, s.done, s.error]), [[2, true, null], [4, true, null]])
  for (const s of r.saves) assert.ok(s.ms > WATCHDOG_SILENCE_MS, `step ${s.step}: the save took ${s.ms.toFixed(0)} ms, not longer than the limit`)
  assert.deepEqual(listCheckpoints(runDir).map(c => c.step), [2, 4])
})

/** `llmts train` on a toy run in `name` (4 steps, checkpoints at 2 and 4) with the test hooks in `env`, killed after 30 s
 *  (SIGKILL: a blocked trainer never handles SIGTERM, whose handler runs on the blocked event loop). */
function trainWithFault(name: string, env: Record<string, string>): { r: SpawnSyncReturns<string>; out: string } {
  const toy = makeToyRun(join(root, `toy-${name}`)), out = join(root, `train-${name}`)
  const r = spawnSync(process.execPath, [main, 'train', '--model', toy.modelJson, '--data', toy.data, '--batch-size', '4',
    '--seq-len', '16', '--total-batch-size', '64', '--steps', '4', '--warmup-steps', '1', '--val-every', '0',
    '--checkpoint-every', '2', '--device', 'cpu', '--threads', '1', '--out', out],
  { encoding: 'utf8', env: { ...process.env, LLMTS_DEBUG: '', ...env }, timeout: 30_000, killSignal: 'SIGKILL' })
  return { r, out }
}

test('llmts train whose save thread dies: one error line naming the death and the step, exit 1, no hang', { timeout: 60_000 }, () => {
  const { r, out } = trainWithFault('saver', { LLMTS_TEST_SAVER_FAULT: 'exit' })
  assert.equal(r.signal, null, `killed (a hang?): ${r.stderr}`)
  assert.equal(r.status, 1, r.stderr)
  const last = r.stderr.trim().split('\n').at(-1)!
  assert.equal(last, 'llmts train: internal error: checkpoint of step 2 not written: the checkpoint thread died (exit code 7)')
  assert.deepEqual(listCheckpoints(out), [], 'no checkpoint written')
})

test('llmts train whose checkpoint watchdog dies as it starts: one error line naming it, exit 1, no hang', { timeout: 60_000 }, () => {
  const { r, out } = trainWithFault('watchdog', { LLMTS_TEST_WATCHDOG_FAULT: 'start' })
  assert.equal(r.signal, null, `killed (a hang?): ${r.stderr}`)
  assert.equal(r.status, 1, r.stderr)
  assert.equal(r.stderr.trim().split('\n').at(-1), `llmts train: internal error: ${stopped(silence)} as it started`)
  assert.deepEqual(listCheckpoints(out), [], 'no checkpoint written')
})
