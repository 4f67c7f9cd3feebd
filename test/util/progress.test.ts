// RateMeter.eta and the human formats of progress lines: an ETA is unknown (undefined, printed "?") until a rate
// exists and while stalled, never 0; durations switch to hours at 3600 s, counts to "k" at 1000.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatCount, formatDuration, plural, RateMeter } from '../../src/util/progress.js'

test('RateMeter.eta: undefined while the rate is unknown or 0, else remaining / rate', () => {
  let t = 0
  const m = new RateMeter(20_000, () => t)
  assert.equal(m.eta(100), undefined, 'no samples')
  m.add(0)
  t = 100; m.add(500)
  assert.equal(m.eta(100), undefined, 'two samples only 0.1 s apart')
  t = 1000; m.add(2000)                 // 2000 units in 1 s
  assert.equal(m.eta(5000), 2.5)
  assert.equal(m.eta(-10), 0, 'never negative')
  t = 30_000; m.add(2000); t = 50_000; m.add(2000)   // nothing for longer than the window
  assert.equal(m.rate(), 0)
  assert.equal(m.eta(100), undefined, 'stalled: unknown, not 0 s')
})

test('formatDuration: seconds, then minutes and seconds, then hours and minutes from 3600 s', () => {
  assert.equal(formatDuration(undefined), '?')
  assert.equal(formatDuration(Infinity), '?')
  assert.equal(formatDuration(0), '0s')
  assert.equal(formatDuration(59.4), '59s')
  assert.equal(formatDuration(59.6), '1m00s')
  assert.equal(formatDuration(75), '1m15s')
  assert.equal(formatDuration(3599), '59m59s')
  assert.equal(formatDuration(3600), '1h00m')
  assert.equal(formatDuration(2 * 3600 + 5 * 60 + 59), '2h05m')
})

test('formatCount: plain below 1000, then k, M and G', () => {
  assert.equal(formatCount(0), '0')
  assert.equal(formatCount(999), '999')
  assert.equal(formatCount(1000), '1.0k')
  assert.equal(formatCount(1500), '1.5k')
  assert.equal(formatCount(9999), '10.0k')
  assert.equal(formatCount(2_500_000), '2.50M')
  assert.equal(formatCount(1.234e9), '1.23G')
})

test('plural: the noun for a count, one only for exactly 1', () => {
  assert.deepEqual([0, 1, 2].map(n => plural(n, 'step')), ['steps', 'step', 'steps'])
  assert.deepEqual([1, 7].map(n => plural(n, 'batch', 'batches')), ['batch', 'batches'])
})
