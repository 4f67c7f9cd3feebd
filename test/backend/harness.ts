// What every conformance test needs from a backend: upload/download through the Backend contract only (so a
// device backend runs the suite unchanged), gradient buffers pre-filled with "prior" values (every backward
// must ACCUMULATE onto them), and tolerance checks scaled per tensor. Priors are a fixed pattern, not drawn
// from a shared generator, so one test's early failure cannot change the data of the next.

import type { Backend, IntTensor, Tensor } from '../../src/backend/backend.js'
import { assertClose, scaleTol, type Tolerance } from './compare.js'

export interface Prior { t: Tensor; values: Float32Array }

export class Harness {
  constructor(readonly be: Backend, readonly tol: Tolerance) {}

  up(a: Float32Array): Tensor {
    const t = this.be.alloc(a.length)
    this.be.upload(t, a)
    return t
  }
  upInt(a: Int32Array): IntTensor {
    const t = this.be.allocInt(a.length)
    this.be.uploadInt(t, a)
    return t
  }
  down(t: Tensor): Float32Array { return this.be.download(t) }

  /** A gradient buffer already holding values in [-1, 1], to check that a backward op accumulates (+=). */
  prior(n: number): Prior {
    const values = new Float32Array(n)
    for (let i = 0; i < n; i++) values[i] = Math.sin(1.7 * i + 0.3 * n)
    return { t: this.up(values), values }
  }

  /** Compares a tensor with the reference; k scales the tolerance for that tensor (reason at the call). */
  check(label: string, t: Tensor, want: Float32Array, k = 1): void {
    assertClose(label, this.down(t), want, scaleTol(this.tol, k))
  }
  /**
   * A gradient accumulated onto a prior: (result - prior), exact in float64, must match want with the tolerance
   * relative to want itself (an op that overwrote instead of accumulating fails by the size of the prior).
   */
  checkGrad(label: string, p: Prior, want: Float32Array, k = 1): void {
    const got = this.down(p.t)
    const delta = new Float64Array(got.length)
    for (let i = 0; i < got.length; i++) delta[i] = got[i]! - p.values[i]!
    assertClose(`${label} (accumulated: result - prior)`, delta, want, scaleTol(this.tol, k))
  }
}
