// The seeded fuzz harness of test/faults: byte mutations (truncation, bit flips, special bytes, inserted,
// deleted and duplicated spans, biased toward a file's header), JSON-aware mutations (a value anywhere in the
// document replaced by one of another type, a key dropped or added), and the runner that demands, for every
// case, a normal return or an InputError of one line naming the file, within a time bound.

import assert from 'node:assert/strict'
import { InputError } from '../../src/util/errors.js'
import { Rng } from '../../src/util/rng.js'

const SPECIAL_BYTES = [0x00, 0xff, 0x7f, 0x80, 0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x39, 0x2d, 0x0a, 0x5c]

/** One byte-level mutation of `src`; half of the positions fall in `hot` = [start, end) (default: 64 bytes
 *  at the start; a header, or a footer such as Parquet's), the rest anywhere. */
export function mutateBytes(src: Uint8Array, rng: Rng, hot: [number, number] = [0, 64]): { bytes: Uint8Array; how: string } {
  const pos = (n: number): number => {
    const lo = Math.max(0, Math.min(hot[0], n - 1)), hi = Math.max(lo + 1, Math.min(hot[1], n))
    return rng.uniform() < 0.5 ? lo + rng.int(hi - lo) : rng.int(n)
  }
  const b = Uint8Array.from(src)
  const kind = rng.int(6)
  if (b.length === 0) return { bytes: b, how: 'empty' }
  switch (kind) {
    case 0: { const n = rng.int(b.length); return { bytes: b.subarray(0, n), how: `truncate to ${n}` } }
    case 1: {
      const k = 1 + rng.int(4), at: number[] = []
      for (let i = 0; i < k; i++) { const p = pos(b.length); b[p]! ^= 1 << rng.int(8); at.push(p) }
      return { bytes: b, how: `flip bits at ${at.join(',')}` }
    }
    case 2: { const p = pos(b.length); b[p] = SPECIAL_BYTES[rng.int(SPECIAL_BYTES.length)]!; return { bytes: b, how: `byte ${p} = ${b[p]}` } }
    case 3: {
      const p = pos(b.length), n = 1 + rng.int(16)
      const ins = Uint8Array.from({ length: n }, () => rng.uniform() < 0.5 ? SPECIAL_BYTES[rng.int(SPECIAL_BYTES.length)]! : rng.int(256))
      return { bytes: concat(b.subarray(0, p), ins, b.subarray(p)), how: `insert ${n} at ${p}` }
    }
    case 4: {
      const p = pos(b.length), n = 1 + rng.int(64); return { bytes: concat(b.subarray(0, p), b.subarray(p + n)), how: `delete ${n} at ${p}` }
    }
    default: {
      const p = pos(b.length), n = 1 + rng.int(256)
      return { bytes: concat(b.subarray(0, p), b.subarray(p, p + n), b.subarray(p)), how: `duplicate ${n} at ${p}` }
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let off = 0
  for (const p of parts) { out.set(p, off); off += p.length }
  return out
}

const POOL: unknown[] = [null, true, false, 0, -1, 1, 2, 3, 1.5, -0.5, 7, 64, 1e-9, 2 ** 31, 2 ** 53, 1e300, -1e300, '', 'x', '1',
  'NaN', 'F32', 'llama', 'gpt2', 'rmsnorm', [], {}, [1, 2], [0, 0, 0, 0], { a: 1 }, 'é'.repeat(50)]

/** A value of the pool, or a number near `old` when it is one (off by one, doubled, negated, zero). */
function replacement(old: unknown, rng: Rng): unknown {
  if (typeof old === 'number' && rng.uniform() < 0.4) {
    const f = [(x: number) => x + 1, (x: number) => x - 1, (x: number) => x * 2, (x: number) => -x, () => 0, (x: number) => x / 3]
    return f[rng.int(f.length)]!(old)
  }
  return structuredClone(POOL[rng.int(POOL.length)])
}

/** Every (container, key) in a JSON value, the root's holder included. */
function slots(v: unknown, holder: Record<string | number, unknown>, key: string | number,
               out: [Record<string | number, unknown>, string | number][]): void {
  out.push([holder, key])
  if (typeof v === 'object' && v !== null) {
    for (const [k, c] of Object.entries(v)) slots(c, v as Record<string, unknown>, Array.isArray(v) ? Number(k) : k, out)
  }
}

/** One structural mutation of a JSON value: replace a value, drop a key, add an unknown key, or several. */
export function mutateJson(src: unknown, rng: Rng): { value: unknown; how: string } {
  const root = { v: structuredClone(src) } as Record<string | number, unknown>
  const hows: string[] = []
  for (let m = 1 + (rng.uniform() < 0.2 ? rng.int(3) : 0); m > 0; m--) {
    const all: [Record<string | number, unknown>, string | number][] = []
    slots(root['v'], root, 'v', all)
    const [holder, key] = all[rng.int(all.length)]!
    const r = rng.uniform()
    if (r < 0.15 && holder !== root) {
      if (Array.isArray(holder)) holder.splice(key as number, 1)
      else delete holder[key]
      hows.push(`drop ${key}`)
    } else if (r < 0.25 && typeof holder[key] === 'object' && holder[key] !== null && !Array.isArray(holder[key])) {
      (holder[key] as Record<string, unknown>)['zz_unknown'] = 1
      hows.push(`add key in ${key}`)
    } else {
      holder[key] = replacement(holder[key], rng)
      hows.push(`${key} = ${JSON.stringify(holder[key])?.slice(0, 40)}`)
    }
  }
  return { value: root['v'], how: hows.join('; ') }
}

export interface FuzzStats { cases: number; returned: number; inputErrors: number; maxMs: number }

/** Runs `cases` seeded cases: make(rng, i) writes or returns the input, run() reads it. Every failure to hold
 *  the contract (another exception, a message without `path` or with a newline, a case over maxCaseMs) is
 *  collected, and the first few are reported together. */
export async function fuzz<I>(o: {
  name: string; cases: number; seed: number; path: string; maxCaseMs?: number
  make: (rng: Rng, i: number) => { input: I; how: string }
  run: (input: I) => unknown
}): Promise<FuzzStats> {
  const rng = new Rng(o.seed)
  const stats: FuzzStats = { cases: 0, returned: 0, inputErrors: 0, maxMs: 0 }
  const failures: string[] = []
  for (let i = 0; i < o.cases; i++) {
    const { input, how } = o.make(rng, i)
    const t0 = performance.now()
    try {
      await o.run(input)
      stats.returned++
    } catch (e) {
      const err = e as Error
      if (!(e instanceof InputError)) failures.push(`case ${i} (${how}): ${err.name}: ${err.message}\n` +
        `${err.stack?.split('\n').slice(1, 4).join('\n')}`)
      else if (!err.message.includes(o.path)) failures.push(`case ${i} (${how}): message does not name ${o.path}: ${err.message}`)
      else if (err.message.includes('\n')) failures.push(`case ${i} (${how}): message has several lines: ${JSON.stringify(err.message)}`)
      else stats.inputErrors++
    }
    const ms = performance.now() - t0
    stats.maxMs = Math.max(stats.maxMs, ms)
    if (ms > (o.maxCaseMs ?? 2000)) failures.push(`case ${i} (${how}): took ${ms.toFixed(0)} ms`)
    stats.cases++
  }
  assert.deepEqual(failures.slice(0, 5), [], `${o.name}: ${failures.length} of ${o.cases} cases broke the contract`)
  return stats
}
