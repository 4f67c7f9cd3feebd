// Test tooling: what the CUDA suite read back from the device, in order, so that two runs of the suite on the
// emulator under different LLMTS_EMU_SCHEDULE orders can be compared bit for bit (cuda-emu.test.ts). With
// LLMTS_EMU_RECORD=FILE, cuda.test.ts wraps the backend's download, sum and sumSquares; every result is kept with
// the test lines that asked for it and written to FILE (JSON lines: op, size, SHA-256) when the process exits.

import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { CudaBackend } from '../../../src/backend/cuda/index.js'

export interface Reading { at: string; op: string; bytes: number; sha256: string }

/** Where in the tests the current read comes from: the innermost test-file frames (not this file's). */
function caller(): string {
  const frames = (new Error().stack ?? '').split('\n').slice(1)
  const ours = frames.map(f => /\/(?:dist\/)?test\/(.+?\.js):(\d+)/.exec(f)).filter(m => m !== null && !m[1]!.endsWith('record.js'))
  return ours.slice(0, 2).map(m => `${m![1]}:${m![2]}`).join(' < ') || 'unknown'
}

export function recordReadings(file: string): void {
  const readings: Reading[] = []
  const keep = (op: string, data: Uint8Array): void => {
    readings.push({ at: caller(), op, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex').slice(0, 32) })
  }
  const proto = CudaBackend.prototype
  const { download, sum, sumSquares } = proto
  proto.download = function (this: CudaBackend, t) {
    const r = download.call(this, t)
    keep('download', new Uint8Array(r.buffer, r.byteOffset, r.byteLength))
    return r
  }
  const scalar = (op: string, f: typeof sum) => function (this: CudaBackend, t: Parameters<typeof sum>[0]) {
    const r = f.call(this, t)
    keep(op, new Uint8Array(new Float64Array([r]).buffer))
    return r
  }
  proto.sum = scalar('sum', sum)
  proto.sumSquares = scalar('sumSquares', sumSquares)
  process.on('exit', () => { writeFileSync(file, readings.map(r => JSON.stringify(r)).join('\n') + '\n') })
}

export function readReadings(text: string): Reading[] {
  return text.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Reading)
}

/** The first difference between two runs' readings (null: bit-identical), in words. */
export function firstDifference(a: Reading[], b: Reading[]): string | null {
  const same = (x: Reading, y: Reading): boolean => x.at === y.at && x.op === y.op && x.bytes === y.bytes && x.sha256 === y.sha256
  const i = a.findIndex((x, k) => b[k] === undefined || !same(x, b[k]!))
  if (i < 0) return a.length === b.length ? null : `${a.length} readings in one run, ${b.length} in the other`
  const x = a[i]!, y = b[i]!
  if (y === undefined) return `${a.length} readings in one run, ${b.length} in the other`
  if (x.at !== y.at || x.op !== y.op) return `reading ${i}: ${x.op} at ${x.at} in one run, ${y.op} at ${y.at} in the other`
  const differing = a.filter((r, k) => b[k] !== undefined && !same(r, b[k]!)).length
  return `reading ${i} (${x.op} of ${x.bytes} bytes at ${x.at}) differs; ${differing} of ${a.length} readings differ`
}
