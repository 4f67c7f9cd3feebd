// AdamW with PyTorch's semantics (decoupled weight decay, bias-corrected moments, eps outside the sqrt),
// plus a gradient scale applied first (global-norm clipping). The update is computed in float64 per element.

import type { AdamWOptions } from '../backend.js'
import type { FloatArray } from './types.js'

// params, grads, m, v: (n)
export function adamwUpdate(params: FloatArray, grads: FloatArray, m: FloatArray, v: FloatArray, n: number,
                            opts: AdamWOptions): void {
  const { lr, beta1, beta2, eps, weightDecay, step, gradScale } = opts
  const bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step)
  for (let i = 0; i < n; i++) {
    const g = grads[i]! * gradScale
    const mi = beta1 * m[i]! + (1 - beta1) * g
    const vi = beta2 * v[i]! + (1 - beta2) * g * g
    m[i] = mi
    v[i] = vi
    const p = params[i]!
    params[i] = p - lr * ((mi / bc1) / (Math.sqrt(vi / bc2) + eps) + weightDecay * p)
  }
}
