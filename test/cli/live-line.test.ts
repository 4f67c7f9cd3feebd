// A line redrawn in place on a terminal ('\r', then the line) must fit one row: a wrapped one leaves its first rows
// behind at every redraw. fitLine cuts to columns − 1; train's live step line uses it (the last step is printed whole,
// as it stays on screen). TERM=dumb gets plain lines.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fitLine, liveProgress } from '../../src/cli/output.js'
import { progressReporter } from '../../src/cli/eval-loss.js'
import { consoleReporter, formatStep } from '../../src/cli/train.js'
import type { StepReport } from '../../src/train/trainer.js'

test('fitLine: at most columns − 1 characters; unknown or roomy widths leave the line whole', () => {
  assert.equal(fitLine('step 12/100 | loss 3.2', 10), 'step 12/1')
  assert.equal(fitLine('abcdefghi', 10), 'abcdefghi')
  assert.equal(fitLine('abcdefghij', 10), 'abcdefghi')
  assert.equal(fitLine('abcdefghij', undefined), 'abcdefghij')
  assert.equal(fitLine('abc', 1), 'abc')   // a nonsense width: not cut to nothing
})

/** What `draw` writes to stderr on a terminal `columns` wide. */
function onTerminal(columns: number, draw: () => void): string {
  const err = process.stderr
  const write = err.write, had = { columns: Object.getOwnPropertyDescriptor(err, 'columns'), isTTY: Object.getOwnPropertyDescriptor(err, 'isTTY') }
  let out = ''
  err.write = ((s: string) => { out += s; return true }) as typeof err.write
  Object.defineProperty(err, 'columns', { value: columns, configurable: true })
  Object.defineProperty(err, 'isTTY', { value: true, configurable: true })
  try { draw() } finally {
    err.write = write
    for (const k of ['columns', 'isTTY'] as const) {
      if (had[k] !== undefined) Object.defineProperty(err, k, had[k])
      else delete (err as { columns?: number; isTTY?: boolean })[k]
    }
  }
  return out
}

/** consoleReporter's writes for steps 1 and 2 of 2. */
const drawn = (columns: number): string => onTerminal(columns, () => {
  const r = consoleReporter({ tty: true, vocabSize: () => 50257 })
  const step = (n: number): StepReport => ({ step: n, steps: 2, loss: 10.5, lr: 6e-4, grad_norm: 1.25, tokens_per_s: 1234, ms: 56,
    etaS: 7 } as StepReport)
  r.step!(step(1))
  r.step!(step(2))
})

test('train on a terminal 20 columns wide: the live line fits a row, the last step is printed whole', () => {
  const out = drawn(20)
  const drawnLines = out.split('\r\x1b[K').filter(s => s !== '')
  const live = drawnLines[0], last = drawnLines.at(-1)
  for (const l of drawnLines.slice(0, -1)) assert.ok(l.length < 20, JSON.stringify(l))
  assert.equal(live, formatStep({ step: 1, steps: 2, loss: 10.5, lr: 6e-4, grad_norm: 1.25, tokens_per_s: 1234, ms: 56, etaS: 7 } as StepReport)
    .slice(0, 19))
  assert.match(last!, /^step 2\/2 \| loss 10\.5000 .* ETA 7s\n$/)
})

/** eval loss's reporter for 2 batches of 8 tokens, one a second: 8 tok/s, ETA 1 s after the first. */
const evalLines = (): void => {
  let t = 0
  const p = progressReporter(2, { tokensPerBatch: 8, now: () => t })
  t = 1000; p(1, 3.25)
  t = 2000; p(2, 3.5)
}

test('eval loss on a terminal 20 columns wide: each redraw clears the row and fits it; the last is whole', () => {
  const out = onTerminal(20, evalLines)
  assert.equal(out, '\r\x1b[Keval loss: batch 1/\r\x1b[Keval loss: batch 2/2 | loss 3.5000 | 8 tok/s | ETA 0s\n')
})

test('TERM=dumb: a terminal that cannot redraw gets plain lines, no escape codes', () => {
  const term = process.env['TERM']
  process.env['TERM'] = 'dumb'
  try {
    const out = onTerminal(80, evalLines)
    assert.equal(out, 'eval loss: batch 1/2 | loss 3.2500 | 8 tok/s | ETA 1s\neval loss: batch 2/2 | loss 3.5000 | 8 tok/s | ETA 0s\n')
  } finally {
    if (term === undefined) delete process.env['TERM']
    else process.env['TERM'] = term
  }
  assert.equal(liveProgress({ TERM: 'dumb' }), false)
})
