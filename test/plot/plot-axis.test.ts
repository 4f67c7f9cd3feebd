// --y-scale log, --y-max and --smooth: the y axis's range against values computed by hand, and the refusals.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { formatValue, renderPlot } from '../../src/plot/plot.js'
import { smoothPoints } from '../../src/plot/smooth.js'
import { InputError } from '../../src/util/errors.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-plot-axis-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

/** A run whose step s logs loss(s), for s = 1..40. */
function makeRun(name: string, loss: (s: number) => number): string {
  const dir = join(root, name)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'log.jsonl'), Array.from({ length: 40 }, (_, i) => JSON.stringify({ step: i + 1, loss: loss(i + 1) }) + '\n').join(''))
  return dir
}

/** The y axis's scale kind and range, as the SVG's aria-label says them. */
function yAxis(svg: string): { scale: string; from: number; to: number } {
  const m = /aria-label="Y-axis[^"]* for a (\w+) scale with values from ([-\d.]+) to ([-\d.]+)"/.exec(svg)
  assert.ok(m, 'the SVG has a y axis')
  return { scale: m[1]!, from: Number(m[2]), to: Number(m[3]) }
}

// losses from 11.25 (a's step 1) down to 3.1 (b's step 40)
const a = makeRun('a', s => 3.25 + 8 / s), b = makeRun('b', s => 3.1 + 8 / s)

test('--y-scale log spans exactly the lowest to the highest value, not the powers of 10 around them', async () => {
  await renderPlot([a, b], join(root, 'log.svg'), { metric: 'loss', x: 'step', yScale: 'log' })
  const y = yAxis(readFileSync(join(root, 'log.svg'), 'utf8'))
  assert.equal(y.scale, 'log')
  assert.ok(Math.abs(y.from - (3.1 + 8 / 40)) < 1e-9 && Math.abs(y.to - 11.25) < 1e-9, `y from ${y.from} to ${y.to}`)
})

test('--y-max cuts the axis there and clips the curves', async () => {
  await renderPlot([a, b], join(root, 'max.svg'), { metric: 'loss', x: 'step', yMax: 4 })
  const svg = readFileSync(join(root, 'max.svg'), 'utf8')
  const y = yAxis(svg)
  assert.equal(y.scale, 'linear')
  assert.ok(y.to === 4 && y.from <= 3.3, `y from ${y.from} to ${y.to}`)
  const clip = /clip-path="url\(#(clip\d+)\)" role="graphics-object" aria-roledescription="line mark container"/.exec(svg)?.[1]
  assert.ok(clip !== undefined, 'the lines have a clip path')
  assert.match(svg, new RegExp(`<clipPath id="${clip}"><rect x="0" y="0" width="720" height="420"/>`), 'the plot area')
})

test('a value at or below 0 on a log axis, and a --y-max below every value, are InputErrors naming run and step', async () => {
  const zero = makeRun('zero', s => (s === 17 ? 0 : 3 + 1 / s))
  const isInput = (re: RegExp) => (e: Error) => e instanceof InputError && re.test(e.message)
  await assert.rejects(renderPlot([a, zero], join(root, 'z.svg'), { metric: 'loss', x: 'step', yScale: 'log' }),
    isInput(/--y-scale log needs values above 0, but run zero's step 17 has loss 0 \(use --y-scale linear\)/))
  await assert.rejects(renderPlot([a, b], join(root, 'm.svg'), { metric: 'loss', x: 'step', yMax: 3 }),
    isInput(/--y-max 3 is at or below every value \(the lowest, 3\.3, is run b's step 40\)/))   // 3.1 + 8/40 = 3.3000000000000003
  assert.equal(existsSync(join(root, 'z.svg')) || existsSync(join(root, 'm.svg')), false, 'nothing written')
})

test('values in messages: 4 decimals as the step lines\' loss, 3 significant digits below 1e-4, never shown under --y-max', async () => {
  assert.equal(formatValue(Math.fround(3.2817459)), '3.2817')   // a float32 loss, 3.2817459106445312 as a double
  assert.equal(formatValue(11), '11')
  assert.equal(formatValue(0), '0')
  assert.equal(formatValue(-1.234567e-7), '-1.23e-7')   // not -0.0000: the log axis refuses it for being below 0
  assert.equal(formatValue(3.281746, 3.28174), '3.28175')   // 3.2817 would read as below the --y-max it is above
  const f32 = makeRun('f32', s => Math.fround(3.2817459 + 1 / s))
  await assert.rejects(renderPlot([f32], join(root, 'f.svg'), { metric: 'loss', x: 'step', yScale: 'log', yMax: 3.2 }),
    (e: Error) => e instanceof InputError && e.message.includes("(the lowest, 3.3067, is run f32's step 40)"))
})

test('--smooth: TensorBoard\'s debiased moving average, by hand for 1, 2, 3 at weight 0.5: 1, 5/3, 17/7', async () => {
  // EMA 0.5, 1.25, 2.125 divided by the debias factors 1 - 0.5^k: 0.5, 0.75, 0.875
  assert.deepEqual(smoothPoints([1, 2, 3].map((y, i) => ({ x: i, y })), 0.5).map(p => p.y), [1, 5 / 3, 17 / 7])
  const raw = [{ x: 1, y: 4 }, { x: 2, y: 2 }]
  assert.equal(smoothPoints(raw, 0), raw, 'weight 0: unchanged')
  const dir = join(root, 'smooth')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'log.jsonl'), [1, 2, 3].map((loss, i) => JSON.stringify({ step: i + 1, loss }) + '\n').join(''))
  await renderPlot([dir], join(root, 'smooth.svg'), { metric: 'loss', x: 'step', yScale: 'log', smooth: 0.5 })
  const y = yAxis(readFileSync(join(root, 'smooth.svg'), 'utf8'))
  assert.ok(y.from === 1 && Math.abs(y.to - 17 / 7) < 1e-9, `the chart's y from ${y.from} to ${y.to}, expected 1 to 17/7 = ${17 / 7}`)
})
