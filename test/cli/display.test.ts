// The progress lines of `llmts prepare fineweb` and `llmts download` off a terminal: one line per bar every 10 s,
// and an unknown rate (under two samples 0.2 s apart, as in a short transfer) printed as unknown, not as 0;
// a tokenize line says what it waits for in place of an ETA; the last state is printed when the display stops.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Display } from '../../src/cli/display.js'
import type { DownloadProgress } from '../../src/io/hub/download.js'
import type { ShardsProgress } from '../../src/data/fineweb/tokenize.js'
import { RateMeter } from '../../src/util/progress.js'

function captured(fn: () => void): string {
  const write = process.stderr.write.bind(process.stderr), tty = process.stderr.isTTY
  let out = ''
  process.stderr.isTTY = false
  process.stderr.write = ((s: string) => { out += s; return true }) as typeof process.stderr.write
  try { fn() } finally { process.stderr.write = write; process.stderr.isTTY = tty }
  return out
}

test('download lines: the rate and ETA when known, "?" while unknown, 0 for a stall, at most one line per 10 s', () => {
  const q = (o: Partial<DownloadProgress>): DownloadProgress =>
    ({ files: 1, totalFiles: 2, bytes: 1_000_000, totalBytes: 4_000_000, bytesPerSecond: 0, rateKnown: false, seconds: 0, ...o })
  const out = captured(() => {
    const d = new Display()
    d.download(q({ seconds: 0.1 }))
    d.download(q({ seconds: 5, bytesPerSecond: 2_000_000, rateKnown: true, etaSeconds: 1.5 }))   // within 10 s of the last line
    d.download(q({ seconds: 12, bytesPerSecond: 2_000_000, rateKnown: true, etaSeconds: 1.5 }))
    d.download(q({ seconds: 40, rateKnown: true }))   // stalled for the whole window
  }).trim().split('\n')
  assert.equal(out.length, 3)
  assert.match(out[0]!, /^download: 25% 1\/2 files, .*, \? B\/s, ETA \?$/)
  assert.match(out[2]!, /, 0 B\/s, ETA \?$/)
  assert.match(out[1]!, /^download: 25% .*, 2\.00 MB\/s, ETA 2s$/)
})

test('RateMeter: unknown until two samples 0.2 s apart, then bytes over the window (0 when stalled)', () => {
  let t = 0
  const m = new RateMeter(20_000, () => t)
  m.add(0)
  t = 100; m.add(500)
  assert.equal(m.known, false)
  assert.equal(m.rate(), 0)
  t = 1000; m.add(2000)
  assert.equal(m.known, true)
  assert.equal(m.rate(), 2000)
  t = 30_000; m.add(2000); t = 50_000; m.add(2000)   // nothing for longer than the window
  assert.equal(m.known, true)
  assert.equal(m.rate(), 0)
})

test('tokenize lines: "?" tokens/s at rate 0, "waiting for" a download in place of the ETA', () => {
  const q = (o: Partial<ShardsProgress>): ShardsProgress =>
    ({ shards: 2, tokens: 1_500_000, documents: 10, bytes: 500, totalBytes: 1000, tokensPerSecond: 0, seconds: 0, ...o })
  const out = captured(() => {
    const d = new Display()
    d.tokenize(q({ waitingFor: 'train-00001.parquet' }))
    d.tokenize(q({ seconds: 10, tokensPerSecond: 25_000, etaSeconds: 75 }))
    d.tokenize(q({ seconds: 20, tokensPerSecond: 25_000, waitingFor: 'train-00002.parquet' }))
    d.tokenize(q({ seconds: 30, shards: 1, tokensPerSecond: 25_000, etaSeconds: 75 }))
  }).trim().split('\n')
  assert.deepEqual(out, [
    'tokenize: 50% 2 shards, 1.50M tokens, ? tokens/s, waiting for train-00001.parquet',
    'tokenize: 50% 2 shards, 1.50M tokens, 25.0k tokens/s, ETA 1m15s',
    'tokenize: 50% 2 shards, 1.50M tokens, 25.0k tokens/s, waiting for train-00002.parquet',
    'tokenize: 50% 1 shard, 1.50M tokens, 25.0k tokens/s, ETA 1m15s',
  ])
})

test('stop() prints each bar\'s last state when its line was held back by the 10 s limit, and nothing twice', () => {
  const q = (files: number, seconds: number): DownloadProgress =>
    ({ files, totalFiles: 4, bytes: files * 1000, totalBytes: 4000, bytesPerSecond: 0, rateKnown: false, seconds })
  const out = captured(() => {
    const d = new Display()
    d.download(q(1, 0))
    d.download(q(3, 1))
    d.download(q(4, 2))   // the end of a short transfer: held back, printed by stop()
    d.stop()
    d.stop()
  }).trim().split('\n')
  assert.deepEqual(out, ['download: 25% 1/4 files, 1.00 kB of 4.00 kB, ? B/s, ETA ?', 'download: 100% 4/4 files, 4.00 kB of 4.00 kB, ? B/s, ETA ?'])
  const printed = captured(() => { const d = new Display(); d.download(q(4, 0)); d.stop() }).trim().split('\n')
  assert.equal(printed.length, 1, 'a state already printed is not printed again')
  // a line held back, then overtaken by one printed 10 s on: stop() has nothing left to print (not the stale one)
  const overtaken = captured(() => { const d = new Display(); d.download(q(1, 0)); d.download(q(2, 1)); d.download(q(4, 11)); d.stop() })
  assert.deepEqual(overtaken.trim().split('\n').map(l => l.split(' files')[0]), ['download: 25% 1/4', 'download: 100% 4/4'])
})
