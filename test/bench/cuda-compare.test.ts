// bench/cuda --repeat without a GPU: the medians (bench/stats.ts), the order of runs and their failures
// (bench/cuda-compare.ts, with fake measurements), the report (bench/cuda-table.ts: with --repeat 1 the lines the
// H100 session of 2026-11-26 recorded in bench/RESULTS.md, with N > 1 hand-computed medians) and the flag's errors.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { measureEntries, type Result } from '../../bench/cuda-compare.js'
import { parseRuns } from '../../bench/cuda-runs.js'
import { formatTable } from '../../bench/cuda-table.js'
import { median, summarize } from '../../bench/stats.js'

const T = 1024

/** A successful run: tokens/s, peak GiB and last loss as a table shows them. */
function run(impl: Result['impl'], model: string, B: number, tps: number, gib: number, loss = 11): Result {
  return { impl, model, B, T, params: 1, ms_per_step: B * T / tps * 1000, tokens_per_s: tps, peak_bytes: gib * 2 ** 30,
    loss_first: 11, loss_last: loss }
}

/** Measures `runs` with fakes that hand out `ours` and `torch` in call order (an Error is thrown); logs each call. */
function fake(runs: string, repeat: number, ours: (Result | Error)[], torch: (Result | Error)[] | null) {
  const calls: string[] = [], next = (q: (Result | Error)[]): Result => {
    const r = q.shift()
    if (r instanceof Error) throw r
    return r!
  }
  const entries = measureEntries(parseRuns('test', runs), repeat, T, {
    ours: e => { calls.push(`ours ${e.run}`); return next(ours) },
    torch: torch === null ? null : (model, B) => { calls.push(`torch ${model}:${B}`); return next(torch) },
  })
  return { entries, calls }
}

test('median: the middle of an odd count, the mean of the two middle values of an even one, NaN of none', () => {
  assert.equal(median([3, 1, 2]), 2)
  assert.equal(median([4, 1, 3, 2]), 2.5)
  assert.equal(median([7]), 7)
  assert.ok(Number.isNaN(median([])))
})

test('summarize: a failed run is listed by its round and left out of the median, range and peak', () => {
  const ok = (tps: number, peak: number) => ({ tokens_per_s: tps, peak_bytes: peak })
  const s = summarize([ok(300, 5), { tokens_per_s: NaN, peak_bytes: NaN, error: 'out of memory' }, ok(100, 7), ok(200, 6)])
  assert.deepEqual(s, { runs: 4, ok: 3, median: 200, min: 100, max: 300, peakBytes: 7, failures: [{ round: 2, error: 'out of memory' }] })
  const even = summarize([ok(300, 5), ok(100, 7), { tokens_per_s: NaN, peak_bytes: NaN, error: 'x' }, ok(200, 6), ok(150, 1)])
  assert.equal(even.median, 175)
  const none = summarize([{ tokens_per_s: NaN, peak_bytes: NaN, error: 'x' }])
  assert.equal(none.ok, 0)
  assert.ok(Number.isNaN(none.median) && Number.isNaN(none.peakBytes))
})

test('measureEntries: llm.ts and PyTorch alternate per entry; PyTorch once per model:B and round, shared by its variants', () => {
  const v = (tps: number) => run('llm.ts', 'variant-124m', 16, tps, 7)
  const { entries, calls } = fake('variant-124m:16,variant-124m:16:4-blocks,gpt2-124m:16', 2, [v(1), v(2), v(3), v(4), v(5), v(6)],
    [v(10), v(20), v(30), v(40)])
  assert.deepEqual(calls, ['ours variant-124m:16', 'torch variant-124m:16', 'ours variant-124m:16', 'torch variant-124m:16',
    'ours variant-124m:16:4-blocks', 'ours variant-124m:16:4-blocks',
    'ours gpt2-124m:16', 'torch gpt2-124m:16', 'ours gpt2-124m:16', 'torch gpt2-124m:16'])
  assert.deepEqual(entries.map(e => e.ours.map(r => r.tokens_per_s)), [[1, 2], [3, 4], [5, 6]])
  assert.deepEqual(entries.map(e => e.torch!.map(r => r.tokens_per_s)), [[10, 20], [10, 20], [30, 40]])
  assert.deepEqual(entries.map(e => e.torchFirst), [true, false, true])
  // --python none: no PyTorch runs at all
  const alone = fake('variant-124m:16', 3, [v(1), v(2), v(3)], null)
  assert.deepEqual(alone.calls, ['ours variant-124m:16', 'ours variant-124m:16', 'ours variant-124m:16'])
  assert.equal(alone.entries[0]!.torch, null)
})

test('measureEntries: a run that throws is recorded as failed (its first line) and the other rounds go on', () => {
  const v = (tps: number) => run('llm.ts', 'variant-124m', 16, tps, 7)
  const { entries, calls } = fake('variant-124m:16', 3, [v(1), new Error('CUDA error: out of memory\n  at stack'), v(3)],
    [v(10), v(20), new Error('torch died')])
  assert.equal(calls.length, 6)
  const [e] = entries
  assert.deepEqual(e!.ours.map(r => r.error ?? r.tokens_per_s), [1, 'CUDA error: out of memory', 3])
  assert.deepEqual(e!.torch!.map(r => r.error ?? r.tokens_per_s), [10, 20, 'torch died'])
  assert.ok(Number.isNaN(e!.ours[1]!.tokens_per_s))
})

// bench/RESULTS.md, 2026-11-26 08:18 UTC (H100, `--runs variant-124m:32,gpt2-124m:32,variant-350m:32 --steps 20`):
// the same runs give the same table and lines. The header's "MFU over 900" was a measured 900.13-900.5 (gpt2's
// PyTorch row is 44.3% over that and would be 44.4% over 900.0).
test('--repeat 1: the table and lines are those of the single-run bench (bench/RESULTS.md, 2026-11-26 08:18)', () => {
  const { entries } = fake('variant-124m:32,gpt2-124m:32,variant-350m:32', 1,
    [run('llm.ts', 'variant-124m', 32, 492353, 12.90, 10.904), run('llm.ts', 'gpt2-124m', 32, 451254, 13.65, 10.907),
      run('llm.ts', 'variant-350m', 32, 183547, 33.21, 10.922)],
    [run('pytorch', 'variant-124m', 32, 476802, 15.26, 10.902), run('pytorch', 'gpt2-124m', 32, 464256, 15.15, 10.908),
      run('pytorch', 'variant-350m', 32, 189746, 35.95, 10.937)])
  assert.equal(formatTable(entries, { T, peakTflops: 900.3, repeat: 1 }), `| model | B | impl | tokens/s | ms/step | MFU | peak GiB |
|---|---:|---|---:|---:|---:|---:|
| variant-124m | 32 | llm.ts | 492353 | 66.6 | 44.4% | 12.90 |
| variant-124m | 32 | pytorch | 476802 | 68.7 | 43.0% | 15.26 |
| gpt2-124m | 32 | llm.ts | 451254 | 72.6 | 43.1% | 13.65 |
| gpt2-124m | 32 | pytorch | 464256 | 70.6 | 44.3% | 15.15 |
| variant-350m | 32 | llm.ts | 183547 | 178.5 | 47.1% | 33.21 |
| variant-350m | 32 | pytorch | 189746 | 172.7 | 48.7% | 35.95 |

- variant-124m B=32: llm.ts/PyTorch = 1.03× tokens/s, 0.85× peak memory (losses 10.904 vs 10.902)
- gpt2-124m B=32: llm.ts/PyTorch = 0.97× tokens/s, 0.90× peak memory (losses 10.907 vs 10.908)
- variant-350m B=32: llm.ts/PyTorch = 0.97× tokens/s, 0.92× peak memory (losses 10.922 vs 10.937)
`)
})

// bench/RESULTS.md, 2026-11-26 08:04 UTC: a variant entry compares with the PyTorch run of its model:B, whose row
// is shown once; a failed run is a row of its own.
test('--repeat 1: a variant shares the PyTorch row; a failed run is a "failed" row (bench/RESULTS.md, 2026-11-26 08:04)', () => {
  const { entries } = fake('variant-124m:16,variant-124m:16:4-blocks,gpt2-124m:16', 1,
    [run('llm.ts', 'variant-124m', 16, 460137, 7.61, 10.967), run('llm.ts', 'variant-124m', 16, 469821, 7.61, 10.967),
      new Error('llm.ts child exited 1\nstack')], [run('pytorch', 'variant-124m', 16, 449614, 8.46, 10.966), run('pytorch', 'gpt2-124m', 16, 431983, 8.45)])
  assert.equal(formatTable(entries, { T, peakTflops: 896, repeat: 1 }), `| model | B | impl | tokens/s | ms/step | MFU | peak GiB |
|---|---:|---|---:|---:|---:|---:|
| variant-124m | 16 | llm.ts | 460137 | 35.6 | 41.7% | 7.61 |
| variant-124m | 16 | pytorch | 449614 | 36.4 | 40.8% | 8.46 |
| variant-124m (4-blocks) | 16 | llm.ts | 469821 | 34.9 | 42.6% | 7.61 |
| gpt2-124m | 16 | llm.ts | failed: llm.ts child exited 1 | | | |
| gpt2-124m | 16 | pytorch | 431983 | 37.9 | 41.5% | 8.45 |

- variant-124m B=16: llm.ts/PyTorch = 1.02× tokens/s, 0.90× peak memory (losses 10.967 vs 10.966)
- variant-124m (4-blocks) B=16: llm.ts/PyTorch = 1.04× tokens/s, 0.90× peak memory (losses 10.967 vs 10.966)
`)
})

// Hand-computed: ours 476603, 470387, 477916 → median 476603 (ms/step 16384/476603 s = 34.4 ms), PyTorch 449614,
// 429962, 440000 → 440000; 476603 / 440000 = 1.083; peaks 7.61 and 8.46 → 0.90. The 4-blocks entry's llm.ts run 2
// failed: median of 1 and 2 → (470000 + 480000) / 2 = 475000, 475000 / 440000 = 1.080. gpt2's PyTorch runs all failed.
test('--repeat 3: medians, every run\'s tokens/s, ratio of medians with both ranges, failed runs listed', () => {
  const v = (tps: number, gib = 7.61) => run('llm.ts', 'variant-124m', 16, tps, gib, 10.967)
  const g = (tps: number) => run('llm.ts', 'gpt2-124m', 16, tps, 8.05)
  const p = (tps: number, gib: number) => run('pytorch', 'variant-124m', 16, tps, gib, 10.966)
  const { entries } = fake('variant-124m:16,variant-124m:16:4-blocks,gpt2-124m:16', 3,
    [v(476603), v(470387), v(477916, 7.62), v(470000), new Error('boom'), v(480000), g(1), g(2), g(3)],
    [p(449614, 8.46), p(429962, 8.40), p(440000, 8.46), new Error('no torch'), new Error('no torch'), new Error('no torch')])
  assert.equal(formatTable(entries, { T, peakTflops: 896, repeat: 3 }), `\
| model | B | impl | tokens/s (median) | runs | ms/step | MFU | peak GiB (max) |
|---|---:|---|---:|---|---:|---:|---:|
| variant-124m | 16 | llm.ts | 476603 | 476603 470387 477916 | 34.4 | 43.2% | 7.62 |
| variant-124m | 16 | pytorch | 440000 | 449614 429962 440000 | 37.2 | 39.9% | 8.46 |
| variant-124m (4-blocks) | 16 | llm.ts | 475000 | 470000 failed 480000 | 34.5 | 43.1% | 7.61 |
| gpt2-124m | 16 | llm.ts | 2 | 1 2 3 | 8192000.0 | 0.0% | 8.05 |
| gpt2-124m | 16 | pytorch | failed: no torch | failed failed failed | | | |

- variant-124m B=16: llm.ts/PyTorch = 1.08× tokens/s (median of 3; ours 470387–477916, PyTorch 429962–449614), 0.90× peak memory (losses 10.967 vs 10.966)
- variant-124m (4-blocks) B=16: llm.ts/PyTorch = 1.08× tokens/s (median of 2 llm.ts and 3 PyTorch runs; ours 470000–480000, PyTorch 429962–449614), 0.90× peak memory (losses 10.967 vs 10.966)
- variant-124m (4-blocks) B=16: llm.ts run 2 of 3 failed: boom
- gpt2-124m B=16: PyTorch run 1 of 3 failed: no torch
- gpt2-124m B=16: PyTorch run 2 of 3 failed: no torch
- gpt2-124m B=16: PyTorch run 3 of 3 failed: no torch
`)
})

const bench = fileURLToPath(new URL('../../bench/cuda.js', import.meta.url))

test('bench/cuda --repeat 0 and --profile --repeat 2: one line each, exit 2, before any GPU work', () => {
  for (const [args, message] of [[['--repeat', '0'], 'bench/cuda: --repeat expects a positive integer, got 0'],
    [['--repeat', '2', '--profile'], 'bench/cuda: --profile takes --repeat 1, got --repeat 2 (CUDA events slow the runs they time)']] as const) {
    const r = spawnSync(process.execPath, [bench, ...args], { encoding: 'utf8', env: { ...process.env, LLMTS_CUDA_LIBS: '/nonexistent' } })
    assert.equal(r.status, 2, r.stderr)
    assert.equal(r.stderr, `${message}\n`)
    assert.equal(r.stdout, '')
  }
})
