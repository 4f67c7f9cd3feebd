// CPU training throughput, llm.ts against PyTorch: full training steps (forward + backward + AdamW) of tiny-variant
// and tiny-gpt2 at B=8, T=256 with GPT + CpuBackend on each available kernel path (native BLAS, WebAssembly), and the
// same model in PyTorch float32 at the same thread count (torch_cpu_reference.py). Prints tokens/s, the ratio and
// tokens per CPU-second; --append adds a dated entry to bench/RESULTS.md.
// Run: npx tsc && node dist/bench/cpu.js [--threads N] [--rounds R] [--append]

import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism, cpus } from 'node:os'
import { resolve } from 'node:path'
import { findBlas } from '../src/backend/cpu/blas.js'
import { CpuBackend } from '../src/backend/cpu/index.js'
import { formatHelp, parseArgs } from '../src/cli/args.js'
import { presetConfig } from '../src/config.js'
import { GPT } from '../src/model/gpt.js'
import { AdamW } from '../src/train/optimizer.js'
import { InputError } from '../src/util/errors.js'
import { appendResults, benchCommand, lastJson } from './results.js'

const flags = {
  models: { type: 'string', default: 'tiny-variant,tiny-gpt2', help: 'comma-separated presets' },
  paths: { type: 'string', default: 'blas,wasm', help: 'kernel paths: blas, wasm, js (blas is skipped without a library)' },
  batch: { type: 'int', min: 1, default: 8, help: 'B' },
  seq: { type: 'int', min: 1, default: 256, help: 'T' },
  threads: { type: 'int', min: 1, default: availableParallelism(), help: 'threads for both llm.ts and PyTorch' },
  steps: { type: 'int', min: 1, default: 3, help: 'timed training steps per measurement (best is kept)' },
  rounds: { type: 'int', min: 1, default: 2, help: 'alternate llm.ts and PyTorch this many times (best is kept)' },
  python: { type: 'string', default: '/usr/bin/python3', help: 'Python with torch for the reference ("none" skips it)' },
  append: { type: 'bool', help: 'append the results to bench/RESULTS.md' },
} as const

/** Throughput: tokens per wall second and per CPU second (all threads), each the best of the steps timed. Per CPU
 *  second is steadier than wall time on a shared machine, but it counts PyTorch's OpenMP spin-waits. */
interface Speed { tps: number; cpuTps: number }
interface Row { model: string; path: string; description: string; ours: Speed; torch: Speed | null; torchVersion: string }

/** Best tokens/s over `steps` training steps (after one warm-up step) of a fresh model on one kernel path. */
function measureOurs(model: string, path: 'blas' | 'wasm' | 'js', B: number, T: number, threads: number,
                     steps: number): Speed & { description: string } {
  const be = new CpuBackend({ kernels: path, threads })
  const gpt = new GPT(be, presetConfig(model), { maxBatch: B, maxSeqLen: T })
  gpt.initWeights(1337)
  const opt = new AdamW(gpt, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 })
  const x = new Int32Array(B * T), y = new Int32Array(B * T)
  for (let i = 0; i < B * T; i++) { x[i] = (i * 7919) % 50_257; y[i] = (i * 104_729 + 1) % 50_257 }
  let best = Infinity, bestCpu = Infinity
  for (let s = 0; s <= steps; s++) {
    const t0 = performance.now(), c0 = process.cpuUsage()
    gpt.zeroGrad()
    gpt.forward(x, y, B, T)
    gpt.backward(1)
    opt.update(1e-4, { gradClip: 1, gradNorm: opt.gradNorm() })
    if (s === 0) continue   // step 0 warms up (JIT, pages, pools)
    const cpu = process.cpuUsage(c0)
    best = Math.min(best, (performance.now() - t0) / 1000)
    bestCpu = Math.min(bestCpu, (cpu.user + cpu.system) / 1e6)   // every thread of the process
  }
  return { tps: B * T / best, cpuTps: B * T / bestCpu, description: be.describe() }
}

/** PyTorch's best tokens/s for the same model, or null (with the reason on stderr) when it cannot run. */
function measureTorch(python: string, model: string, B: number, T: number, threads: number,
                      steps: number): (Speed & { version: string }) | null {
  if (python === 'none') return null
  try {
    const out = execFileSync(python, [resolve(process.cwd(), 'bench/torch_cpu_reference.py'), '--model', model,
      '--batch', String(B), '--seq', String(T), '--threads', String(threads), '--steps', String(steps)],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    const r = lastJson<{ tokens_per_s: number; tokens_per_cpu_s: number; torch: string }>(out)
    return { tps: r.tokens_per_s, cpuTps: r.tokens_per_cpu_s, version: r.torch }
  } catch (e) {
    console.error(`bench: PyTorch reference failed (${(e as Error).message.split('\n')[0]}); reporting llm.ts only`)
    return null
  }
}

/** Each measure's best so far (wall and CPU are kept separately: the best of each). */
function bestOf<S extends Speed>(prev: S | null | undefined, m: S): S {
  return { ...m, tps: Math.max(m.tps, prev?.tps ?? 0), cpuTps: Math.max(m.cpuTps, prev?.cpuTps ?? 0) }
}

function table(rows: Row[], threads: number): string {
  const lines = ['| model | path | threads | llm.ts tokens/s | PyTorch tokens/s | ratio | llm.ts tokens/CPU-s | ' +
    'PyTorch tokens/CPU-s | ratio |', '|---|---|---:|---:|---:|---:|---:|---:|---:|']
  const n = (x: number | undefined): string => x === undefined ? 'n/a' : x.toFixed(0)
  const ratio = (a: number, b: number | undefined): string => b === undefined ? 'n/a' : `${(a / b).toFixed(2)}×`
  for (const { model, path, ours, torch } of rows) {
    lines.push(`| ${model} | ${path} | ${threads} | ${n(ours.tps)} | ${n(torch?.tps)} | ${ratio(ours.tps, torch?.tps)} | ` +
      `${n(ours.cpuTps)} | ${n(torch?.cpuTps)} | ${ratio(ours.cpuTps, torch?.cpuTps)} |`)
  }
  return lines.join('\n')
}

function machine(): string {
  const model = cpus()[0]?.model ?? 'unknown CPU'
  let load = ''
  try {
    load = `, load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} at start`
  } catch { /* not Linux */ }
  return `${availableParallelism()} cores (nproc), ${model}, Node ${process.version}${load}`
}

function main(): void {
  const { flags: f, help } = parseArgs('bench/cpu', flags, process.argv.slice(2))
  if (help) {
    console.log(formatHelp('node dist/bench/cpu.js', '[flags]', 'llm.ts vs PyTorch CPU training throughput', flags))
    return
  }
  const host = machine()
  const paths = f.paths.split(',').map(p => p.trim()) as ('blas' | 'wasm' | 'js')[]
  const rows: Row[] = []
  for (const model of f.models.split(',').map(m => m.trim())) {
    let torch: (Speed & { version: string }) | null = null
    const best = new Map<string, Speed & { description: string }>()
    for (let r = 0; r < f.rounds; r++) {
      for (const path of paths) {
        if (path === 'blas' && findBlas() === null) continue
        const m = measureOurs(model, path, f.batch, f.seq, f.threads, f.steps)
        best.set(path, bestOf(best.get(path), m))
        console.error(`bench: ${model} ${path} round ${r + 1}: ${m.tps.toFixed(0)} tokens/s, ` +
          `${m.cpuTps.toFixed(0)} per CPU-s (${m.description})`)
      }
      const t = measureTorch(f.python, model, f.batch, f.seq, f.threads, f.steps)
      if (t !== null) {
        console.error(`bench: ${model} PyTorch round ${r + 1}: ${t.tps.toFixed(0)} tokens/s, ${t.cpuTps.toFixed(0)} per CPU-s`)
        torch = bestOf(torch, t)
      }
    }
    for (const [path, m] of best) {
      rows.push({ model, path, description: m.description, ours: m, torch, torchVersion: torch?.version ?? '' })
    }
  }
  const out = table(rows, f.threads)
  console.log(out)
  if (f.append) {
    const setup = `B=${f.batch}, T=${f.seq}, best step of ${f.steps} (after a warm-up step) over ${f.rounds} ` +
      'alternating rounds'
    recordResults(rows, out, host, setup)
  }
}

/** Adds a dated entry (machine, command, paths, table) to bench/RESULTS.md. */
function recordResults(rows: Row[], out: string, host: string, setup: string): void {
  const paths = [...new Set(rows.map(r => `${r.path}: ${r.description}`))].map(p => `- ${p}`).join('\n')
  const torchV = rows.find(r => r.torchVersion !== '')?.torchVersion ?? 'not run'
  appendResults('cpu', `Machine: ${host}. PyTorch ${torchV}.\nCommand: \`${benchCommand('cpu')}\` — ${setup}.\n${paths}\n\n${out}`)
}

try { main() } catch (e) {
  if (!(e instanceof InputError)) throw e
  console.error(e.message)   // bad flags: one line
  process.exitCode = 2
}
