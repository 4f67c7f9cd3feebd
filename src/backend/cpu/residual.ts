// Residual add. Its backward is the identity (the model hands the same gradient to both branches).

import type { FloatArray } from './types.js'

// out, a, b: (n); out may alias a or b
export function residualForward(out: FloatArray, a: FloatArray, b: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!
}
