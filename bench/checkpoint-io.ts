// Benchmark of checkpoint I/O at the scale of real runs: writeCheckpoint (weights + AdamW m, v) and the resume-side
// readCheckpoint (with and without the optimizer) of a model with random weights, each stage in its own child
// process so that its wall time and peak RSS (process.resourceUsage().maxRSS) are its own; "extra" is the peak minus
// the RSS once the stage's inputs are built (what the stage itself adds). "parts" splits a write into what it does: the
// copy a CPU backend's download makes (weights, m, v), SHA-256 of those bytes, the write syscalls (page cache), the
// fsync. Run: npx tsc && node
// dist/bench/checkpoint-io.js [--model gpt2-124m] [--dir /tmp/llmts-bench-ck] [--keep] [--append]

import { execFileSync } from 'node:child_process'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { createHash } from 'node:crypto'
import { closeSync, fsyncSync, mkdirSync, openSync, rmSync, statSync, writeSync } from 'node:fs'
import { presetConfig } from '../src/config.js'
import { ParamLayout } from '../src/model/params.js'
import { readCheckpoint, writeCheckpoint } from '../src/train/checkpoint.js'
import { Rng } from '../src/util/rng.js'
import { appendResults, benchCommand } from './results.js'

interface Measure { stage: string; seconds: number; peakMiB: number; extraMiB: number }
interface Parts { copy: number; sha256: number; write: number; fsync: number }

const mib = (kib: number): number => Math.round(kib / 1024)
const rssKiB = (): number => Math.round(process.memoryUsage().rss / 1024)

/** Random values in [-0.5, 0.5) (every page touched, as a trained model's are). */
function randomArray(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n)
  for (let i = 0; i < n; i++) a[i] = rng.nextU32() / 2 ** 32 - 0.5
  return a
}

/** The parts of a write of weights, m and v (each timed alone, seconds): a copy of each as download makes on the CPU
 *  backend (.slice()), their SHA-256, writeSync of their bytes to one file, then its fsync. */
function measureParts(total: number, dir: string): Parts {
  const rng = new Rng(1337)
  const arrays = [randomArray(total, rng), randomArray(total, rng), randomArray(total, rng)]
  const time = (f: () => void): number => { const t0 = performance.now(); f(); return (performance.now() - t0) / 1000 }
  let copies: Float32Array[] = []
  const copy = time(() => { copies = arrays.map(a => a.slice()) })
  const bytes = copies.map(a => new Uint8Array(a.buffer))
  const sha256 = time(() => { for (const b of bytes) createHash('sha256').update(b).digest() })
  mkdirSync(dir, { recursive: true })
  const fd = openSync(join(dir, 'parts.bin'), 'w')
  try {
    const write = time(() => { for (const b of bytes) for (let off = 0; off < b.byteLength;) off += writeSync(fd, b, off, Math.min(2 ** 30, b.byteLength - off)) })
    const fsync = time(() => fsyncSync(fd))
    return { copy, sha256, write, fsync }
  } finally { closeSync(fd); rmSync(join(dir, 'parts.bin'), { force: true }) }
}

/** One stage, in this (child) process: prints its Measure as JSON. */
function runStage(stage: string, model: string, dir: string): void {
  const config = presetConfig(model)
  const total = new ParamLayout(config).total
  if (stage === 'parts') { console.log(JSON.stringify(measureParts(total, dir))); return }
  let run: () => void
  if (stage === 'write') {
    const rng = new Rng(1337)
    const params = randomArray(total, rng), m = randomArray(total, rng), v = randomArray(total, rng)
    run = () => writeCheckpoint(dir, {
      modelConfig: config, trainConfig: null, params, optimizer: { m, v, step: 1 },
      progress: { step: 1, loader: null, rng: [1, 2, 3, 4], valLoss: null, bestValLoss: null },
    })
  } else {
    run = () => { readCheckpoint(dir, { withOptimizer: stage === 'read' }) }
  }
  const before = rssKiB(), t0 = performance.now()
  run()
  const seconds = (performance.now() - t0) / 1000, peak = process.resourceUsage().maxRSS
  console.log(JSON.stringify({ stage, seconds, peakMiB: mib(peak), extraMiB: mib(peak - before) } satisfies Measure))
}

function main(): void {
  const args = process.argv.slice(2)
  const opt = (name: string, dflt: string): string => { const i = args.indexOf(name); return i < 0 ? dflt : args[i + 1]! }
  const model = opt('--model', 'gpt2-124m'), dir = opt('--dir', '/tmp/llmts-bench-ck')
  if (args[0] === 'stage') { runStage(args[1]!, model, dir); return }
  const self = fileURLToPath(import.meta.url)
  const rows: Measure[] = []
  for (const stage of ['write', 'read', 'read-model']) {
    const out = execFileSync(process.execPath, [self, 'stage', stage, '--model', model, '--dir', dir], { encoding: 'utf8' })
    rows.push(JSON.parse(out.trim().split('\n').at(-1)!) as Measure)
    console.error(`${stage}: ${rows.at(-1)!.seconds.toFixed(2)} s`)
  }
  const partsOut = execFileSync(process.execPath, [self, 'stage', 'parts', '--model', model, '--dir', dir], { encoding: 'utf8' })
  const parts = JSON.parse(partsOut.trim().split('\n').at(-1)!) as Parts
  const size = (f: string): string => (statSync(join(dir, f), { throwIfNoEntry: false })?.size ?? 0).toLocaleString('en-US')
  const table = [
    `Checkpoint of ${model} (${new ParamLayout(presetConfig(model)).total.toLocaleString('en-US')} floats): ` +
    `model.safetensors ${size('model.safetensors')} B, optimizer.safetensors ${size('optimizer.safetensors')} B.`, '',
    '| stage | wall s | peak RSS MiB | extra MiB |', '|---|---:|---:|---:|',
    ...rows.map(r => `| ${r.stage} | ${r.seconds.toFixed(2)} | ${r.peakMiB} | ${r.extraMiB} |`), '',
    'The parts of a write (weights, m, v), each timed alone:', '',
    '| copy (download) s | sha256 s | write syscalls s | fsync s |', '|---:|---:|---:|---:|',
    `| ${parts.copy.toFixed(2)} | ${parts.sha256.toFixed(2)} | ${parts.write.toFixed(2)} | ${parts.fsync.toFixed(2)} |`,
  ].join('\n')
  console.log(table)
  if (!args.includes('--keep')) rmSync(dir, { recursive: true, force: true })
  if (args.includes('--append')) {
    const machine = `Machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}.`
    appendResults('checkpoint-io', `${machine}\nCommand: \`${benchCommand('checkpoint-io')}\`\n\n${table}`)
  }
}

main()
