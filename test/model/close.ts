// Tolerance assertions for comparing our float32 results with the float64 PyTorch reference:
// |actual - expected| <= atol + rtol·|expected| elementwise; a failure names the tensor, the worst index
// (the one most over its tolerance), both values and how many elements failed.

import assert from 'node:assert/strict'

export interface Tolerance { atol: number; rtol: number }

export function closeReport(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance):
  { worst: number; excess: number; failures: number; maxAbs: number } {
  let worst = -1, excess = -Infinity, failures = 0, maxAbs = 0
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!
    const diff = Math.abs(a - e)
    const over = Number.isNaN(diff) ? Infinity : diff - (tol.atol + tol.rtol * Math.abs(e))
    if (over > 0) failures++
    if (over > excess) { excess = over; worst = i }
    if (diff > maxAbs) maxAbs = diff
  }
  return { worst, excess, failures, maxAbs }
}

/** Fails with the tensor's name, the worst index and both values. */
export function assertClose(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance): void {
  assert.equal(actual.length, expected.length, `${name}: ${actual.length} values, expected ${expected.length}`)
  const r = closeReport(actual, expected, tol)
  if (r.failures > 0) {
    const i = r.worst
    assert.fail(`${name}: ${r.failures}/${expected.length} values outside atol ${tol.atol} + rtol ${tol.rtol}·|ref|; ` +
      `worst index ${i}: got ${actual[i]}, expected ${expected[i]} (|diff| ${Math.abs(actual[i]! - expected[i]!).toExponential(3)})`)
  }
}

/** Largest |x| of a tensor, for tolerances relative to a tensor's scale. */
export function maxAbs(x: ArrayLike<number>): number {
  let m = 0
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!))
  return m
}
