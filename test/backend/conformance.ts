// The op-level conformance suite, written once for every backend: runConformance(name, make, tol) registers
// node:test tests that drive a Backend through upload/download only and compare each op, forward and backward,
// with PyTorch golden values (test/fixtures/ops, written by reference/ops_reference.py in float64).
// Backends pass their own tolerance; a few tensors scale it, with the reason next to the check.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { Backend } from '../../src/backend/backend.js'
import type { Tolerance } from './compare.js'
import { Harness } from './harness.js'
import { registerLayerOps } from './conformance-layers.js'
import { registerSequenceOps } from './conformance-sequence.js'

export type { Tolerance } from './compare.js'

export function runConformance(name: string, make: () => Backend, tol: Tolerance): void {
  let harness: Harness | undefined
  const h = (): Harness => (harness ??= new Harness(make(), tol))
  describe(`backend conformance: ${name}`, () => {
    registerMemoryOps(h)
    registerLayerOps(h)
    registerSequenceOps(h)
  })
}

function registerMemoryOps(h: () => Harness): void {
  test('memory: alloc is zero-filled; upload/download round-trip; download is a copy', () => {
    const { be } = h()
    assert.deepEqual(be.download(be.alloc(5)), new Float32Array(5))
    const src = new Float32Array([1.5, -2, 3.25, 0, 7])
    const t = h().up(src)
    const got = be.download(t)
    assert.deepEqual(got, src)
    got[0] = 99
    assert.equal(be.download(t)[0], 1.5, 'download must return a copy')
  })

  test('memory: views share storage; zero and copy touch only their range', () => {
    const { be } = h()
    const base = h().up(new Float32Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]))
    const v = be.view(base, 3, 4)
    assert.equal(v.length, 4)
    assert.deepEqual(be.download(v), new Float32Array([3, 4, 5, 6]))
    be.upload(be.view(v, 1, 2), new Float32Array([-4, -5]))           // a view of a view writes through
    assert.deepEqual(be.download(base), new Float32Array([0, 1, 2, 3, -4, -5, 6, 7, 8, 9]))
    be.zero(be.view(base, 0, 2))
    be.copy(be.view(base, 8, 2), be.view(base, 3, 2))
    assert.deepEqual(be.download(base), new Float32Array([0, 0, 2, 3, -4, -5, 6, 7, 3, -4]))
  })

  test('memory: sum and sumSquares accumulate in float64 (2^24 + 1000 ones is exact)', () => {
    const { be } = h()
    const a = new Float32Array(1001).fill(1)
    a[0] = 2 ** 24                                                      // float32 accumulation would stay at 2^24
    const t = h().up(a)
    assert.equal(be.sum(t), 2 ** 24 + 1000)
    assert.equal(be.sumSquares(t), 2 ** 48 + 1000)
    assert.equal(be.sumSquares(be.view(t, 1, 10)), 10)
    const r = new Float32Array(777)
    for (let i = 0; i < r.length; i++) r[i] = Math.cos(i)
    let want = 0
    for (const x of r) want += x * x
    const got = be.sumSquares(h().up(r))
    assert.ok(Math.abs(got - want) <= 1e-9 * want, `sumSquares ${got}, expected ${want}`)
  })
}
