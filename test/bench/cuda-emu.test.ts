// bench/cuda --repeat end to end without a GPU: the llm.ts runs on the CUDA emulator in plan mode (the real host code,
// kernels skipped: the numbers are not speeds), PyTorch a fake python that logs its calls and fails its second.
// Skipped where the emulator cannot be built (test/backend/cuda-emu/build.ts).

import assert from 'node:assert/strict'
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { buildEmulator, emulatorEnv, emulatorSkipReason } from '../backend/cuda-emu/build.js'

const fakePython = `#!/bin/bash
echo "$*" >> "$FAKE_LOG"
[ "$(wc -l < "$FAKE_LOG")" = 2 ] && { echo 'fake torch: crash' >&2; exit 1; }
echo '{"impl":"pytorch","model":"tiny-gpt2","B":2,"T":32,"params":1,"ms_per_step":64,"tokens_per_s":1000,"peak_bytes":1073741824,"loss_first":11,"loss_last":10.5}'
`

/** bench/cuda with `args` on the emulator in plan mode, `python` the fake PyTorch (its calls logged one a line): the
 *  run, the calls and the fake's path; null where the emulator cannot be built. */
function benchWithFake(python: string, args: string[]): { r: SpawnSyncReturns<string>; calls: string[]; path: string } | null {
  if (emulatorSkipReason() !== null) return null
  const dir = mkdtempSync(join(tmpdir(), 'llmts-bench-cuda-'))
  try {
    const path = join(dir, 'python'), log = join(dir, 'calls.txt')
    writeFileSync(path, python, { mode: 0o755 })
    const bench = fileURLToPath(new URL('../../bench/cuda.js', import.meta.url))
    const r = spawnSync(process.execPath, [bench, ...args, '--python', path],
      { encoding: 'utf8', env: { ...emulatorEnv(buildEmulator(), { plan: true }), FAKE_LOG: log }, maxBuffer: 16 << 20 })
    return { r, calls: existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [], path }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

test('bench/cuda --repeat 2 --json on the emulator: every run in the JSON, PyTorch once per round shared by a variant, ' +
  'its failed round excluded', { timeout: 300_000 }, (t) => {
  const run = benchWithFake(fakePython, ['--runs', 'tiny-gpt2:2,tiny-gpt2:2:recompute', '--seq', '32', '--steps', '2',
    '--warmup', '1', '--repeat', '2', '--json'])
  if (run === null) { t.skip(emulatorSkipReason()!); return }
  const { r, calls, path: python } = run
  assert.equal(r.status, 0, r.stderr)
  assert.equal(calls.length, 2)   // once per round: the recompute entry compares with the same two runs
  assert.match(calls[0]!, /bench\/torch_reference\.py --model tiny-gpt2 --batch 2 --seq 32 --steps 2 --warmup 1$/)
  type Entry = { run: string; ours_runs: { tokens_per_s: number; error?: string }[]; pytorch_runs: { tokens_per_s: number | null; error?: string }[];
    ours: { ok: number; median: number }; pytorch: { ok: number; failures: { round: number }[] }; ratio: number; pytorch_shared: boolean }
  const { repeat, entries } = JSON.parse(r.stdout) as { repeat: number; entries: Entry[] }
  assert.equal(repeat, 2)
  assert.deepEqual(entries.map(e => [e.run, e.ours_runs.length, e.ours.ok, e.pytorch_shared]),
    [['tiny-gpt2:2', 2, 2, false], ['tiny-gpt2:2:recompute', 2, 2, true]])
  for (const e of entries) {
    assert.ok(e.ours_runs.every(o => o.error === undefined && o.tokens_per_s > 0))
    assert.deepEqual(e.pytorch_runs.map(p => p.error ?? p.tokens_per_s), [1000, `Command failed: ${python} ${calls[1]!}`])
    assert.deepEqual(e.pytorch.failures.map(f => f.round), [2])
    assert.equal(e.ratio, e.ours.median / 1000)
  }
  assert.match(r.stderr, /^bench: tiny-gpt2:2 round 1\/2: llm\.ts \d+ tokens\/s, PyTorch 1000$/m)
  assert.match(r.stderr, /^bench: tiny-gpt2:2 round 2\/2: llm\.ts \d+ tokens\/s, PyTorch NaN \(pytorch error: Command failed: /m)
})

test('bench/cuda --profile on the emulator: PyTorch is asked for as many profiled steps as timed ones, and its ' +
  'categories print beside llm.ts\'s ops', { timeout: 300_000 }, (t) => {
  const profile = { steps: 2, unit: 'GPU time', categories: [{ op: 'matmul', calls: 30, ms: 1.5 }, { op: 'attention backward', calls: 4, ms: 0.75 }],
    kernels: [{ op: 'nvjet_tst_256x128_64x4_2x1_v_bz_coopA_TNN', calls: 30, ms: 1.5, category: 'matmul' }] }
  const line = JSON.stringify({ impl: 'pytorch', model: 'tiny-variant', B: 2, T: 32, params: 1, ms_per_step: 64, tokens_per_s: 1000,
    peak_bytes: 2 ** 30, loss_first: 11, loss_last: 10.5, kernel_profile: profile })
  const run = benchWithFake(`#!/bin/bash\necho "$*" >> "$FAKE_LOG"\necho '${line}'\n`,
    ['--runs', 'tiny-variant:2', '--seq', '32', '--steps', '2', '--warmup', '1', '--profile'])
  if (run === null) { t.skip(emulatorSkipReason()!); return }
  const { r, calls } = run
  assert.equal(r.status, 0, r.stderr)
  assert.equal(calls.length, 1)
  assert.match(calls[0]!, /--model tiny-variant --batch 2 --seq 32 --steps 2 --warmup 1 --profile 2$/)
  assert.match(r.stdout, /^GPU time per training step by op, tiny-variant B=2 /m)
  assert.match(r.stdout, /^\| matmulForward \| \d+ \| [\d.]+ \|$/m)
  assert.match(r.stdout, /^GPU time per training step by category, tiny-variant B=2: llm\.ts \(CUDA events per op\) and PyTorch \(torch\.profiler, 2 steps/m)
  assert.match(r.stdout, /^\| matmul \| [\d.]+ \| 1\.50 \| [-+][\d.]+ \|$/m)
  assert.match(r.stdout, /^\| attention backward \| [\d.]+ \| 0\.75 \| [-+][\d.]+ \|$/m)
  assert.match(r.stdout, /^\| nvjet_tst_256x128_64x4_2x1_v_bz_coopA_TNN \| matmul \| 30 \| 1\.50 \|$/m)
})
