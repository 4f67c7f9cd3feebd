// The progress lines of `llmts prepare fineweb` and `llmts download` off a terminal: one line per bar every 10 s,
// and an unknown rate (under two samples 0.2 s apart, as in a short transfer) printed as unknown, not as 0.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Display } from '../../src/data/fineweb/display.js'
import type { DownloadProgress } from '../../src/data/fineweb/download.js'

function captured(fn: () => void): string {
  const write = process.stderr.write.bind(process.stderr), tty = process.stderr.isTTY
  let out = ''
  process.stderr.isTTY = false
  process.stderr.write = ((s: string) => { out += s; return true }) as typeof process.stderr.write
  try { fn() } finally { process.stderr.write = write; process.stderr.isTTY = tty }
  return out
}

test('download lines: the rate and ETA when known, "?" while unknown, at most one line per 10 s', () => {
  const q = (o: Partial<DownloadProgress>): DownloadProgress =>
    ({ files: 1, totalFiles: 2, bytes: 1_000_000, totalBytes: 4_000_000, bytesPerSecond: 0, seconds: 0, ...o })
  const out = captured(() => {
    const d = new Display()
    d.download(q({ seconds: 0.1 }))
    d.download(q({ seconds: 5, bytesPerSecond: 2_000_000, etaSeconds: 1.5 }))   // within 10 s of the last line
    d.download(q({ seconds: 12, bytesPerSecond: 2_000_000, etaSeconds: 1.5 }))
  }).trim().split('\n')
  assert.equal(out.length, 2)
  assert.match(out[0]!, /^download: 25% 1\/2 files, .*, \? B\/s, ETA \?$/)
  assert.match(out[1]!, /^download: 25% .*, 2\.00 MB\/s, ETA 2s$/)
})
