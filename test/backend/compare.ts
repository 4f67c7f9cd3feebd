// Tolerance comparison for golden tests: |got - want| <= atol + rtol·|want| elementwise, and on failure a
// message with the worst index and both values (NaN and length mismatches always fail).

import assert from 'node:assert/strict'

export interface Tolerance { rtol: number; atol: number }

/** tol with both bounds multiplied by k (for a tensor whose computation is longer or less well conditioned). */
export function scaleTol(tol: Tolerance, k: number): Tolerance {
  return { rtol: tol.rtol * k, atol: tol.atol * k }
}

export function assertClose(label: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance): void {
  assert.equal(got.length, want.length, `${label}: length ${got.length}, expected ${want.length}`)
  let worst = 0, worstScore = -1, bad = 0
  for (let i = 0; i < want.length; i++) {
    const ratio = Math.abs(got[i]! - want[i]!) / (tol.atol + tol.rtol * Math.abs(want[i]!))
    if (!(ratio <= 1)) bad++                       // NaN fails too
    const score = Number.isNaN(ratio) ? Infinity : ratio
    if (score > worstScore) { worst = i; worstScore = score }
  }
  if (bad > 0) {
    const g = got[worst]!, w = want[worst]!
    assert.fail(`${label}: ${bad} of ${want.length} values outside atol ${tol.atol} + rtol ${tol.rtol}·|ref|; ` +
      `worst at index ${worst}: got ${g}, expected ${w} (|diff| ${Math.abs(g - w).toExponential(3)})`)
  }
}

/** Elementwise a + b in float64 (the expected values of an accumulating backward). */
export function addArrays(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const out = new Float64Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i]! + b[i]!
  return out
}
