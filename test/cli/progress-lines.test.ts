// Progress off a terminal (a log, CI): eval loss's and HellaSwag's plain lines come at the first and last units of
// work and every ~10 s between, as train's, and carry the rate and ETA over RateMeter's window (values computed by
// hand from a fake clock); their fields are separated by ' | ', as train's step lines and the bars are; so are prepare's.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { progressReporter as hellaswagProgress } from '../../src/cli/eval-hellaswag.js'
import { progressReporter as lossProgress } from '../../src/cli/eval-loss.js'
import { plainLine as prepareLine } from '../../src/cli/prepare.js'

/** What `draw` writes to stderr when it is not a terminal. */
function offTerminal(draw: () => void): string[] {
  const err = process.stderr, write = err.write, had = Object.getOwnPropertyDescriptor(err, 'isTTY')
  let out = ''
  err.write = ((s: string) => { out += s; return true }) as typeof err.write
  Object.defineProperty(err, 'isTTY', { value: false, configurable: true })
  try { draw() } finally {
    err.write = write
    if (had !== undefined) Object.defineProperty(err, 'isTTY', had)
    else delete (err as { isTTY?: boolean }).isTTY
  }
  return out.split('\n').slice(0, -1)
}

test('eval loss off a terminal: the first and last batches and one ~10 s on, each with tok/s and the ETA', () => {
  const lines = offTerminal(() => {
    let t = 0
    const p = lossProgress(5, { tokensPerBatch: 1024, now: () => t })
    for (const [at, done] of [[1500, 1], [3000, 2], [11_000, 3], [12_000, 4], [20_000, 5]] as const) { t = at; p(done, 3) }
  })
  assert.deepEqual(lines, [
    'eval loss: batch 1/5 | loss 3.0000 | 683 tok/s | ETA 6s',   // 1024 tokens in 1.5 s; 4096 left
    'eval loss: batch 4/5 | loss 3.0000 | 341 tok/s | ETA 3s',   // 10.5 s after the first line: 4096 in 12 s; 1024 left
    'eval loss: batch 5/5 | loss 3.0000 | 256 tok/s | ETA 0s',   // the last: 5120 in 20 s
  ])
})

test('HellaSwag off a terminal: the first and last examples and one ~10 s on, each with ex/s and the ETA', () => {
  const lines = offTerminal(() => {
    let t = 0
    const p = hellaswagProgress('harness scoring, 0-shot', { now: () => t })
    for (const [at, done, accNorm] of [[2000, 1, 1], [5000, 2, 1], [12_500, 3, 2], [400_000, 100, 40]] as const) {
      t = at
      p.update(done, 100, { accNorm })
    }
    p.stop()
  })
  assert.deepEqual(lines, [
    'hellaswag (harness scoring, 0-shot): 1/100 examples | acc_norm 100.00% | 0.50 ex/s | ETA 3m18s',   // 99 at 0.5/s
    'hellaswag (harness scoring, 0-shot): 3/100 examples | acc_norm 66.67% | 0.24 ex/s | ETA 6m44s',    // 97 at 3/12.5 s
    // the 20 s window keeps the samples from 12.5 s: 97 examples in 387.5 s
    'hellaswag (harness scoring, 0-shot): 100/100 examples | acc_norm 40.00% | 0.25 ex/s | ETA 0s',
  ])
})

test("prepare off a terminal: percent and ETA by input bytes, fields separated as its bar's", () => {
  // 2.5 of 10 MB read in 30 s: 25%, and 7.5 MB more at that rate is 90 s
  assert.equal(prepareLine({ documents: 1234, tokens: 3_450_000, bytes: 2_500_000, totalBytes: 10_000_000, seconds: 30 }),
    'prepare: 25% | 1.2k docs | 3.45M tokens | 115.0k tok/s | ETA 1m30s')
  // stdin: no total, so neither percent nor ETA
  assert.equal(prepareLine({ documents: 12, tokens: 900, bytes: 5000, seconds: 3 }), 'prepare: 12 docs | 900 tokens | 300 tok/s')
})
