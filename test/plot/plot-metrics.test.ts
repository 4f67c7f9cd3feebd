// --metric lr, grad_norm and tokens_per_s: the step lines' values from a hand-written log.jsonl (the dots' labels and
// the line's vertices against the values placed on the y axis by hand), titles, legend corners, the learning rate
// written with an exponent on the axis and in the refusals, null values left out and counted, logs without the key.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { formatValue, renderPlot } from '../../src/plot/plot.js'
import { collectSeries } from '../../src/plot/runs.js'
import { InputError } from '../../src/util/errors.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-plot-metrics-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))

/** A run directory whose log.jsonl is these lines. */
function makeRun(name: string, lines: object[]): string {
  const dir = join(root, name)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'log.jsonl'), lines.map(l => JSON.stringify(l) + '\n').join(''))
  return dir
}

// step lines as the trainer writes them (a NaN gradient norm is null in JSON), between a validation and a HellaSwag
// line, which have none of the three keys
const sched = makeRun('sched', [
  { step: 0, val_loss: 11 },
  { step: 1, loss: 9, lr: 2e-4, grad_norm: 4, tokens: 100, tokens_per_s: 50000.4, ms: 2 },
  { step: 2, loss: 8, lr: 4e-4, grad_norm: null, tokens: 200, tokens_per_s: 100000, ms: 1 },
  { step: 2, val_loss: 8.5 },
  { step: 3, loss: 7, lr: 6e-4, grad_norm: 1, tokens: 300, tokens_per_s: 99000, ms: 1 },
  { step: 4, loss: 6, lr: 3e-4, grad_norm: 2, tokens: 400, tokens_per_s: 101000, ms: 1 },
  { step: 4, hellaswag_acc_norm: 0.26, hellaswag_scoring: 'harness', hellaswag_shots: 0 },
])

/** The y axis's range, from its aria-label (written in the axis's format: "2e-4" for a learning rate). */
function yDomain(svg: string): [number, number] {
  const m = /aria-label="Y-axis[^"]* with values from ([^ ]+) to ([^ "]+)"/.exec(svg)
  assert.ok(m, 'the SVG has a y axis')
  return [Number(m[1]!.replace(/,/g, '')), Number(m[2]!.replace(/,/g, ''))]
}

/** The y axis's tick labels, in order. */
function yTicks(svg: string, title: string): string[] {
  const texts = [...svg.slice(svg.indexOf('aria-label="Y-axis')).matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map(m => m[1]!)
  return texts.slice(0, texts.indexOf(title))
}

/** The one line's vertices, in pixels of the 720 × 420 plot. */
function vertices(svg: string): [number, number][] {
  const d = /aria-roledescription="line mark" d="([^"]*)"/.exec(svg)?.[1] ?? ''
  return [...d.matchAll(/[ML]([-\d.]+),([-\d.]+)/g)].map(m => [Number(m[1]), Number(m[2])])
}

/** The dots' labels ("step: 1; learning rate: 2e-4; run: sched"), in order. */
function dots(svg: string): string[] {
  return [...svg.matchAll(/aria-label="([^"]*)"[^>]*aria-roledescription="point"|aria-roledescription="point"[^>]*aria-label="([^"]*)"/g)]
    .map(m => m[1] ?? m[2]!)
}

/** The legend's top edge (its first translate). */
function legendY(svg: string): number {
  const m = /aria-roledescription="legend"[^>]*><g transform="translate\([\d.]+,([\d.]+)\)"/.exec(svg)
  assert.ok(m, 'the SVG has a legend')
  return Number(m[1])
}

const cases = [
  { metric: 'lr', title: 'learning rate', steps: [1, 2, 3, 4], values: [2e-4, 4e-4, 6e-4, 3e-4], shown: ['2e-4', '4e-4', '6e-4', '3e-4'], legend: 'top' },
  { metric: 'grad_norm', title: 'gradient norm (before clipping)', steps: [1, 3, 4], values: [4, 1, 2], shown: ['4', '1', '2'], legend: 'top' },
  { metric: 'tokens_per_s', title: 'tokens/s', steps: [1, 2, 3, 4], values: [50000.4, 100000, 99000, 101000],
    shown: ['50000.4', '100000', '99000', '101000'], legend: 'bottom' },
] as const

test('lr, grad_norm and tokens_per_s: the step lines\' values (a null left out), titled, the legend where the curves are not', async () => {
  for (const c of cases) {
    const [s] = collectSeries([sched], c.metric, 'step')
    assert.deepEqual(s!.points, c.steps.map((x, i) => ({ x, y: c.values[i]! })), c.metric)
    assert.equal(s!.nonFinite, c.metric === 'grad_norm' ? 1 : 0, c.metric)
    const out = join(root, `${c.metric}.svg`)
    await renderPlot([sched], out, { metric: c.metric, x: 'step' })
    const svg = readFileSync(out, 'utf8')
    assert.match(svg, new RegExp(`aria-label="Title text '${c.title.replace(/[()]/g, '\\$&')} by step'"`), c.metric)
    assert.deepEqual(dots(svg), c.steps.map((x, i) => `step: ${x}; ${c.title}: ${c.shown[i]}; run: sched`))
    // each vertex is its value on the axis: x from step 1 (0 px) to 4 (720 px), y from the top of the range (0 px) down
    const [lo, hi] = yDomain(svg)
    const want = c.steps.map((x, i) => [(x - 1) * 240, (hi - c.values[i]!) / (hi - lo) * 420])
    const got = vertices(svg)
    assert.equal(got.length, want.length, `${c.metric}: ${JSON.stringify(got)}`)
    got.forEach(([x, y], i) => assert.ok(Math.abs(x - want[i]![0]!) < 0.01 && Math.abs(y - want[i]![1]!) < 0.01,
      `${c.metric} vertex ${i}: (${x}, ${y}), expected (${want[i]!.join(', ')}) on y ${lo}..${hi}`))
    const top = legendY(svg) < 420 / 4, bottom = legendY(svg) > 420 / 2
    assert.ok(c.legend === 'top' ? top : bottom, `${c.metric}: legend at y=${legendY(svg)}, expected at the ${c.legend}`)
  }
})

test('the learning rate has an exponent on the axis and in the refusals; the other metrics keep their formats', async () => {
  const svg = readFileSync(join(root, 'lr.svg'), 'utf8')
  const ticks = yTicks(svg, 'learning rate')
  assert.ok(ticks.length >= 3 && ticks.every(t => /^\d(\.\d+)?e-4$/.test(t)), ticks.join(' '))
  assert.equal(formatValue(1.2e-3, -Infinity, 'lr'), '1.20e-3')
  assert.equal(formatValue(3e-5, -Infinity, 'lr'), '3.00e-5')
  assert.equal(formatValue(2.0004e-4, 2.0001e-4, 'lr'), '2.0004e-4')   // 2.00e-4 would read as below the --y-max
  assert.equal(formatValue(0, -Infinity, 'lr'), '0')
  assert.equal(formatValue(1.2e-3), '0.0012', 'a loss keeps its 4 decimals')
  assert.equal(formatValue(2.5, -Infinity, 'grad_norm'), '2.5')
  assert.equal(formatValue(50000.4, -Infinity, 'tokens_per_s'), '50000', 'whole tokens/s')
  assert.equal(formatValue(50000.4, 50000.2, 'tokens_per_s'), '50000.4')
  const isInput = (text: string) => (e: Error) => e instanceof InputError && e.message === text
  await assert.rejects(renderPlot([sched], join(root, 'm.svg'), { metric: 'lr', x: 'step', yMax: 1e-4 }),
    isInput("plot: --y-max 1e-4 is at or below every value (the lowest, 2.00e-4, is run sched's step 1); expected a larger one"))
  await assert.rejects(renderPlot([sched], join(root, 'm.svg'), { metric: 'tokens_per_s', x: 'step', yMax: 50000 }),
    isInput("plot: --y-max 50000 is at or below every value (the lowest, 50000, is run sched's step 1); expected a larger one"))
  const warm = makeRun('warm-from-0', [{ step: 1, loss: 9, lr: 0 }, { step: 2, loss: 8, lr: 1.5e-5 }])
  await assert.rejects(renderPlot([sched, warm], join(root, 'l.svg'), { metric: 'lr', x: 'step', yScale: 'log' }),
    isInput("plot: --y-scale log needs values above 0, but run warm-from-0's step 1 has lr 0 (use --y-scale linear)"))
  await renderPlot([warm], join(root, 'warm.svg'), { metric: 'lr', x: 'step' })
  assert.equal(yTicks(readFileSync(join(root, 'warm.svg'), 'utf8'), 'learning rate')[0], '0', 'not 0e+0')
  const bad = makeRun('negative', [{ step: 1, loss: 9, lr: 2e-5 }, { step: 2, loss: 8, lr: -1.5e-5 }])   // a schedule's bug
  await assert.rejects(renderPlot([bad], join(root, 'l.svg'), { metric: 'lr', x: 'step', yScale: 'log' }),
    isInput("plot: --y-scale log needs values above 0, but run negative's step 2 has lr -1.50e-5 (use --y-scale linear)"))
  const r = spawnSync(process.execPath, [main, 'plot', sched, '--out', join(root, 'm.svg'), '--metric', 'lr', '--y-max', '0.00001'], { encoding: 'utf8' })
  assert.equal(r.status, 2, r.stderr)
  assert.equal(r.stderr, "llmts plot: --y-max 1e-5 is at or below every value (the lowest, 2.00e-4, is run sched's step 1); expected a larger one\n")
})

test('CLI: a null grad_norm is a note and non_finite in --json; a log without the key says it has no values', async () => {
  const r = spawnSync(process.execPath, [main, 'plot', sched, '--out', join(root, 'g.svg'), '--metric', 'grad_norm', '--json'], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(JSON.parse(r.stdout), { out: join(root, 'g.svg'), format: 'svg', metric: 'grad_norm', x: 'step',
    runs: [{ label: 'sched', points: 3, non_finite: 1 }] })
  assert.equal(r.stderr, 'llmts plot: note: run sched: 1 step logged a non-finite grad_norm (null in log.jsonl); left out\n')
  const old = makeRun('old', [{ step: 1, loss: 9 }, { step: 1, val_loss: 9.5 }])   // step lines of another trainer
  for (const metric of ['lr', 'grad_norm', 'tokens_per_s'] as const) {
    await assert.rejects(renderPlot([sched, old], join(root, 'o.svg'), { metric, x: 'step' }), (e: Error) => e instanceof InputError &&
      e.message === `plot: run old (${old}) has no "${metric}" values in log.jsonl (try another --metric)`)
  }
  const diverged = makeRun('diverged', [{ step: 1, loss: null, grad_norm: null }, { step: 2, loss: null, grad_norm: null }])
  await assert.rejects(renderPlot([diverged], join(root, 'o.svg'), { metric: 'grad_norm', x: 'step' }),
    (e: Error) => e instanceof InputError && /run diverged .* has no "grad_norm" values other than 2 non-finite ones in log\.jsonl/.test(e.message))
})
