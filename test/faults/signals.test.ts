// SIGINT and SIGTERM: the run finishes its micro-batch, writes a checkpoint of the last whole step, prints the
// --resume command and exits 130 or 143 (128 + the signal's number, as the shell reports a process it killed) (within a micro-batch, not a step, of a long accumulation); a second signal
// terminates at once, even in the middle of that checkpoint's (slowed) write, which then never appears; --resume
// afterwards starts over (no checkpoint had been written). The default run has no checkpoint: Ctrl-C says so, exit 130.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { listCheckpoints, readCheckpoint } from '../../src/train/checkpoint.js'
import { readLog } from '../../src/train/log.js'
import { longValData, makeToyRun } from '../train/helpers.js'
import { llmts, start, tempRoot } from './helpers.js'

const root = tempRoot('signals')
const toy = makeToyRun(root)
const settings = ['--model', toy.modelJson, '--data', toy.data, '--batch-size', '4', '--seq-len', '16', '--total-batch-size', '64',
  '--steps', '100000', '--warmup-steps', '1', '--val-every', '0', '--sample-every', '0', '--device', 'cpu']

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal}: finishes the step, writes a checkpoint, says how to resume and exits 128 + its number`, { timeout: 60_000 }, async () => {
    const out = join(root, signal)
    const run = start(['train', ...settings, '--checkpoint-every', '0', '--out', out], {
      onStderr: (text, child) => { if (/step 1\/100000/.test(text) && !child.killed) child.kill(signal) },
    })
    const r = await run.done
    assert.equal(r.code, { SIGINT: 130, SIGTERM: 143 }[signal], r.stderr)
    assert.match(r.stderr, new RegExp(`(^|\n)llmts train: ${signal}: stopping after this micro-batch`))
    assert.doesNotMatch(r.stderr, /\n\n/, 'off a terminal, no blank line (it ends a live progress line on one)')
    const m = /stopped at step (\d+); continue with: llmts train --out (\S+) --resume/.exec(r.stderr)
    assert.ok(m !== null, r.stderr)
    const stopped = Number(m[1])
    assert.equal(m[2], out)
    assert.deepEqual(listCheckpoints(out).map(c => c.step), [stopped])
    assert.equal(readCheckpoint(listCheckpoints(out)[0]!.path, { withOptimizer: true }).progress.step, stopped)
    assert.equal(readLog(join(out, 'log.jsonl')).at(-1)!.step, stopped, 'no step is logged past the checkpoint')
    const again = llmts(['train', '--out', out, '--resume', '--steps', String(stopped + 2)])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stderr, new RegExp(`resuming at step ${stopped}`))
  })
}

test('SIGTERM during a step of 2,000 micro-batches: drops that step at once and checkpoints the last whole one', { timeout: 120_000 }, async () => {
  const out = join(root, 'accum')
  let sentAt = 0
  const run = start(['train', ...settings, '--total-batch-size', String(64 * 2000), '--checkpoint-every', '0', '--out', out], {
    onStderr: (text, child) => { if (/step 1\/100000/.test(text) && sentAt === 0) { sentAt = Date.now(); child.kill('SIGTERM') } },
  })
  const r = await run.done
  const latency = Date.now() - sentAt
  assert.equal(r.code, 143, r.stderr)
  assert.match(r.stderr, /stopped at step 1; continue with/)
  const log = readLog(join(out, 'log.jsonl'))
  assert.deepEqual(log.map(l => l.step), [1], 'step 2 was dropped, not finished')
  const stepMs = Number(log[0]!['ms'])
  assert.ok(latency < stepMs / 2, `exited ${latency} ms after SIGTERM; a whole step took ${stepMs} ms`)
  assert.deepEqual(listCheckpoints(out).map(c => c.step), [1])
})

for (const [first, second] of [['SIGINT', 'SIGINT'], ['SIGTERM', 'SIGTERM'], ['SIGTERM', 'SIGINT']] as const) {
  test(`${first} then ${second}: the second terminates at once, inside the stop checkpoint's write`, { timeout: 60_000 }, async () => {
    const out = join(root, `${first}-${second}`)
    let sentAt = 0
    const run = start(['train', ...settings, '--checkpoint-every', '0', '--out', out], {
      env: { LLMTS_TEST_SLOW_CHECKPOINT_MS: '1000' },   // the stop checkpoint's write takes 2 s
      onStderr: (text, child) => {
        if (/step 1\/100000/.test(text) && sentAt === 0) { sentAt = -1; child.kill(first) }
        if (text.includes('stopping after this micro-batch') && sentAt === -1) {
          sentAt = -2
          setTimeout(() => { sentAt = Date.now(); child.kill(second) }, 100)
        }
      },
    })
    const r = await run.done
    const latency = Date.now() - sentAt
    assert.equal(r.signal, second, `exit ${r.code} ${r.signal}: ${r.stderr}`)
    assert.ok(latency < 1000, `terminated ${latency} ms after the second signal (the write alone takes 2 s)`)
    assert.ok(readdirSync(join(out, 'checkpoints')).some(n => /^\.step_\d+\.tmp-\d+$/.test(n)), 'it was inside the write')
    assert.deepEqual(listCheckpoints(out), [], 'the interrupted stop checkpoint never appears')
    // no checkpoint yet: --resume starts the run over from step 0 with its recorded settings
    const again = llmts(['train', '--out', out, '--resume', '--steps', '3'])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stderr, /stopped before its first checkpoint; starting it over from step 0/)
    assert.deepEqual(readLog(join(out, 'log.jsonl')).map(l => l.step), [1, 2, 3])
    assert.deepEqual(readdirSync(join(out, 'checkpoints')), ['step_000003'], 'the leftover of the killed write is gone')
  })
}

/** Starts a run whose validation before step 1 takes seconds (`valSteps` batches) and sends `signals` to it: the
 *  first 300 ms after the start line, each next one 100 ms after the stop message. */
function duringValidation(out: string, valSteps: number, signals: number): ReturnType<typeof start> & { firstAt: () => number } {
  let sent = 0, firstAt = 0
  const val = longValData(root, `val${valSteps}`, valSteps, 4 * 16)
  const run = start(['train', ...settings, '--steps', '2', '--val-every', '1', '--val-steps', String(valSteps), '--val-data', val, '--out', out], {
    onStderr: (text, child) => {
      if (sent === 0 && /run directory/.test(text)) { sent = 1; setTimeout(() => { firstAt = Date.now(); child.kill('SIGINT') }, 300) }
      if (sent === 1 && signals > 1 && text.includes('stopping after this micro-batch')) { sent = 2; setTimeout(() => child.kill('SIGINT'), 100) }
    },
  })
  return { ...run, firstAt: () => firstAt }
}

test('SIGINT twice during a long validation: the first is seen within a batch, the second terminates at once', { timeout: 60_000 }, async () => {
  // 20,000 validation batches take ~10 s; the validation yields to the event loop after each (as a step's micro-batches do)
  const run = duringValidation(join(root, 'validation-twice'), 20_000, 2)
  const r = await run.done
  const latency = Date.now() - run.firstAt()
  assert.equal(r.signal, 'SIGINT', `exit ${r.code} ${r.signal}: ${r.stderr}`)
  assert.ok(latency < 3000, `terminated ${latency} ms after the first signal (the validation alone takes ~10 s)`)
  assert.ok(!r.stderr.includes('val loss'), 'still inside the step-0 validation')
})

test('SIGINT during the validation before step 1: it finishes, and the run stops at step 0 without training', { timeout: 60_000 }, async () => {
  const out = join(root, 'validation-once')
  const r = await duringValidation(out, 3000, 1).done
  assert.equal(r.code, 130, r.stderr)
  assert.match(r.stderr, /stopped at step 0; continue with/)
  assert.deepEqual(readLog(join(out, 'log.jsonl')).map(l => [l.step, 'val_loss' in l]), [[0, true]], 'step 1 never ran')
  assert.deepEqual(listCheckpoints(out), [])
})

test('--default-run: Ctrl-C says there is nothing to resume and exits 130', { timeout: 120_000 }, async () => {
  const run = start(['train', '--default-run', '--steps', '50', '--out', join(root, 'default')], {
    onStderr: (text, child) => { if (/\[tiny-gpt2\] step 1\/50/.test(text) && !child.killed) child.kill('SIGINT') },
  })
  const r = await run.done
  assert.equal(r.code, 130, r.stderr)
  assert.match(r.stderr, /\nllmts train: interrupted; nothing to resume \(the next default run starts over\)\n$/)
  assert.equal(r.stdout, '')
})
