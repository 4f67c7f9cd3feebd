// End to end through the CLI: `llmts train --device cuda` against `--device cpu` on the same small run — shards of
// the built-in Moby-Dick corpus (offline), a small GPT-2-style and a small variant model (GPT-2 vocabulary),
// 10 steps with 2-way gradient accumulation, clipping, validation every 5 steps and a checkpoint at step 5 — then
// a CUDA run resumed from that checkpoint must continue like the uninterrupted one. Prints the curves; exit 1 when
// the CUDA losses leave the bf16 tolerance. Run: npx tsc && node dist/bench/cuda-train.js [--out DIR]

import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { formatHelp, parseArgs } from '../src/cli/args.js'
import { readLog, series, type LogRecord } from '../src/train/log.js'

const flags = {
  out: { type: 'string', default: '/tmp/llmts-cuda-train', help: 'working folder (shards, runs)' },
  steps: { type: 'int', min: 2, default: 10, help: 'optimizer steps (the resume check restarts at steps/2)' },
  tolerance: { type: 'number', min: 0, default: 0.02, help: 'max relative difference of CUDA (bf16) losses from the CPU ones' },
} as const

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url))   // the CLI of the same build
const llmts = (args: string[]): void => { execFileSync(process.execPath, [cli, ...args], { stdio: ['ignore', 'inherit', 'inherit'] }) }

const models: Record<string, object> = {
  gpt2: { preset: 'gpt2-124m', layers: 2, channels: 128, heads: 4, contextLength: 128 },
  variant: { preset: 'variant-124m', layers: 2, channels: 128, heads: 4, kvHeads: 2, contextLength: 128 },
}

function train(dir: string, name: string, device: string, data: string, steps: number, extra: string[] = []): LogRecord[] {
  const run = join(dir, `${name}-${device}`)
  llmts(['train', '--model', join(dir, `${name}.json`), '--data', data, '--device', device, '--out', run, '--steps', String(steps),
    '--batch-size', '4', '--seq-len', '128', '--total-batch-size', '1024', '--lr', '3e-3', '--warmup-steps', '2',
    '--val-every', String(Math.floor(steps / 2)), '--val-steps', '2', '--checkpoint-every', String(Math.floor(steps / 2)),
    '--sample-every', '0', '--overwrite', ...extra])
  return readLog(join(run, 'log.jsonl'))
}

function main(): number {
  const { flags: f, help } = parseArgs('bench/cuda-train', flags, process.argv.slice(2))
  if (help) { console.log(formatHelp('node dist/bench/cuda-train.js', '[flags]', 'CPU vs CUDA training through the CLI', flags)); return 0 }
  const dir = resolve(f.out), data = join(dir, 'data')
  mkdirSync(dir, { recursive: true })
  if (!existsSync(join(data, 'moby-dick.json'))) llmts(['prepare', '--corpus', 'moby-dick', '--out', data, '--workers', '0'])
  let ok = true
  for (const [name, json] of Object.entries(models)) {
    writeFileSync(join(dir, `${name}.json`), JSON.stringify(json))
    const cpu = train(dir, name, 'cpu', data, f.steps), cuda = train(dir, name, 'cuda', data, f.steps)
    const pick = (log: LogRecord[], key: string): number[] => series(log, key).map(p => p.value)
    const [a, b] = [pick(cpu, 'loss'), pick(cuda, 'loss')]
    const worst = Math.max(...a.map((x, i) => Math.abs(x - b[i]!) / Math.abs(x)))
    console.log(`${name}: cpu  ${a.map(x => x.toFixed(4)).join(' ')}\n${name}: cuda ${b.map(x => x.toFixed(4)).join(' ')}`)
    console.log(`${name}: val cpu ${pick(cpu, 'val_loss').map(x => x.toFixed(4)).join(' ')} ` +
      `cuda ${pick(cuda, 'val_loss').map(x => x.toFixed(4)).join(' ')}`)
    console.log(`${name}: worst relative loss difference ${worst.toExponential(2)} (tolerance ${f.tolerance})`)
    if (!(worst <= f.tolerance) || a.length !== f.steps || b.length !== f.steps) ok = false
    // resume on CUDA from the step-(steps/2) checkpoint of a copy of the CUDA run: the rest must repeat exactly
    const copy = join(dir, `${name}-cuda-resumed`)
    rmSync(copy, { recursive: true, force: true })
    cpSync(join(dir, `${name}-cuda`), copy, { recursive: true })
    const half = Math.floor(f.steps / 2)
    rmSync(join(copy, 'checkpoints', `step_${String(f.steps).padStart(6, '0')}`), { recursive: true, force: true })
    llmts(['train', '--resume', '--out', copy])
    const c = pick(readLog(join(copy, 'log.jsonl')), 'loss')
    const resumeWorst = Math.max(...b.slice(half).map((x, i) => Math.abs(x - c[half + i]!) / Math.abs(x)))
    console.log(`${name}: resumed from step ${half}: ${c.slice(half).map(x => x.toFixed(4)).join(' ')} ` +
      `(worst difference ${resumeWorst.toExponential(2)})`)
    if (!(resumeWorst <= 1e-3)) ok = false
  }
  console.log(ok ? 'cuda-train: OK' : 'cuda-train: MISMATCH')
  return ok ? 0 : 1
}

process.exitCode = main()
