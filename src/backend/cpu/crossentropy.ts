// Fused softmax + cross-entropy over the padded vocabulary: only the first V of Vp columns take part (padded
// columns get probability 0 and gradient 0), a target < 0 marks an ignored row (loss 0, gradient 0).
// The loss is log(Σ exp) + max - logit[target] in float64, not -log of a rounded probability.

import type { FloatArray } from './types.js'

// losses: (N)   probs, logits: (N,Vp), probs may alias logits   targets: (N)
export function crossEntropyForward(losses: FloatArray, probs: FloatArray, logits: FloatArray, targets: Int32Array,
                                    N: number, V: number, Vp: number): void {
  for (let n = 0; n < N; n++) {
    const r = n * Vp, target = targets[n]!
    if (target >= V) throw new Error(`crossEntropyForward: target ${target} at row ${n} is not below V = ${V}`)
    let max = -Infinity
    for (let j = 0; j < V; j++) { const x = logits[r + j]!; if (x > max) max = x }
    // read the target logit before probs (which may alias logits) overwrite it
    const targetLogit = target < 0 ? 0 : logits[r + target]!
    let sum = 0
    for (let j = 0; j < V; j++) { const e = Math.exp(logits[r + j]! - max); probs[r + j] = e; sum += e }
    losses[n] = target < 0 ? 0 : Math.log(sum) + max - targetLogit
    const inv = 1 / sum
    for (let j = 0; j < V; j++) probs[r + j] *= inv
    probs.fill(0, r + V, r + Vp)
  }
}

// dlogits, probs: (N,Vp), dlogits may alias probs (OVERWRITTEN, not accumulated)   targets: (N)
export function crossEntropyBackward(dlogits: FloatArray, probs: FloatArray, targets: Int32Array, dlossScale: number,
                                     N: number, V: number, Vp: number): void {
  for (let n = 0; n < N; n++) {
    const r = n * Vp, target = targets[n]!
    if (target < 0) { dlogits.fill(0, r, r + Vp); continue }
    const pTarget = probs[r + target]!   // read before the row is overwritten (dlogits may alias probs)
    for (let j = 0; j < V; j++) dlogits[r + j] = probs[r + j]! * dlossScale
    dlogits[r + target] = (pTarget - 1) * dlossScale
    dlogits.fill(0, r + V, r + Vp)
  }
}
