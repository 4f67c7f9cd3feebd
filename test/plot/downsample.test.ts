// downsampleColumns against a brute-force pass over the same columns: every column keeps its first, lowest,
// highest and last point, in order, and nothing else.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { downsampleColumns, type Point } from '../../src/plot/downsample.js'

/** A noisy falling curve at irregular x (gaps, as steps without a logged value leave). */
function curve(n: number): Point[] {
  let seed = 7
  const rand = (): number => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32)
  const pts: Point[] = []
  for (let x = 1; pts.length < n; x += 1 + Math.floor(rand() * 3)) pts.push({ x, y: 3 + 8 / Math.sqrt(x) + rand() - 0.5 })
  return pts
}

test('each column keeps exactly its first, lowest, highest and last point, in x order', () => {
  const pts = curve(20_000), columns = 97
  const x0 = pts[0]!.x, x1 = pts.at(-1)!.x
  const kept = downsampleColumns(pts, x0, x1, columns)
  // brute force: the indices each column must keep
  const want = new Set<number>()
  for (let c = 0; c < columns; c++) {
    const idx = pts.map((p, i) => ({ p, i })).filter(({ p }) => Math.min(columns - 1, Math.floor((p.x - x0) / (x1 - x0) * columns)) === c)
    if (idx.length === 0) continue
    const ys = idx.map(({ p }) => p.y)
    want.add(idx[0]!.i).add(idx.at(-1)!.i)
    want.add(idx[ys.indexOf(Math.min(...ys))]!.i).add(idx[ys.indexOf(Math.max(...ys))]!.i)
  }
  assert.deepEqual(kept, [...want].sort((a, b) => a - b).map(i => pts[i]))
  assert.ok(kept.length <= 4 * columns, `${kept.length} points for ${columns} columns`)
})

test('a curve of at most 4 points per column, or of one x, is drawn whole', () => {
  const pts = curve(400)
  assert.equal(downsampleColumns(pts, pts[0]!.x, pts.at(-1)!.x, 100), pts)
  const flat = [{ x: 5, y: 1 }, { x: 5, y: 2 }, { x: 5, y: 3 }]
  assert.equal(downsampleColumns(flat, 5, 5, 0), flat)
})
