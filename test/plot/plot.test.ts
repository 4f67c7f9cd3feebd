// Plots from fabricated run directories: SVG and PNG files (format, size, labels, axis domains, legend), the
// series read from log.jsonl/config.json, and one-line InputErrors (exit 2 through the CLI) for bad inputs.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync, readdirSync, lstatSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Resvg } from '@resvg/resvg-js'
import { outputFormat, renderPlot } from '../../src/plot/plot.js'
import { collectSeries } from '../../src/plot/runs.js'
import { InputError } from '../../src/util/errors.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-plot-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

/** A run directory with `steps` training lines, val_loss every 10 steps and optional hellaswag lines. */
function makeRun(name: string,
                 opts: { steps: number; offset: number; totalBatchSize?: number; flat?: boolean; hellaswag?: boolean; val?: boolean }): string {
  const dir = join(root, name)
  mkdirSync(dir, { recursive: true })
  const lines: string[] = []
  for (let s = 1; s <= opts.steps; s++) {
    lines.push(JSON.stringify({ step: s, loss: 11 / Math.sqrt(s) + opts.offset, lr: 1e-3, grad_norm: 1, tokens_per_s: 1000, ms: 5 }))
    if ((opts.val ?? true) && s % 10 === 0) lines.push(JSON.stringify({ step: s, val_loss: 10 / Math.sqrt(s) + opts.offset }))
    if (opts.hellaswag && s % 20 === 0) {
      lines.push(JSON.stringify({ step: s, hellaswag_acc_norm: 0.25 + s / 1000, hellaswag_scoring: 'harness', hellaswag_shots: 10 }))
    }
  }
  writeFileSync(join(dir, 'log.jsonl'), lines.join('\n') + '\n')
  // config.json as llmts train writes it (the train config one level down), or flat (opts.flat)
  const train = { totalBatchSize: opts.totalBatchSize, lr: 1e-3 }
  if (opts.totalBatchSize !== undefined) {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(opts.flat === true ? train : { model: { layers: 2 }, train, gradAccum: 1 }))
  }
  return dir
}

const gpt2 = makeRun('gpt2-run', { steps: 40, offset: 0.3, totalBatchSize: 8192, hellaswag: true })
const variant = makeRun('variant-run', { steps: 40, offset: 0, totalBatchSize: 4096, flat: true, hellaswag: true })

function xAxisLabel(svg: string): string {
  const m = /aria-label="(X-axis[^"]*)"/.exec(svg)
  assert.ok(m, 'the SVG has an x axis')
  return m[1]!
}

test('SVG: parses, names both runs in the legend, titles the axes, one line per run', async () => {
  const out = join(root, 'loss.svg')
  const summary = await renderPlot([gpt2, variant], out, { metric: 'loss', x: 'step' })
  assert.deepEqual(summary.runs, [{ label: 'gpt2-run', points: 40, nonFinite: 0 }, { label: 'variant-run', points: 40, nonFinite: 0 }])
  const svg = readFileSync(out, 'utf8')
  assert.ok(svg.startsWith('<svg'), 'file starts with <svg')
  const parsed = new Resvg(svg) // roxmltree underneath: throws on malformed XML
  assert.ok(parsed.width > 600 && parsed.height > 400, `size ${parsed.width}x${parsed.height}`)
  assert.ok(svg.length > 5000, `SVG has ${svg.length} bytes`)
  assert.match(svg, />gpt2-run</)
  assert.match(svg, />variant-run</)
  assert.match(svg, />training loss by step</)
  assert.equal(svg.match(/aria-roledescription="line mark container"/g)?.length, 2)
  assert.match(xAxisLabel(svg), /titled 'step' .* from 0 to 40/)
  assert.deepEqual(readdirSync(root).filter(f => f.includes('.tmp')), [], 'no temp file left behind')
})

test('PNG: signature, IHDR size twice the SVG size, non-trivial content', async () => {
  const out = join(root, 'sub', 'dir', 'val.png')
  await renderPlot([gpt2, variant], out, { metric: 'val_loss', x: 'step' })
  const png = readFileSync(out)
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  assert.equal(png.toString('latin1', 12, 16), 'IHDR')
  const w = png.readUInt32BE(16), h = png.readUInt32BE(20)
  const svgOut = join(root, 'val.svg')
  await renderPlot([gpt2, variant], svgOut, { metric: 'val_loss', x: 'step' })
  assert.match(readFileSync(svgOut, 'utf8'), /validation loss/, 'the y axis names the metric')
  const ref = new Resvg(readFileSync(svgOut, 'utf8'))
  assert.equal(w, 2 * ref.width)
  assert.equal(h, 2 * ref.height)
  assert.ok(png.length > 20_000, `PNG has ${png.length} bytes`)
})

test('--x tokens scales steps by config.json totalBatchSize', async () => {
  const series = collectSeries([gpt2], 'loss', 'tokens')
  assert.equal(series[0]!.points.length, 40)
  assert.deepEqual(series[0]!.points[2], { x: 3 * 8192, y: 11 / Math.sqrt(3) + 0.3 })
  assert.deepEqual(collectSeries([variant], 'loss', 'tokens')[0]!.points[2], { x: 3 * 4096, y: 11 / Math.sqrt(3) })
  const out = join(root, 'tokens.svg')
  await renderPlot([gpt2, variant], out, { metric: 'loss', x: 'tokens' })
  const svg = readFileSync(out, 'utf8')
  assert.match(xAxisLabel(svg), /titled 'tokens' .* from 0k? to 3[45]0k/)
  assert.match(svg, />300k</)
})

test('val_loss and hellaswag series pick their own lines; hellaswag names scoring and shots', async () => {
  assert.deepEqual(collectSeries([gpt2], 'val_loss', 'step')[0]!.points.map(p => p.x), [10, 20, 30, 40])
  const hs = collectSeries([gpt2], 'hellaswag', 'step')[0]!
  assert.deepEqual(hs.points, [{ x: 20, y: 0.27 }, { x: 40, y: 0.29 }])
  const out = join(root, 'hs.svg')
  await renderPlot([gpt2, variant], out, { metric: 'hellaswag', x: 'step' })
  assert.match(readFileSync(out, 'utf8'), /HellaSwag acc_norm \(harness scoring, 10-shot\)/)
})

test('run names are widened until each is its own (parent/name, ...); a run given twice is refused', () => {
  const a = makeRun(join('x', 'run'), { steps: 3, offset: 0 })
  const b = makeRun(join('y', 'run'), { steps: 3, offset: 0 })
  const c = makeRun(join('sweep1', 'runs', 'lr'), { steps: 3, offset: 0 })
  const d = makeRun(join('sweep2', 'runs', 'lr'), { steps: 3, offset: 0 })
  assert.deepEqual(collectSeries([a, b, c, d, gpt2], 'loss', 'step').map(s => s.label),
    ['x/run', 'y/run', 'sweep1/runs/lr', 'sweep2/runs/lr', 'gpt2-run'])
  assert.throws(() => collectSeries([gpt2, variant, `${gpt2}/.`], 'loss', 'step'),
    (e: Error) => e instanceof InputError && /run directory .*gpt2-run[/\\]\. is given twice \(also as .*gpt2-run\)/.test(e.message))
})

/** The x axis's tick labels, in order (the SVG text between the axis's aria-label and its title). */
function xTicks(svg: string): string[] {
  const from = svg.indexOf('aria-label="X-axis')
  const texts = [...svg.slice(from).matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map(m => m[1]!)
  return texts.slice(0, texts.indexOf('step'))
}

test('short runs: integer steps only on the x axis; a one-point run next to a long one is a visible dot', async () => {
  const short = makeRun('eight', { steps: 8, offset: 0 }), one = makeRun('one', { steps: 0, offset: 0 })
  await renderPlot([short], join(root, 'eight.svg'), { metric: 'loss', x: 'step' })
  const ticks = xTicks(readFileSync(join(root, 'eight.svg'), 'utf8'))
  assert.ok(ticks.length >= 4, ticks.join(' '))
  assert.deepEqual(ticks, [...new Set(ticks)], `each tick is its own step: ${ticks.join(' ')}`)
  for (const t of ticks) assert.match(t, /^\d+$/)
  writeFileSync(join(one, 'log.jsonl'), JSON.stringify({ step: 20, loss: 7.5 }) + '\n')
  const long = makeRun('long', { steps: 100, offset: 0 })
  await renderPlot([long, one], join(root, 'long-one.svg'), { metric: 'loss', x: 'step' })
  const svg = readFileSync(join(root, 'long-one.svg'), 'utf8')
  const dots = [...svg.matchAll(/aria-roledescription="point"[^>]*aria-label="([^"]*)"|aria-label="([^"]*)"[^>]*aria-roledescription="point"/g)]
  assert.equal(dots.length, 1, 'one dot: the one-point run (the 100-point run gets none)')
  assert.match(dots[0]![1] ?? dots[0]![2]!, /step: 20; training loss: 7\.5; run: one/)
})

test('HellaSwag runs with different scorings: the title names none, each legend entry its own', async () => {
  const llmc = makeRun('llmc-run', { steps: 0, offset: 0 })
  const line = (step: number, scoring: string): string =>
    JSON.stringify({ step, hellaswag_acc_norm: 0.3, hellaswag_scoring: scoring, hellaswag_shots: 0 }) + '\n'
  writeFileSync(join(llmc, 'log.jsonl'), line(10, 'llmc') + line(20, 'llmc'))
  await renderPlot([gpt2, llmc], join(root, 'mixed.svg'), { metric: 'hellaswag', x: 'step' })
  const svg = readFileSync(join(root, 'mixed.svg'), 'utf8')
  assert.match(svg, />HellaSwag acc_norm by step</)
  assert.match(svg, />gpt2-run \(harness scoring, 10-shot\)</)
  assert.match(svg, />llmc-run \(llmc scoring, 0-shot\)</)
  writeFileSync(join(llmc, 'log.jsonl'), line(10, 'llmc') + line(20, 'harness'))   // resumed with another scoring
  assert.equal(collectSeries([llmc], 'hellaswag', 'step')[0]!.hellaswag, 'mixed scorings')
})

test('a torn last line is skipped; a bad line elsewhere names file and line', () => {
  const dir = makeRun('torn', { steps: 5, offset: 0 })
  writeFileSync(join(dir, 'log.jsonl'), readFileSync(join(dir, 'log.jsonl'), 'utf8') + '{"step": 6, "lo')
  assert.equal(collectSeries([dir], 'loss', 'step')[0]!.points.length, 5)
  for (const end of ['\n', '']) {   // a bad line that is not the last one, with and without a final newline
    writeFileSync(join(dir, 'log.jsonl'), '{"step": 1, "loss": 2}\nnot json\n{"step": 2, "loss": 1}' + end)
    assert.throws(() => collectSeries([dir], 'loss', 'step'),
      (e: Error) => e instanceof InputError && /torn[/\\]log\.jsonl:2 is not valid JSON/.test(e.message), JSON.stringify(end))
  }
})

test('a torn line that is the only one is said: not JSON (no training log), or a first step still being written', () => {
  const dir = makeRun('only-torn', { steps: 0, offset: 0 })
  const log = join(dir, 'log.jsonl')
  const throwsWith = (content: string, re: RegExp): void => {
    writeFileSync(log, content)
    assert.throws(() => collectSeries([dir], 'loss', 'step'), (e: Error) => e instanceof InputError && re.test(e.message), content)
  }
  const where = log.replace(/[\\/.]/g, c => `\\${c}`)
  throwsWith('garbage here', new RegExp(`^plot: ${where}: its only line, "garbage here", has no newline and is not JSON \\(`))
  throwsWith('\n\n  garbage', /its only line, "garbage", has no newline and is not JSON/)
  throwsWith('{"step": 1, "lo', /its only line, "\{\\"step\\": 1, \\"lo", has no newline and is not complete JSON \(a run still writing its first step\?/)
  writeFileSync(log, '')   // a run that has logged nothing yet: no values, as before
  assert.equal(collectSeries([dir], 'loss', 'step')[0]!.points.length, 0)
  writeFileSync(log, '{"step": 1, "loss": 2}\ngarbage')   // a live run's last line: skipped, as before
  assert.equal(collectSeries([dir], 'loss', 'step')[0]!.points.length, 1)
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
  writeFileSync(log, 'garbage here')
  const r = spawnSync(process.execPath, [main, 'plot', dir, '--out', join(root, 'torn.svg')], { encoding: 'utf8' })
  assert.equal(r.status, 2, r.stderr)
  assert.match(r.stderr, /^llmts plot: .*log\.jsonl: its only line, "garbage here", has no newline and is not JSON \(expected one JSON object per line: not a training run's log\?\)\n$/)
})

test('a step logged twice (a resumed run redoes it) plots the later value', () => {
  const dir = makeRun('resumed', { steps: 0, offset: 0 })
  const lines = [[1, 5], [2, 4], [3, 3.5], [2, 3.9], [3, 3.4], [4, 3]].map(([step, loss]) => JSON.stringify({ step, loss }))
  writeFileSync(join(dir, 'log.jsonl'), lines.join('\n') + '\n')
  assert.deepEqual(collectSeries([dir], 'loss', 'step')[0]!.points, [{ x: 1, y: 5 }, { x: 2, y: 3.9 }, { x: 3, y: 3.4 }, { x: 4, y: 3 }])
})

test('a log that steps back (a resume from an earlier checkpoint) plots only the surviving branch', () => {
  const dir = makeRun('rewound', { steps: 0, offset: 0 })
  // branch A: steps 1-6, validated at 3 and 6; then a resume from step 3's checkpoint: steps 4-5 again, validated at 5
  const a = [[1, 5], [2, 4], [3, 3.5], [4, 3.3], [5, 3.2], [6, 3.1]], b = [[4, 3.25], [5, 3.15]]
  const line = ([step, loss]: number[]): string => JSON.stringify({ step, loss, tokens: step! * 10 })
  const val = (step: number, v: number): string => JSON.stringify({ step, val_loss: v })
  const log = [...a.slice(0, 3).map(line), val(3, 3.6), ...a.slice(3).map(line), val(6, 3.2), ...b.map(line), val(5, 3.4)]
  writeFileSync(join(dir, 'log.jsonl'), log.join('\n') + '\n')
  // by hand: A's steps 1-3 and its validation at 3, then B's 4-5 and its validation at 5; A's 4-6 and 6's validation are gone
  assert.deepEqual(collectSeries([dir], 'loss', 'step')[0]!.points, [[1, 5], [2, 4], [3, 3.5], [4, 3.25], [5, 3.15]].map(([x, y]) => ({ x, y })))
  assert.deepEqual(collectSeries([dir], 'val_loss', 'tokens')[0]!.points, [{ x: 30, y: 3.6 }, { x: 50, y: 3.4 }])
  // B redoes A's last step (a resume from step 2) and stops before validating it: A's validation of step 3 is gone
  writeFileSync(join(dir, 'log.jsonl'), [...a.slice(0, 3).map(line), val(3, 3.6), line([3, 3.45])].join('\n') + '\n')
  assert.deepEqual(collectSeries([dir], 'loss', 'step')[0]!.points.map(p => p.y), [5, 4, 3.45])
  assert.deepEqual(collectSeries([dir], 'val_loss', 'step')[0]!.points, [])
  // a restart from step 0 (its validation line is the first to step back): nothing of A is left
  writeFileSync(join(dir, 'log.jsonl'), [val(0, 11), ...a.map(line), val(0, 10.9), line([1, 4.9]), line([2, 3.8])].join('\n') + '\n')
  assert.deepEqual(collectSeries([dir], 'loss', 'step')[0]!.points, [{ x: 1, y: 4.9 }, { x: 2, y: 3.8 }])
  assert.deepEqual(collectSeries([dir], 'val_loss', 'step')[0]!.points, [{ x: 0, y: 10.9 }])
})

test('null (a NaN loss) is left out and counted; a string value or a bad step is an InputError naming where', async () => {
  const dir = makeRun('nulls', { steps: 0, offset: 0 })
  const write = (lines: unknown[]): void => writeFileSync(join(dir, 'log.jsonl'), lines.map(l => JSON.stringify(l)).join('\n') + '\n')
  write([{ step: 1, loss: 3 }, { step: 2, loss: null }, { step: 3, loss: 2 }, { step: 4, loss: null }, { step: 4, loss: 1.5 }])
  writeFileSync(join(dir, 'log.jsonl'), '{"step": 5, "loss": 1e999}\n', { flag: 'a' })   // JSON.parse reads Infinity
  const [s] = collectSeries([dir], 'loss', 'step')
  assert.deepEqual(s!.points, [{ x: 1, y: 3 }, { x: 3, y: 2 }, { x: 4, y: 1.5 }], 'step 4 was redone with a finite loss')
  assert.equal(s!.nonFinite, 2)
  const isInput = (re: RegExp) => (e: Error) => e instanceof InputError && re.test(e.message)
  write([{ step: 1, loss: 3 }, { step: 2, loss: '2.5' }])
  assert.throws(() => collectSeries([dir], 'loss', 'step'), isInput(/nulls[/\\]log\.jsonl: step 2 has "loss": "2\.5", expected a number/))
  for (const line of ['null', '[1]', '42']) {   // JSON, but not an object: was an internal error (exit 1)
    writeFileSync(join(dir, 'log.jsonl'), `{"step": 1, "loss": 3}\n${line}\n`)
    assert.throws(() => collectSeries([dir], 'loss', 'step'), isInput(/nulls[/\\]log\.jsonl:2 is not a JSON object/), line)
  }
  for (const step of [-1, 1.5, '3', null]) {
    write([{ step: 1, loss: 3 }, { step, loss: 2 }])
    assert.throws(() => collectSeries([dir], 'loss', 'step'),
      isInput(new RegExp(`log\\.jsonl:2 has "step": ${JSON.stringify(step)}, expected a non-negative integer`)), String(step))
  }
  write([{ step: 1, loss: null }, { step: 2, loss: null }])
  await assert.rejects(renderPlot([dir], join(root, 'n.svg'), { metric: 'loss', x: 'step' }),
    isInput(/has no "loss" values other than 2 non-finite ones/))
  write([{ step: 1, loss: 3 }, { step: 2, loss: null }, { step: 3, loss: 2 }])
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
  const r = spawnSync(process.execPath, [main, 'plot', dir, '--out', join(root, 'n.svg'), '--json'], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(JSON.parse(r.stdout).runs, [{ label: 'nulls', points: 2, non_finite: 1 }])
  assert.match(r.stderr, /run nulls: 1 step logged a non-finite loss \(null in log\.jsonl\); left out/)
})

test('bad inputs are InputErrors: missing log, no points, unknown extension, no totalBatchSize', async () => {
  const isInput = (re: RegExp) => (e: Error) => e instanceof InputError && re.test(e.message) && !e.message.includes('\n')
  await assert.rejects(renderPlot([join(root, 'nope')], join(root, 'a.svg'), { metric: 'loss', x: 'step' }),
    isInput(/log\.jsonl: ENOENT \(no such run directory\)/))
  writeFileSync(join(root, 'notes.csv'), 'x\n')   // a file among the runs of a glob: the error said ENOTDIR alone
  await assert.rejects(renderPlot([join(root, 'notes.csv')], join(root, 'a.svg'), { metric: 'loss', x: 'step' }),
    isInput(/notes\.csv\/log\.jsonl: ENOTDIR \(a file, not a run directory\)$/))
  const noVal = makeRun('no-val', { steps: 5, offset: 0, val: false })
  await assert.rejects(renderPlot([gpt2, noVal], join(root, 'b.svg'), { metric: 'val_loss', x: 'step' }),
    isInput(/no-val .* has no "val_loss" values/))
  await assert.rejects(renderPlot([gpt2], join(root, 'c.jpg'), { metric: 'loss', x: 'step' }), isInput(/expected \.svg or \.png/))
  await assert.rejects(renderPlot([noVal], join(root, 'd.svg'), { metric: 'loss', x: 'tokens' }), isInput(/config\.json: ENOENT/))
  writeFileSync(join(noVal, 'config.json'), '{"lr": 1}')
  await assert.rejects(renderPlot([noVal], join(root, 'd.svg'), { metric: 'loss', x: 'tokens' }), isInput(/no positive totalBatchSize/))
  writeFileSync(join(noVal, 'config.json'), '{"train": {"totalBatchSize": 0}}')   // every x would be 0
  await assert.rejects(renderPlot([noVal], join(root, 'd.svg'), { metric: 'loss', x: 'tokens' }), isInput(/no positive totalBatchSize/))
  for (const f of ['a.svg', 'b.svg', 'c.jpg', 'd.svg']) assert.equal(existsSync(join(root, f)), false, `${f} not written`)
})

test('CLI: writes the chart; bad input -> one line on stderr, exit 2', () => {
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
  const ok = spawnSync(process.execPath, [main, 'plot', gpt2, variant, '--out', join(root, 'cli.svg'), '--json', '--title', 'My <runs>'],
    { encoding: 'utf8' })
  assert.equal(ok.status, 0, ok.stderr)
  assert.deepEqual(JSON.parse(ok.stdout), { out: join(root, 'cli.svg'), format: 'svg', metric: 'loss', x: 'step',
    runs: [{ label: 'gpt2-run', points: 40, non_finite: 0 }, { label: 'variant-run', points: 40, non_finite: 0 }] })
  assert.match(readFileSync(join(root, 'cli.svg'), 'utf8'), />My &lt;runs&gt;</, '--title is the chart title')
  const line = spawnSync(process.execPath, [main, 'plot', gpt2, '--out', join(root, 'cli.png'), '--metric', 'val_loss', '--x', 'tokens'],
    { encoding: 'utf8' })
  assert.equal(line.stdout, `plot: wrote ${join(root, 'cli.png')}: val_loss by tokens for gpt2-run (4 points)\n`)
  const single = makeRun('single', { steps: 1, offset: 0, val: false })
  const one = spawnSync(process.execPath, [main, 'plot', single, '--out', join(root, 'single.svg')], { encoding: 'utf8' })
  assert.equal(one.stdout, `plot: wrote ${join(root, 'single.svg')}: loss by step for single (1 point)\n`)
  for (const args of [[gpt2, '--out', join(root, 'cli.gif')], [join(root, 'missing'), '--out', join(root, 'm.svg')], [gpt2],
    [gpt2, '--out', join(root, 'x.svg'), '--metric', 'acc']]) {
    const r = spawnSync(process.execPath, [main, 'plot', ...args], { encoding: 'utf8' })
    assert.equal(r.status, 2, `exit code for ${args.join(' ')}: ${r.stderr}`)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  }
})

test('--help gives the default title as the chart has it', () => {
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
  const help = spawnSync(process.execPath, [main, 'plot', '--help'], { encoding: 'utf8' }).stdout
  const example = /--title TEXT .*e\.g\. "([^"]+)"/.exec(help)
  assert.ok(example, help)
  const r = spawnSync(process.execPath, [main, 'plot', gpt2, '--out', join(root, 'title.svg'), '--metric', 'val_loss', '--x', 'tokens'],
    { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.match(readFileSync(join(root, 'title.svg'), 'utf8'), new RegExp(`aria-label="Title text '${example[1]}'"`))
})

test('the format comes from the extension, in any case', () => {
  assert.equal(outputFormat('a.SVG'), 'svg')
  assert.equal(outputFormat(join(root, 'b.PNG')), 'png')
  assert.equal(outputFormat('c.Png'), 'png')
  assert.throws(() => outputFormat('d.svg.txt'), (e: Error) => e instanceof InputError && /extension "\.txt", expected \.svg or \.png/.test(e.message))
})

test('CLI: --out under a regular file -> exit 2, one line saying it is not a directory', () => {
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
  const file = join(root, 'a-file')
  writeFileSync(file, 'x')
  const r = spawnSync(process.execPath, [main, 'plot', gpt2, '--out', join(file, 'x.svg')], { encoding: 'utf8' })
  assert.equal(r.status, 2, r.stderr)
  assert.match(r.stderr, /^llmts plot: .*a-file.* is not a directory \(--out expects a directory to write to\)\n$/)
})

test('CLI: --out a symbolic link writes the file it points to and keeps the link; a link into a missing folder is exit 2', () => {
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
  const real = join(root, 'real.svg'), link = join(root, 'link.svg'), broken = join(root, 'broken.svg')
  writeFileSync(real, 'old')
  symlinkSync('real.svg', link)
  symlinkSync(join(root, 'no-such-folder', 'x.svg'), broken)
  const r = spawnSync(process.execPath, [main, 'plot', gpt2, '--out', link], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.ok(lstatSync(link).isSymbolicLink(), 'the link is still a link')
  assert.match(readFileSync(real, 'utf8'), /^<svg /, 'its target holds the chart')
  const bad = spawnSync(process.execPath, [main, 'plot', gpt2, '--out', broken], { encoding: 'utf8' })
  assert.equal(bad.status, 2, bad.stderr)
  assert.match(bad.stderr, /^llmts plot: cannot write .*broken\.svg \(a symbolic link to .*no-such-folder\/x\.svg\): ENOENT \(.*no-such-folder is not an existing folder\)\n$/)
  assert.ok(lstatSync(broken).isSymbolicLink())
})

/** The [low, high] of the y axis, from its aria-label ("... with values from 1 to 12"). */
function yDomain(svg: string): [number, number] {
  const m = /aria-label="Y-axis[^"]* with values from ([-\d.]+) to ([-\d.]+)"/.exec(svg)
  assert.ok(m, 'the SVG has a y axis')
  return [Number(m[1]), Number(m[2])]
}

/** The legend's entries in order (its aria-label) and its top-left corner (the first translate inside it). */
function legend(svg: string): { entries: string[]; x: number; y: number } {
  const m = /aria-roledescription="legend" aria-label="[^"]* values: ([^"]*)"><g transform="translate\(([\d.]+),([\d.]+)\)"/.exec(svg)
  assert.ok(m, 'the SVG has a legend')
  return { entries: m[1]!.split(', '), x: Number(m[2]), y: Number(m[3]) }
}

test('layout: the y axis spans the values (not from 0), legend in input order, top right for losses, bottom right for HellaSwag', async () => {
  const zeta = makeRun('zeta', { steps: 40, offset: 0, hellaswag: true }), alpha = makeRun('alpha', { steps: 40, offset: 0.5, hellaswag: true })
  await renderPlot([zeta, alpha], join(root, 'layout.svg'), { metric: 'loss', x: 'step' })
  const svg = readFileSync(join(root, 'layout.svg'), 'utf8')
  const [low, high] = yDomain(svg)
  const lowest = 11 / Math.sqrt(40), highest = 11 + 0.5   // zeta's step 40, alpha's step 1
  assert.ok(low > 0 && low <= lowest && high >= highest && high < 2 * highest, `y from ${low} to ${high}`)
  const top = legend(svg)
  assert.deepEqual(top.entries, ['zeta', 'alpha'], 'the order the runs were given, not sorted')
  await renderPlot([zeta, alpha], join(root, 'layout-hs.svg'), { metric: 'hellaswag', x: 'step' })
  const bottom = legend(readFileSync(join(root, 'layout-hs.svg'), 'utf8'))
  const height = 420   // buildSpec's plot height
  assert.ok(top.y < height / 4 && bottom.y > height / 2, `legend top at y=${top.y} (loss), ${bottom.y} (hellaswag)`)
  assert.ok(top.x > 720 / 2 && bottom.x > 720 / 2, 'both on the right')
})

test('long runs are drawn from at most 4 points per pixel column, keeping each column\'s extremes', async () => {
  const dir = join(root, 'long'), steps = 20_000
  mkdirSync(dir, { recursive: true })
  const loss = (s: number): number => (s === 12_345 ? 20 : s === 17_001 ? 0.5 : 3 + 8 / Math.sqrt(s) + (s % 7) / 20)
  writeFileSync(join(dir, 'log.jsonl'), Array.from({ length: steps }, (_, i) => JSON.stringify({ step: i + 1, loss: loss(i + 1) }) + '\n').join(''))
  const summary = await renderPlot([dir], join(root, 'long.svg'), { metric: 'loss', x: 'step' })
  assert.equal(summary.runs[0]!.points, steps, 'the summary counts the logged points')
  const svg = readFileSync(join(root, 'long.svg'), 'utf8')
  const path = /aria-roledescription="line mark" d="([^"]*)"/.exec(svg)?.[1] ?? ''
  const vertices = path.split(/[ML]/).length - 1
  assert.ok(vertices > 720 && vertices <= 4 * 720, `${vertices} vertices for 720 columns`)
  const [low, high] = yDomain(svg)
  assert.ok(low <= 0.5 && high >= 20, `the one-step spike (20) and dip (0.5) are kept: y from ${low} to ${high}`)
})

test('--x tokens takes the tokens each step line logged (a resume changed the batch), else step × totalBatchSize', () => {
  const dir = join(root, 'resized')
  mkdirSync(dir, { recursive: true })
  // steps 1-2 at 100 tokens a step, then a resume at 400: config.json holds only the last value
  const tokens = [0, 100, 200, 600, 1000]
  const lines = [1, 2, 3, 4].flatMap(s => [{ step: s, loss: 5 - s, tokens: tokens[s] }, ...(s % 2 === 0 ? [{ step: s, val_loss: 6 - s }] : [])])
  writeFileSync(join(dir, 'log.jsonl'), [{ step: 0, val_loss: 7 }, ...lines].map(l => JSON.stringify(l)).join('\n') + '\n')
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ train: { totalBatchSize: 400 } }))
  const xs = (metric: 'loss' | 'val_loss'): number[] => collectSeries([dir], metric, 'tokens')[0]!.points.map(p => p.x)
  assert.deepEqual(xs('loss'), [100, 200, 600, 1000])
  assert.deepEqual(xs('val_loss'), [0, 200, 1000], 'a validation at step s is placed at that step\'s tokens')
  assert.deepEqual(collectSeries([gpt2], 'loss', 'tokens')[0]!.points.slice(0, 2).map(p => p.x), [8192, 16384], 'no tokens logged')
  // a damaged count is refused naming the step (-5 was drawn at x = -5; "x" was silently replaced by step × 400)
  for (const [bad, shownAs] of [[-5, '-5'], ['x', '"x"'], [null, 'null']] as const) {
    writeFileSync(join(dir, 'log.jsonl'), JSON.stringify({ step: 1, loss: 4, tokens: 100 }) + '\n' +
      JSON.stringify({ step: 2, loss: 3, tokens: bad }) + '\n')
    const want = new RegExp(`resized/log\\.jsonl: step 2 has "tokens": ${shownAs}, expected a non-negative number$`)
    assert.throws(() => xs('loss'), (e: Error) => e instanceof InputError && want.test(e.message), shownAs)
  }
})
