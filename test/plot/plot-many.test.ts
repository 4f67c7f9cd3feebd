// Charts of many runs: every run its own colour up to 20 (a note past that), and a legend that would hide the curves
// (many runs, long names) outside the plot, names uncut.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { renderPlot } from '../../src/plot/plot.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-plot-many-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

/** `n` run directories of `steps(i)` steps each (default 30), named by `name(i)`. */
function makeRuns(n: number, name: (i: number) => string, steps = (_: number): number => 30): string[] {
  return Array.from({ length: n }, (_, i) => {
    const dir = join(root, name(i))
    mkdirSync(dir, { recursive: true })
    const lines = Array.from({ length: steps(i) }, (_, s) => JSON.stringify({ step: s + 1, loss: 3 + i / 10 + 5 / (s + 1) }))
    writeFileSync(join(dir, 'log.jsonl'), lines.join('\n') + '\n')
    return dir
  })
}

/** The stroke colour of each line mark, in order. */
function lineColours(svg: string): string[] {
  return [...svg.matchAll(/aria-roledescription="line mark" d="[^"]*" stroke="([^"]*)"/g)].map(m => m[1]!)
}

/** The legend's top-left x (its first translate). */
function legendX(svg: string): number {
  const m = /aria-roledescription="legend"[^>]*><g transform="translate\(([\d.]+),/.exec(svg)
  assert.ok(m, 'the SVG has a legend')
  return Number(m[1])
}

const plotWidth = 720   // buildSpec's plot width

test('12 runs: 12 line colours (the default scheme has 10), the legend outside the plot', async () => {
  const runs = makeRuns(12, i => `r${i}`)
  await renderPlot(runs, join(root, 'twelve.svg'), { metric: 'loss', x: 'step' })
  const svg = readFileSync(join(root, 'twelve.svg'), 'utf8')
  const colours = lineColours(svg)
  assert.equal(colours.length, 12)
  assert.equal(new Set(colours).size, 12, `colours: ${colours.join(' ')}`)
  assert.ok(legendX(svg) > plotWidth, `legend at x=${legendX(svg)}`)
})

test('two runs: inside the plot with short names, outside with long ones, never cut', async () => {
  const short = makeRuns(2, i => `s${i}`)
  await renderPlot(short, join(root, 'short.svg'), { metric: 'loss', x: 'step' })
  assert.ok(legendX(readFileSync(join(root, 'short.svg'), 'utf8')) < plotWidth, 'short names: inside')
  const long = makeRuns(2, i => `gpt2-124m-lr6e-4-warmup715-seed${i}-fineweb10B-edu`)
  await renderPlot(long, join(root, 'long.svg'), { metric: 'loss', x: 'step' })
  const svg = readFileSync(join(root, 'long.svg'), 'utf8')
  assert.ok(legendX(svg) > plotWidth, `long names: outside, at x=${legendX(svg)}`)
  assert.match(svg, />gpt2-124m-lr6e-4-warmup715-seed1-fineweb10B-edu</, 'the whole name')
})

test('CLI: more runs than colours is said on stderr; many runs are counted on stdout, not named', () => {
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
  const runs = makeRuns(21, i => `c${i}`, i => 30 + i)
  const r = spawnSync(process.execPath, [main, 'plot', ...runs, '--out', join(root, 'many.svg')], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout, `plot: wrote ${join(root, 'many.svg')}: loss by step for 21 runs (30 to 50 points per run; --json lists each)\n`)
  assert.match(r.stderr, /^llmts plot: note: 21 runs but 20 colours: from run 21 on the colours repeat \(run 21 has run 1's\)/m)
  const colours = lineColours(readFileSync(join(root, 'many.svg'), 'utf8'))
  assert.equal(new Set(colours).size, 20)
  assert.equal(colours[20], colours[0], 'run 21 has run 1\'s colour, as the note says')
})
