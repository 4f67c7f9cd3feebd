// The seeded RNG: reproducible, restorable from its state, and statistically sane (moments of 100k draws).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Rng } from '../../src/util/rng.js'

test('same seed, same stream; restored state continues the stream', () => {
  const a = new Rng(42), b = new Rng(42)
  for (let i = 0; i < 100; i++) assert.equal(a.nextU32(), b.nextU32())
  const saved = a.state()
  const next = [a.normal(), a.uniform(), a.int(10)]
  const c = new Rng(saved)
  assert.deepEqual([c.normal(), c.uniform(), c.int(10)], next)
  assert.notEqual(new Rng(1).nextU32(), new Rng(2).nextU32())
})

test('uniform and normal have the right moments', () => {
  const r = new Rng(3)
  const n = 100_000
  let su = 0, sn = 0, sn2 = 0
  for (let i = 0; i < n; i++) {
    const u = r.uniform()
    assert.ok(u >= 0 && u < 1)
    su += u
    const z = r.normal()
    sn += z
    sn2 += z * z
  }
  assert.ok(Math.abs(su / n - 0.5) < 0.01)
  assert.ok(Math.abs(sn / n) < 0.02)
  assert.ok(Math.abs(sn2 / n - 1) < 0.02)
})

test('shuffle is a permutation', () => {
  const a = new Rng(5).shuffle([...Array(50).keys()])
  assert.deepEqual([...a].sort((x, y) => x - y), [...Array(50).keys()])
})
