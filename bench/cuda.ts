// GPU training throughput, llm.ts against PyTorch on the same GPU: full training steps (forward + backward +
// global-norm clip + AdamW) at T=1024, llm.ts on the CUDA backend and the same model in PyTorch. Each measurement
// runs in its own process (a clean GPU). Prints tokens/s, ms/step, MFU and peak memory; --append records the table.
// --repeat N alternates the two N times per entry and reports medians (bench/cuda-compare.ts, bench/cuda-table.ts).
// Run: npx tsc && node dist/bench/cuda.js [--runs variant-124m:16,gpt2-124m:16] [--repeat 3] [--profile] [--append]

import { execFileSync } from 'node:child_process'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CudaBackend } from '../src/backend/cuda/index.js'
import { formatTuning } from '../src/backend/cuda/gemm-tune.js'
import { specPeakTflops } from '../src/backend/cuda/peak.js'
import { formatHelp, parseArgs } from '../src/cli/args.js'
import { presetConfig } from '../src/config.js'
import { GPT } from '../src/model/gpt.js'
import { ParamLayout } from '../src/model/params.js'
import { AdamW } from '../src/train/optimizer.js'
import { InputError } from '../src/util/errors.js'
import { measureEntries, type Measurers, type Result } from './cuda-compare.js'
import { parseRuns, variantHelp, type Variant } from './cuda-runs.js'
import { entryProgress, formatTable, reportJson, roundProgress } from './cuda-table.js'
import { appendResults, benchCommand, lastJson } from './results.js'

const flags = {
  runs: { type: 'string', default: 'variant-124m:16,variant-124m:32,gpt2-124m:16,gpt2-124m:32,variant-350m:16',
    help: `model:B pairs, each optionally with ${variantHelp}; those rows are compared with the PyTorch run of the same model:B` },
  seq: { type: 'int', min: 1, default: 1024, help: 'T' },
  steps: { type: 'int', min: 1, default: 10, help: 'timed training steps' },
  warmup: { type: 'int', min: 1, default: 3, help: 'untimed steps first (kernel compilation, cuBLASLt plans)' },
  python: { type: 'string', default: 'python3', help: 'Python with CUDA torch for the reference ("none" skips it)' },
  repeat: { type: 'int', min: 1, default: 1,
    help: 'rounds per entry, llm.ts and PyTorch alternating; rows show medians and every run, the ratio is of medians' },
  profile: { type: 'bool', help: 'also print GPU time per op (CUDA events) for each llm.ts run (its tokens/s then include ' +
    'the events), and with PyTorch its GPU time per kernel category (torch.profiler, over as many more steps) beside ours' },
  'peak-tflops': { type: 'number', min: 0, default: 0, help: 'bf16 peak for MFU (0: measure with a 8192³ GEMM)' },
  append: { type: 'bool', help: 'append the results to bench/RESULTS.md' },
  json: { type: 'bool', help: 'print one JSON object (every run, the summaries) on stdout instead of the table' },
  one: { type: 'string', help: 'internal: run one measurement (JSON) and print its result' },
} as const

/** One llm.ts measurement in this process. */
function measureOurs(model: string, B: number, T: number, steps: number, warmup: number, profile: boolean,
                     { recompute, attention, classifierRows, gemmTune }: Variant): Result {
  const be = new CudaBackend({ profile, attention, gemmTune })
  const config = presetConfig(model)
  const gpt = new GPT(be, config, { maxBatch: B, maxSeqLen: T, recompute, classifierRows })
  gpt.initWeights(1337)
  const opt = new AdamW(gpt, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 })
  const N = B * T, data = new Int32Array((warmup + steps) * N + 1)
  let seed = 2
  // uniform random tokens, as PyTorch's randint (an exact 32-bit LCG: Math.imul; a float product would lose the low
  // bits and cycle, giving data the model learns in a few steps); the high bits, the LCG's random ones, pick the token
  for (let i = 0; i < data.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; data[i] = Math.floor(seed / 2 ** 32 * config.vocabSize)
  }
  const losses: number[] = []
  const step = (s: number): void => {
    gpt.zeroGrad()
    losses.push(gpt.forward(data.subarray(s * N, s * N + N), data.subarray(s * N + 1, s * N + N + 1), B, T, 1))
    gpt.backward(1)
    opt.update(6e-4, { gradClip: 1, gradNorm: opt.gradNorm() })
  }
  for (let s = 0; s < warmup; s++) step(s)
  be.synchronize()
  be.profiler?.reset()
  const t0 = performance.now()
  for (let s = 0; s < steps; s++) step(warmup + s)
  be.synchronize()
  const dt = (performance.now() - t0) / 1000 / steps
  for (const t of be.gemmTuning()) console.error(formatTuning(t))   // to the log (stderr): what :gemm-tune=N picked
  return { impl: 'llm.ts', model, B, T, params: new ParamLayout(config).countReal(), ms_per_step: dt * 1000,
    tokens_per_s: N / dt, peak_bytes: be.ctx.peakBytes, loss_first: losses[warmup]!, loss_last: losses.at(-1)!,
    device: be.describe(), profile: be.profiler?.report().map(o => ({ ...o, ms: o.ms / steps, calls: o.calls / steps })) }
}

/** bf16 TFLOP/s of one 8192×8192×8192 GEMM through the backend (the MFU denominator unless --peak-tflops). */
function measurePeak(): number {
  const be = new CudaBackend(), n = 8192
  const a = be.alloc(n * n, { precision: 'compute' }), w = be.alloc(n * n, { precision: 'compute' }), o = be.alloc(n * n, { precision: 'compute' })
  for (let i = 0; i < 3; i++) be.matmulForward(o, a, w, null, n, n, n)
  be.synchronize()
  const reps = 20, t0 = performance.now()
  for (let i = 0; i < reps; i++) be.matmulForward(o, a, w, null, n, n, n)
  be.synchronize()
  return 2 * n ** 3 * reps / ((performance.now() - t0) / 1000) / 1e12
}

function runChild(args: string[]): Result {
  const self = fileURLToPath(import.meta.url)
  const out = execFileSync(process.execPath, [self, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 16 << 20 })
  return lastJson<Result>(out)
}

// bench/torch_reference.py: bf16 autocast, TF32, torch.compile, SDPA, fused AdamW
// (--profile: as many more steps under torch.profiler as timed ones; the timed ones are not profiled)
function runTorch(python: string, model: string, B: number, T: number, steps: number, warmup: number, profile: boolean): Result {
  const out = execFileSync(python, [resolve(process.cwd(), 'bench/torch_reference.py'), '--model', model, '--batch', String(B),
    '--seq', String(T), '--steps', String(steps), '--warmup', String(warmup), ...(profile ? ['--profile', String(steps)] : [])],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 16 << 20 })
  return lastJson<Result>(out)
}

function measurers(f: { seq: number; steps: number; warmup: number; profile: boolean; python: string; repeat: number }): Measurers {
  return {
    ours: ({ model, B, variant }) => runChild(['--seq', String(f.seq), '--steps', String(f.steps), '--warmup', String(f.warmup),
      '--one', JSON.stringify({ model, B, profile: f.profile, variant })]),
    torch: f.python === 'none' ? null : (model, B) => runTorch(f.python, model, B, f.seq, f.steps, f.warmup, f.profile),
    // each run at once (a stage cut short by its time limit still leaves every finished run in its log)
    round: f.repeat === 1 ? undefined : (entry, r, ours, torch) => console.error(roundProgress(entry.run, r, f.repeat, ours, torch)),
  }
}

function main(): void {
  const { flags: f, help } = parseArgs('bench/cuda', flags, process.argv.slice(2))
  if (help) { console.log(formatHelp('node dist/bench/cuda.js', '[flags]', 'llm.ts vs PyTorch GPU training throughput', flags)); return }
  if (f.one !== undefined) {
    const o = JSON.parse(f.one) as { model: string; B: number; peak?: boolean; profile?: boolean; variant: Variant }
    const r = o.peak !== undefined ? { peak: o.peak ? measurePeak() : 0, device: new CudaBackend().describe() }
      : measureOurs(o.model, o.B, f.seq, f.steps, f.warmup, o.profile === true, o.variant)
    console.log(JSON.stringify(r))
    return
  }
  if (f.profile && f.repeat > 1) {
    throw new InputError(`bench/cuda: --profile takes --repeat 1, got --repeat ${f.repeat} (CUDA events slow the runs they time)`)
  }
  const runs = parseRuns('bench/cuda', f.runs)
  const peakRun = runChild(['--one', JSON.stringify({ peak: !(f['peak-tflops'] > 0) })]) as unknown as { peak: number; device: string }
  const peak = f['peak-tflops'] > 0 ? f['peak-tflops'] : peakRun.peak
  const spec = specPeakTflops(peakRun.device, 'bf16')   // for reference beside the measured peak the MFU is over
  console.error(`bench: ${peakRun.device}; measured bf16 GEMM ${peakRun.peak.toFixed(0)} TFLOP/s${spec === null ? '' : `, spec ${spec}`}`)
  const ctx = { T: f.seq, peakTflops: peak, repeat: f.repeat }
  const entries = measureEntries(runs, f.repeat, f.seq, { ...measurers(f), done: e => console.error(entryProgress(e, ctx)) })
  const header = `Device: ${peakRun.device}. MFU over ${peak.toFixed(0)} TFLOP/s bf16 ` +
    `(${f['peak-tflops'] > 0 ? 'given' : 'measured 8192³ cuBLASLt GEMM'}` +
    `${spec === null ? '' : `; spec dense peak ${spec}`}); FLOPs/token = 6·N + 12·L·C·T, T=${f.seq}; ` +
    `${f.steps} timed steps after ${f.warmup} warm-up steps${f.repeat === 1 ? '' : `, ${f.repeat} rounds (llm.ts and PyTorch alternating)`}.`
  const report = [header, '', formatTable(entries, ctx)].join('\n')
  console.log(f.json ? JSON.stringify(reportJson(entries, { device: peakRun.device, peak_tflops: peak, measured_peak_tflops: peakRun.peak,
    spec_peak_tflops: spec, T: f.seq, steps: f.steps, warmup: f.warmup, repeat: f.repeat })) : report)
  if (f.append) appendResults('cuda', `Command: \`${benchCommand('cuda')}\`\n\n${report}`)
}

try { main() } catch (e) {
  const status = (e as { status?: unknown }).status
  if (e instanceof InputError) { console.error(e.message); process.exitCode = 2 }   // bad flags or --runs: one line
  else if (typeof status === 'number') process.exitCode = status   // a measuring child failed; it printed why
  else throw e
}
