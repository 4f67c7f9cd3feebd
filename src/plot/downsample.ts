// Downsampling of a run's curve to the chart's pixel columns (M4: per column, the first, lowest, highest and last
// point, in step order). A line through them draws the same pixels as one through every point: each column still
// spans its lowest to its highest value and joins its neighbours where the full line did. A 100,000-step run is
// at most 4 points per column, so twenty such runs render in seconds instead of minutes and gigabytes.

export interface Point { x: number; y: number }

/** The points (sorted by x) that keep, per column of [x0, x1] cut into `columns` equal parts, the first, lowest,
 *  highest and last; the input itself when it has no more than 4 points per column. */
export function downsampleColumns(points: readonly Point[], x0: number, x1: number, columns: number): readonly Point[] {
  if (points.length <= 4 * columns || !(x1 > x0)) return points
  const out: Point[] = []
  const scale = columns / (x1 - x0)
  let i = 0
  while (i < points.length) {
    const col = columnOf(points[i]!.x, x0, scale, columns)
    let lo = i, hi = i, j = i + 1
    for (; j < points.length && columnOf(points[j]!.x, x0, scale, columns) === col; j++) {
      if (points[j]!.y < points[lo]!.y) lo = j
      if (points[j]!.y > points[hi]!.y) hi = j
    }
    for (const k of [...new Set([i, lo, hi, j - 1])].sort((a, b) => a - b)) out.push(points[k]!)
    i = j
  }
  return out
}

function columnOf(x: number, x0: number, scale: number, columns: number): number {
  return Math.min(columns - 1, Math.max(0, Math.floor((x - x0) * scale)))
}
