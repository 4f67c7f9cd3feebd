// Fused softmax + cross-entropy on the WebAssembly SIMD kernels (kernels.wat): the same contract as
// ../crossentropy.ts (real columns only, padded columns 0, target < 0 ignored, loss = log Σexp + max - logit),
// with float32 exponentials summed in float64. Each row is copied into module memory and back (memcpy speed):
// the vector loops there beat JS loops over the row by 3-5×.

import type { KernelInstance } from './module.js'

const ROW = 16   // float offset of the row buffer in module memory (past nothing else we keep there)

// losses: (N)   probs, logits: (N,Vp), probs may alias logits   targets: (N)
export function crossEntropyForwardWasm(k: KernelInstance, losses: Float32Array, probs: Float32Array, logits: Float32Array,
                                        targets: Int32Array, N: number, V: number, Vp: number): void {
  const mem = k.reserve(ROW + V)
  for (let n = 0; n < N; n++) {
    const r = n * Vp, target = targets[n]!
    if (target >= V) throw new Error(`crossEntropyForward: target ${target} at row ${n} is not below V = ${V}`)
    const targetLogit = target < 0 ? 0 : logits[r + target]!
    mem.set(logits.subarray(r, r + V), ROW)
    const max = k.x.vmax(ROW * 4, V)
    const sum = k.x.vexp_sum(ROW * 4, V, 1, max)
    losses[n] = target < 0 ? 0 : Math.log(sum) + max - targetLogit
    k.x.vscale(ROW * 4, V, 1 / sum)
    probs.set(mem.subarray(ROW, ROW + V), r)
    probs.fill(0, r + V, r + Vp)
  }
}

// dlogits, probs: (N,Vp), dlogits may alias probs (OVERWRITTEN)   targets: (N). dlogits = (probs - onehot)·scale.
export function crossEntropyBackwardWasm(k: KernelInstance, dlogits: Float32Array, probs: Float32Array, targets: Int32Array,
                                         dlossScale: number, N: number, V: number, Vp: number): void {
  const mem = k.reserve(ROW + V)
  for (let n = 0; n < N; n++) {
    const r = n * Vp, target = targets[n]!
    if (target < 0) { dlogits.fill(0, r, r + Vp); continue }
    const pTarget = probs[r + target]!   // read before the row is overwritten (dlogits may alias probs)
    mem.set(probs.subarray(r, r + V), ROW)
    k.x.vscale(ROW * 4, V, dlossScale)
    dlogits.set(mem.subarray(ROW, ROW + V), r)
    dlogits[r + target] = (pTarget - 1) * dlossScale
    dlogits.fill(0, r + V, r + Vp)
  }
}
