// PyRandom against CPython's own random module (test/fixtures/pyrandom.json, written by
// reference/pyrandom_fixtures.py with /usr/bin/python3): seeding, getrandbits streams across state
// regenerations, getrandbits(k), _randbelow(n), sample() on both sides of the pool/set threshold, and the
// harness's Random(1234).sample(range(39905), k) sequence.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { PyRandom, sampleSetSize } from '../../src/util/pyrandom.js'

interface SampleCase { seed: number; n: number; k: number; setsize?: number; draws: number[][] }
const fx = JSON.parse(readFileSync(resolve(process.cwd(), 'test/fixtures/pyrandom.json'), 'utf8')) as {
  streams: { seed: string; uint32: number[] }[]
  getrandbits: { seed: number; calls: [number, number][] }
  randbelow: { seed: number; calls: [number, number][] }
  sample: SampleCase[]
  harness: SampleCase[]
}

/** The first index where two sequences differ, for a failure message that shows both values. */
function assertSequence(got: number[], want: number[], what: string): void {
  const i = want.findIndex((w, j) => got[j] !== w)
  assert.ok(i < 0 && got.length === want.length, `${what}: call ${i} gave ${got[i]}, Python ${want[i]}`)
}

test('seeding from ints (0, negative, 2^32 boundaries, > 64 bits) and getrandbits(32) streams equal Python', () => {
  assert.ok(fx.streams.some(s => s.uint32.length > 2 * 624), 'one stream crosses two state regenerations')
  for (const s of fx.streams) {
    const r = new PyRandom(BigInt(s.seed))
    assertSequence(s.uint32.map(() => r.getrandbits(32)), s.uint32, `seed ${s.seed}`)
  }
  assert.deepEqual(new PyRandom(1234).getrandbits(32), new PyRandom(1234n).getrandbits(32))
})

test('getrandbits(k) for k = 0..53 and _randbelow(n) for n up to 2^53 - 1 equal Python', () => {
  const g = new PyRandom(fx.getrandbits.seed)
  assertSequence(fx.getrandbits.calls.map(([k]) => g.getrandbits(k)), fx.getrandbits.calls.map(c => c[1]), 'getrandbits')
  const b = new PyRandom(fx.randbelow.seed)
  assertSequence(fx.randbelow.calls.map(([n]) => b.randbelow(n)), fx.randbelow.calls.map(c => c[1]), 'randbelow')
  assert.throws(() => b.getrandbits(54), RangeError)
  assert.throws(() => b.randbelow(0), RangeError)
})

test('sample(): pool branch up to the set-size threshold, set branch above it, consecutive calls', () => {
  const branches = new Set<string>()
  for (const c of fx.sample) {
    assert.equal(sampleSetSize(c.k), c.setsize, `threshold for k ${c.k}`)
    branches.add(c.n <= c.setsize! ? 'pool' : 'set')
    const r = new PyRandom(c.seed)
    c.draws.forEach((want, i) => assertSequence(r.sampleIndices(c.n, c.k), want, `sample(range(${c.n}), ${c.k}) call ${i}`))
  }
  assert.deepEqual([...branches].sort(), ['pool', 'set'])
  const letters = ['a', 'b', 'c', 'd', 'e', 'f']
  const want = new PyRandom(5).sampleIndices(6, 3).map(i => letters[i])
  assert.deepEqual(new PyRandom(5).sample(letters, 3), want)
  assert.throws(() => new PyRandom(1).sampleIndices(3, 4), RangeError)
})

test('the harness pattern: Random(1234).sample(range(39905), k) five times in a row', () => {
  for (const c of fx.harness) {
    const r = new PyRandom(c.seed)
    c.draws.forEach((want, i) => assertSequence(r.sampleIndices(c.n, c.k), want, `call ${i} of sample(range(${c.n}), ${c.k})`))
  }
})
