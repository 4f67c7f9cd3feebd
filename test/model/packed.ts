// decodePacked's checks, shared by the CPU (gpt.test.ts) and CUDA (cuda-model.ts) suites: groups of different
// prefix lengths (0 included), sequence counts and row lengths, as HellaSwag examples of different lengths are,
// and what each group's losses must be: its own forward's (B, P+T) per-position losses past the prefix, and the
// unbatched path's (decodeShared, then decodeLosses, in a cache of its own).

import type { GPT, PackedGroup } from '../../src/model/gpt.js'
import { Rng } from '../../src/util/rng.js'

/** (P, B, T) of the groups: 5 groups, 275 own rows (more than a cache's 256-row logits scratch: two classifier
 *  chunks), key/value rows up to 32 per sequence. */
const SHAPES: [number, number, number][] = [[8, 4, 24], [0, 2, 10], [3, 3, 5], [12, 4, 20], [5, 4, 16]]

/** The groups, with targets -1 at every 5th position (ignored ones among the scored). */
export function packedGroups(V: number, seed = 11): PackedGroup[] {
  const rng = new Rng(seed)
  return SHAPES.map(([P, B, T]) => ({
    prefix: Int32Array.from({ length: P }, () => rng.int(V)), B, T,
    tokens: Int32Array.from({ length: B * T }, () => rng.int(V)),
    targets: Int32Array.from({ length: B * T }, (_, i) => i % 5 === 0 ? -1 : rng.int(V)),
  }))
}

/** The rows and key/value rows a pool needs for `groups` in one decodePacked. */
export function poolSize(groups: PackedGroup[]): { kvRows: number; rows: number } {
  return { kvRows: groups.reduce((n, g) => n + g.B * (g.prefix.length + g.T), 0),
    rows: groups.reduce((n, g) => n + g.prefix.length + g.B * g.T, 0) }
}

/** A group's losses from one training forward of its full rows (B, P+T) (model: maxBatch >= B, maxSeqLen >= P+T). */
export function forwardRest(model: GPT, g: PackedGroup): Float32Array {
  const P = g.prefix.length, L = P + g.T
  const inputs = new Int32Array(g.B * L), targets = new Int32Array(g.B * L).fill(-1)
  for (let b = 0; b < g.B; b++) {
    inputs.set(g.prefix, b * L)
    inputs.set(g.tokens.subarray(b * g.T, (b + 1) * g.T), b * L + P)
    targets.set(g.targets.subarray(b * g.T, (b + 1) * g.T), b * L + P)
  }
  model.forward(inputs, targets, g.B, L)
  const all = model.lastLosses(), out = new Float32Array(g.B * g.T)
  for (let b = 0; b < g.B; b++) out.set(all.subarray(b * L + P, (b + 1) * L), b * g.T)
  return out
}

/** A group's losses the unbatched way: its prefix once (decodeShared), then its rows (decodeLosses). */
export function sharedRest(model: GPT, g: PackedGroup): Float32Array {
  const cache = model.createCache(g.B, g.prefix.length + g.T)
  try {
    if (g.prefix.length > 0) model.decodeShared(cache, g.prefix, g.prefix.length)
    return model.decodeLosses(cache, g.tokens, g.targets, g.B, g.T)
  } finally {
    model.releaseCache(cache)
  }
}
