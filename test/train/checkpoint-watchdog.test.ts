// The background save's thread ending without running a JS handler of its own (a worker's process.exit, out of memory,
// a module that fails to load) must not leave the trainer blocked for good in Atomics.wait: the watchdog thread wakes
// it with an error naming the thread's death and exit code. LLMTS_TEST_SAVER_FAULT=exit ends the thread with
// process.exit(7) as a save starts. Each case runs in a child process with a time limit: a hang fails, not hangs.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { listCheckpoints } from '../../src/train/checkpoint.js'
import { main, tempRoot } from '../faults/helpers.js'
import { makeToyRun } from './helpers.js'
import type { ChildSave } from './saver-child.js'

const root = tempRoot('watchdog')
const child = fileURLToPath(new URL('./saver-child.js', import.meta.url))

/** Runs saver-child.js on `runDir`; killed after 20 s (a hang), when it is reported as such. */
function runChild(runDir: string, env: Record<string, string>): Promise<{ saves: ChildSave[]; code: number | null; killed: boolean }> {
  return new Promise(resolve => {
    execFile(process.execPath, [child, runDir], { env: { ...process.env, ...env }, timeout: 20_000, killSignal: 'SIGKILL' },
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

test('llmts train whose save thread dies: one error line naming the death and the step, exit 1, no hang', { timeout: 60_000 }, () => {
  const toy = makeToyRun(join(root, 'toy'))
  const out = join(root, 'train')
  // SIGKILL: a blocked trainer never handles SIGTERM (its handler runs on the blocked event loop)
  const r = spawnSync(process.execPath, [main, 'train', '--model', toy.modelJson, '--data', toy.data, '--batch-size', '4',
    '--seq-len', '16', '--total-batch-size', '64', '--steps', '4', '--warmup-steps', '1', '--val-every', '0',
    '--checkpoint-every', '2', '--device', 'cpu', '--threads', '1', '--out', out],
  { encoding: 'utf8', env: { ...process.env, LLMTS_DEBUG: '', LLMTS_TEST_SAVER_FAULT: 'exit' }, timeout: 30_000, killSignal: 'SIGKILL' })
  assert.equal(r.signal, null, `killed (a hang?): ${r.stderr}`)
  assert.equal(r.status, 1, r.stderr)
  const last = r.stderr.trim().split('\n').at(-1)!
  assert.equal(last, 'llmts train: internal error: checkpoint of step 2 not written: the checkpoint thread died (exit code 7)')
  assert.deepEqual(listCheckpoints(out), [], 'no checkpoint written')
})
