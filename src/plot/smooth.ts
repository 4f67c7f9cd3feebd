// TensorBoard's smoothing of a noisy curve: an exponential moving average in step order, debiased so the first
// points are not pulled towards 0 (TensorBoard's own formula, so the same --smooth gives the same curve there).

import type { Point } from './downsample.js'

/** Each point's y replaced by the debiased EMA of the y values up to it; weight 0 returns the points as they are. */
export function smoothPoints(points: readonly Point[], weight: number): readonly Point[] {
  if (weight === 0) return points
  let last = 0
  return points.map((p, i) => {
    last = last * weight + (1 - weight) * p.y
    return { x: p.x, y: last / (1 - weight ** (i + 1)) }
  })
}
