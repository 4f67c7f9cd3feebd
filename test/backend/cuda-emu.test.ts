// The CUDA backend end to end without a GPU: builds the CPU emulator of test/backend/cuda-emu (a stand-in
// libcuda/NVRTC/cuBLASLt; kernels compiled by g++, one fiber per CUDA thread) and runs the GPU test suite
// (cuda.test.ts) on it in child processes: the real host code and kernel source, not GPU timing or memory-model
// subtleties. Skipped without g++ on x86-64 Linux, or with LLMTS_CUDA_EMU=0. The build is cached in .cache/.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { presetConfig } from '../../src/config.js'
import { rowWidths } from '../../src/model/activations.js'
import { ParamLayout } from '../../src/model/params.js'
import { buildEmulator, emulatorEnv, emulatorSkipReason } from './cuda-emu/build.js'
import { firstDifference, readReadings } from './cuda-emu/record.js'
import { tapCount, tapFailures } from '../helpers/tap.js'

const run = promisify(execFile)

/** Runs the GPU suite on the emulator under one LLMTS_EMU_SCHEDULE, recording what it read back; returns its TAP output. */
async function emulatedSuite(dir: string, schedule: string, record: string): Promise<string> {
  const suite = fileURLToPath(new URL('./cuda.test.js', import.meta.url))
  const env = { ...emulatorEnv(dir), LLMTS_EMU_SCHEDULE: schedule, LLMTS_EMU_RECORD: record }
  try {
    return (await run(process.execPath, [suite], { env, cwd: process.cwd(), maxBuffer: 64 << 20 })).stdout
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string }
    assert.fail(`the emulated CUDA suite (${schedule} schedule) failed:\n${tapFailures(err.stdout ?? '')}\n${(err.stderr ?? '').slice(-2000)}`)
  }
}

// The host code this exercises: koffi bindings, argument packing, NVRTC caching, cuBLASLt descriptors, bf16 mirrors.
// Running the suite in both orders and comparing every reading is the race check.
test('the CUDA test suite passes on the CPU emulator, with bit-identical results when threads and blocks run in reverse order',
  { timeout: 1_200_000 }, async (t) => {
    const reason = emulatorSkipReason()
    if (reason !== null) { t.skip(reason); return }
    const dir = buildEmulator()
    const tmp = mkdtempSync(join(tmpdir(), 'llmts-emu-'))
    try {
      const records = [join(tmp, 'forward.jsonl'), join(tmp, 'reverse.jsonl')]
      // one process per schedule, side by side (each emulator runs on one core); both finish before the folder goes
      const settled = await Promise.allSettled([emulatedSuite(dir, 'forward', records[0]!), emulatedSuite(dir, 'reverse', records[1]!)])
      const outputs = settled.map(s => { if (s.status === 'rejected') throw s.reason; return s.value })
      for (const [i, stdout] of outputs.entries()) {
        const count = (k: 'pass' | 'fail' | 'skipped'): number => tapCount(stdout, k)
        t.diagnostic(`emulated suite, ${i === 0 ? 'forward' : 'reverse'}: ${count('pass')} passed, ${count('skipped')} skipped, ` +
          `${count('fail')} failed`)
        assert.equal(count('fail'), 0)
        assert.ok(count('pass') >= 100, `only ${count('pass')} tests passed: did the suite skip for want of a device?`)
      }
      // A race (a missing __syncthreads, shared or device memory read before anything wrote it, a block reading
      // another's results) reads different values when the order of threads and blocks, and the garbage, change.
      const [forward, reverse] = records.map(f => readReadings(readFileSync(f, 'utf8')))
      t.diagnostic(`${forward!.length} readings compared`)
      assert.ok(forward!.length >= 1000, `only ${forward!.length} readings recorded`)
      assert.equal(firstDifference(forward!, reverse!), null)
    } finally {
      rmSync(tmp, { recursive: true, force: true })
    }
  })

/** One kernel of cuda-emu/selftest.cu on the emulator under a schedule: its 64 outputs, or the error it stopped with. */
async function selftest(dir: string, kernels: string, schedule: string, args: string[]): Promise<{ out?: number[]; error?: string }> {
  const script = fileURLToPath(new URL('./cuda-emu/selftest-run.js', import.meta.url))
  const env = { ...emulatorEnv(dir), LLMTS_EMU_SCHEDULE: schedule, LLMTS_CUDA_KERNELS: kernels }
  try {
    return { out: JSON.parse((await run(process.execPath, [script, ...args], { env })).stdout) as number[] }
  } catch (e) {
    return { error: (e as { stderr?: string }).stderr ?? String(e) }
  }
}

// Deliberately broken kernels (cuda-emu/selftest.cu) show that each emulator check catches what it is for.
test('the emulator catches what its checks are for: a race, a missing cp.async or wgmma wait, an exited lane at a warp op, a shared-memory ' +
  'overrun, a misaligned vector access, a store past an allocation',
  { timeout: 600_000 }, async (t) => {
    const reason = emulatorSkipReason()
    if (reason !== null) { t.skip(reason); return }
    const dir = buildEmulator(), kernels = mkdtempSync(join(tmpdir(), 'llmts-emu-selftest-'))
    try {
      copyFileSync(fileURLToPath(new URL('../../../test/backend/cuda-emu/selftest.cu', import.meta.url)), join(kernels, 'selftest.cu'))
      for (const h of ['common.cuh', 'wgmma.cuh']) {
        copyFileSync(fileURLToPath(new URL(`../../../src/backend/cuda/kernels/${h}`, import.meta.url)), join(kernels, h))
      }
      const neighbours = Array.from({ length: 64 }, (_, i) => (i + 1) % 64 + 1), copied = Array.from({ length: 64 }, (_, i) => i + 0.5)
      // each buggy kernel reads differently in the two orders; its fixed twin reads the right values in both
      for (const [kernel, bug, fix, shared, want] of [['selftest_neighbour', '0', '1', '0', neighbours],
        ['selftest_cp_async', '0', '1', '256', copied], ['selftest_wgmma', '0', '1', '9216', new Array(64).fill(16)]] as const) {
        const [fb, rb, ff, rf] = await Promise.all([['forward', bug], ['reverse', bug], ['forward', fix], ['reverse', fix]]
          .map(([schedule, arg]) => selftest(dir, kernels, schedule!, [kernel, arg!, shared])))
        assert.notDeepEqual(fb!.out, rb!.out, `${kernel} with its bug: the same results in both orders`)
        assert.deepEqual(ff!.out, want, `${kernel} fixed, forward`)
        assert.deepEqual(rf!.out, want, `${kernel} fixed, reverse`)
      }
      const [exited, whole, page, slack, inside] = await Promise.all([['selftest_warp_sum', '5'], ['selftest_warp_sum', '-1'],
        ['selftest_store', '64', '256'], ['selftest_store', '62', '250'], ['selftest_store', '61', '250']]
        .map(args => selftest(dir, kernels, 'forward', args)))
      assert.match(exited!.error ?? 'no error', /kernel selftest_warp_sum, .*lane 5 had exited when the warp met at __shfl_xor_sync/)
      assert.deepEqual(whole!.out, new Array(64).fill(32))
      assert.match(page!.error ?? 'no error', /kernel selftest_store touched .* outside device memory and its dynamic shared memory/)
      assert.match(slack!.error ?? 'no error', /kernel selftest_store, .*wrote byte 250 of dynamic shared memory, past the 250 bytes/)
      assert.deepEqual(inside!.out, new Array(64).fill(0))
      // a GPU faults on a vector access off its alignment, where x86 just reads: every kernel cast is checked
      const [load, misload, copy, miscopy] = await Promise.all([['selftest_load8', '4'], ['selftest_load8', '2'],
        ['selftest_cp_async_from', '8', '16'], ['selftest_cp_async_from', '1', '16']].map(args => selftest(dir, kernels, 'forward', args)))
      const at = (from: number, n: number): number[] => [...Array.from({ length: n }, (_, i) => from + i + 0.5), ...new Array(64 - n).fill(0)]
      assert.deepEqual(load!.out, at(4, 8))
      assert.match(misload!.error ?? 'no error', /kernel selftest_load8, .* cast to const float4\* is not 16-byte aligned/)
      assert.deepEqual(copy!.out, at(8, 4))
      assert.match(miscopy!.error ?? 'no error', /kernel selftest_cp_async_from, .*cp\.async of 16 bytes .* not both 16-byte aligned/)
      // a store just past an allocation's end, short of the guard page (allocations are rounded up to 256 bytes)
      const [last, past] = await Promise.all([['selftest_past_end', '60'], ['selftest_past_end', '61']]
        .map(args => selftest(dir, kernels, 'forward', args)))
      assert.deepEqual(last!.out, new Array(64).fill(0))
      assert.match(past!.error ?? 'no error', /kernel selftest_past_end wrote byte 244 of the 244-byte allocation at 0x[0-9a-f]+, past its end/)
    } finally {
      rmSync(kernels, { recursive: true, force: true })
    }
  })

// PyTorch 2.11's peak (torch.cuda.max_memory_allocated) for the same training step on an H100: bench/RESULTS.md,
// 2026-11-24 19:17 UTC. On that session's code plan mode gives its measured GPU peaks to two decimals (8.81, 9.20, 20.81 GiB).
const TORCH_PEAK_VARIANT_124M_B16 = 8.46 * 2 ** 30

// Plan mode (bench/cuda-memory.ts): memory allocated but not filled, launches checked but not run, so a real-size
// training step's GPU memory is measured without a GPU.
test('GPU memory plan on the emulator: variant-124m at B=16, T=1024 peaks below PyTorch; --recompute frees what it should; ' +
  'over 80 GiB is out of memory',
  { timeout: 600_000 }, async (t) => {
    const reason = emulatorSkipReason()
    if (reason !== null) { t.skip(reason); return }
    const bench = fileURLToPath(new URL('../../bench/cuda-memory.js', import.meta.url))
    const { stdout } = await run(process.execPath, [bench, '--runs', 'variant-124m:16,variant-124m:16:recompute,gpt2-124m:256', '--json'],
      { cwd: process.cwd(), maxBuffer: 16 << 20 })
    const [plain, recompute, huge] = JSON.parse(stdout) as { peak_bytes: number; error?: string }[]
    t.diagnostic(`peak ${(plain!.peak_bytes / 2 ** 30).toFixed(3)} GiB, with --recompute ${(recompute!.peak_bytes / 2 ** 30).toFixed(3)} GiB`)
    assert.ok(plain!.peak_bytes < TORCH_PEAK_VARIANT_124M_B16,
      `peak ${plain!.peak_bytes} B, PyTorch's is ${TORCH_PEAK_VARIANT_124M_B16.toFixed(0)} B`)
    // recomputation keeps ln1, ln2 (C each) and the MLP activation (H) of one layer instead of all L, in bf16
    const c = presetConfig('variant-124m'), { C, H } = rowWidths(c), N = 16 * 1024
    assert.equal(plain!.peak_bytes - recompute!.peak_bytes, (c.layers - 1) * N * (2 * C + H) * 2)
    // B=256 needs far more than an H100's 80 GiB: the backend's out-of-memory error, reported as such
    assert.match(huge!.error ?? 'no error', /out of memory/)
  })

/** Device bytes the code plans for gpt2-350m's inference commands as bench/cuda-inference runs them (T = 1024):
 *  f32 weights; eval loss's inference-mode GPT (one layer's activations, bf16 where the backend computes in bf16,
 *  the logits chunk, tokens, targets per chunk) and the weights' bf16 mirror its bf16 matmuls read; sample's and
 *  hellaswag's one-row GPT (decodingModel) and a cache or pool: f32 key/value rows per layer, f32 scratch rows, 256
 *  rows of f32 logits, targets per 256 rows, tokens per run of rows. */
function plannedInference(): Record<'loss' | 'hellaswag' | 'sample', number> {
  const c = presetConfig('gpt2-350m'), { C, QKV, AH, FC, H } = rowWidths(c), Vp = c.paddedVocabSize, T = 1024
  const params = 4 * new ParamLayout(c).total
  const model = (N: number): number => {   // an inference-mode GPT of N rows (layernorm: mean and rstd per norm)
    const rows = N === 1 ? 1 : 586   // the logits chunk: 2^25 floats are 667 rows; 4096 rows go in 7 chunks of 586
    return N * (2 * (4 * C + QKV + AH + FC + H) + 4 * (3 * C + 7 + c.heads)) + rows * Vp * 2 + 4 * N + 4 * Math.ceil(N / rows) * rows
  }
  const cache = (kvRows: number, rows: number, runs: number): number => c.layers * kvRows * QKV * 4 +
    rows * 4 * (5 * C + 3 + QKV + AH + FC + H) + 256 * Vp * 4 + 4 * Math.ceil(rows / 256) * 256 + runs * 4 * rows
  return { loss: params * 1.5 + model(4 * T), sample: params + model(1) + cache(T, T, 1),
    hellaswag: params + model(1) + cache(4 * T, 4 * T, 2) }   // one example of four T-token rows: context, then endings
}

// bench/cuda-inference in plan mode: what eval loss, eval hellaswag and sample allocate is what the code above plans
// (plus cuBLASLt's 32 MiB workspace and a few small scratch buffers), and less than a training step's peak at B=1.
test('GPU memory plan on the emulator: eval loss (B=4), eval hellaswag and sample at gpt2-350m, T=1024, as planned and ' +
  'below training at B=1', { timeout: 600_000 }, async (t) => {
  const reason = emulatorSkipReason()
  if (reason !== null) { t.skip(reason); return }
  const env = emulatorEnv(buildEmulator(), { plan: true }), planned = plannedInference()
  const inference = fileURLToPath(new URL('../../bench/cuda-inference.js', import.meta.url))
  const bench = fileURLToPath(new URL('../../bench/cuda-memory.js', import.meta.url))
  const { stdout } = await run(process.execPath, [bench, '--runs', 'gpt2-350m:1', '--json'], { cwd: process.cwd(), maxBuffer: 16 << 20 })
  const train = (JSON.parse(stdout) as { peak_bytes: number }[])[0]!.peak_bytes
  for (const command of ['loss', 'hellaswag', 'sample'] as const) {
    const out = await run(process.execPath, [inference, '--model', 'gpt2-350m', '--batch', '4', '--command', command], { env })
    const peak = (JSON.parse(out.stdout) as { peak_bytes: number }).peak_bytes, extra = peak - planned[command] - 2 ** 25
    t.diagnostic(`${command}: peak ${(peak / 2 ** 30).toFixed(3)} GiB (training at B=1: ${(train / 2 ** 30).toFixed(3)}), ` +
      `${extra} B beyond the plan and the workspace`)
    assert.ok(extra >= 0 && extra < 65536, `${command}: peak ${peak} B, planned ${planned[command]} B + 32 MiB`)
    assert.ok(peak < train, `${command}: peak ${peak} B, training's at B=1 ${train} B`)
  }
})
