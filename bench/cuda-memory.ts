// The CUDA backend's GPU memory plan without a GPU: each --runs entry takes six training steps on the CPU emulator in
// plan mode, and its peak is the backend's own accounting, the number bench/cuda reports as "peak GiB" on a real
// GPU; a run needing more than 80 GiB is reported as out of memory. Needs g++ on x86-64 Linux.
// Run: npx tsc && node dist/bench/cuda-memory.js [--runs variant-124m:16,variant-124m:16:recompute] [--append] [--json]

import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { formatHelp, parseArgs } from '../src/cli/args.js'
import { presetConfig } from '../src/config.js'
import { ParamLayout } from '../src/model/params.js'
import { InputError } from '../src/util/errors.js'
import { buildEmulator, emulatorEnv, emulatorSkipReason } from '../test/backend/cuda-emu/build.js'
import { parseRuns, variantHelp } from './cuda-runs.js'
import { appendResults, benchCommand, lastJson } from './results.js'

const flags = {
  runs: { type: 'string', default: 'variant-124m:16,variant-124m:16:recompute,gpt2-124m:16,variant-350m:16,variant-124m:32,gpt2-124m:32',
    help: `model:B pairs, each optionally with ${variantHelp}` },
  seq: { type: 'int', min: 1, default: 1024, help: 'T' },
  append: { type: 'bool', help: 'append the table to bench/RESULTS.md' },
  json: { type: 'bool', help: 'print the results as JSON' },
} as const

interface Plan { model: string; B: number; T: number; peak_bytes: number; state_bytes: number; host_ms_per_step: number; error?: string }

const GiB = 2 ** 30

function main(): number {
  const { flags: f, help } = parseArgs('bench/cuda-memory', flags, process.argv.slice(2))
  if (help) {
    console.log(formatHelp('node dist/bench/cuda-memory.js', '[flags]',
      'the CUDA backend\'s peak GPU memory, planned on the CPU emulator', flags)); return 0
  }
  const runs = parseRuns('bench/cuda-memory', f.runs)
  const reason = emulatorSkipReason()
  if (reason !== null) throw new InputError(`bench/cuda-memory: the CPU emulator cannot run here: ${reason}`)
  // plan mode (LLMTS_EMU_PLAN=1): allocations are made but not filled, launches and matmuls are checked and skipped,
  // and the device looks like an H100
  const env = emulatorEnv(buildEmulator(), { plan: true })
  const bench = fileURLToPath(new URL('./cuda.js', import.meta.url))
  const plans: Plan[] = []
  for (const { run, model, B, variant, label } of runs) {
    const t0 = performance.now()
    // f32 weights, gradients and AdamW's two moments over the flat parameter buffer (padding included)
    const plan: Plan = { model: model + label, B, T: f.seq, peak_bytes: NaN, state_bytes: 16 * new ParamLayout(presetConfig(model)).total,
      host_ms_per_step: NaN }
    try {
      const out = execFileSync(process.execPath, [bench, '--seq', String(f.seq), '--steps', '5', '--warmup', '1',
        '--one', JSON.stringify({ model, B, variant })], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 << 20 })
      const r = lastJson<{ peak_bytes: number; ms_per_step: number }>(out)
      plan.peak_bytes = r.peak_bytes
      plan.host_ms_per_step = r.ms_per_step
    } catch (e) {
      const stderr = String((e as { stderr?: unknown }).stderr ?? '')
      if (!/out of memory/.test(stderr)) { process.stderr.write(stderr); throw e }
      plan.error = 'out of memory (more than the 80 GiB of an H100)'
    }
    plans.push(plan)
    console.error(`bench/cuda-memory: ${run}: ` +
      `${plan.error ?? `peak ${(plan.peak_bytes / GiB).toFixed(3)} GiB, host ${plan.host_ms_per_step.toFixed(1)} ms/step`} ` +
      `(${((performance.now() - t0) / 1000).toFixed(1)} s)`)
  }
  if (f.json) { console.log(JSON.stringify(plans)); return 0 }
  const rows = plans.map(p => p.error !== undefined ? `| ${p.model} | ${p.B} | ${p.error} | ${(p.state_bytes / GiB).toFixed(3)} | | |`
    : `| ${p.model} | ${p.B} | ${(p.peak_bytes / GiB).toFixed(3)} | ${(p.state_bytes / GiB).toFixed(3)} | ` +
      `${((p.peak_bytes - p.state_bytes) / GiB).toFixed(3)} | ` +
      `${p.host_ms_per_step.toFixed(1)} |`)
  const report = [`Planned on the CPU emulator (LLMTS_EMU_PLAN), T=${f.seq}: the peak of the CUDA backend's own allocation accounting ` +
    'over six training steps, as bench/cuda reports it on a GPU. Fixed state: f32 weights, gradients, AdamW m and v. ' +
    'Host ms/step: the mean time of the last five steps with every launch and matmul skipped, that is what the host ' +
    'spends issuing a step (an upper bound: it includes the emulator\'s checks); a GPU step taking longer hides it.', '',
    '| model | B | peak GiB | fixed state GiB | activations, bf16 copies, scratch GiB | host ms/step |', '|---|---:|---:|---:|---:|---:|',
    ...rows].join('\n')
  console.log(report)
  if (f.append) appendResults('cuda-memory', `Command: \`${benchCommand('cuda-memory')}\`\n\n${report}`)
  return 0
}

try { process.exitCode = main() } catch (e) {
  if (e instanceof InputError) { console.error(e.message); process.exitCode = 2 }
  else throw e
}
