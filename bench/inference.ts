// CPU inference speed: what `llmts sample` and `llmts eval hellaswag` pay per token and per example, on a preset
// with random weights (speed does not depend on them). sample: the prompt's one batched decode (time to first
// token) and then ms per generated token at several context lengths (the KV cache makes each O(context) in
// attention only). hellaswag: one synthetic example (a context, four endings) scored by one (4, T) forward, by
// the unbatched shared-prefix path (the context once through the cache, then the endings: two passes) and packed
// (one pass); then --examples synthetic examples of lengths around --packed scored unbatched and packed
// --batches examples a pass (ms per example: what `llmts eval hellaswag` pays). --append adds a dated entry to
// bench/RESULTS.md.
// Run: npx tsc && node dist/bench/inference.js [--model gpt2-124m] [--threads N] [--append]

import { readFileSync } from 'node:fs'
import { availableParallelism, cpus } from 'node:os'
import { CpuBackend } from '../src/backend/cpu/index.js'
import { formatHelp, parseArgs } from '../src/cli/args.js'
import { presetConfig } from '../src/config.js'
import { scorePrepared, type PreparedExample } from '../src/eval/hellaswag.js'
import { GPT } from '../src/model/gpt.js'
import { InputError } from '../src/util/errors.js'
import { appendResults, benchCommand } from './results.js'
import { bestMs } from './timing.js'

const flags = {
  model: { type: 'string', default: 'gpt2-124m', help: 'preset' },
  threads: { type: 'int', min: 1, default: availableParallelism(), help: 'CPU threads' },
  contexts: { type: 'string', default: '16,256,768', help: 'sample: prompt lengths (tokens) to decode after' },
  tokens: { type: 'int', min: 1, default: 4, help: 'sample: generated tokens timed per context (best is kept)' },
  hellaswag: { type: 'string', default: '40x24,300x24', help: 'hellaswag: CONTEXTxENDING token lengths of the synthetic examples' },
  rounds: { type: 'int', min: 1, default: 2, help: 'hellaswag: times each path scores the example (best is kept)' },
  packed: { type: 'string', default: '40x24', help: 'hellaswag, several examples: CONTEXTxENDING around which their lengths vary' },
  examples: { type: 'int', min: 1, default: 16, help: 'hellaswag, several examples: how many are scored per timing' },
  batches: { type: 'string', default: '1,2,4,8,16', help: 'hellaswag, several examples: examples a packed pass' },
  append: { type: 'bool', help: 'append the results to bench/RESULTS.md' },
} as const

const ids = (n: number, salt: number): number[] => Array.from({ length: n }, (_, i) => (i * 7919 + salt * 104_729) % 50_257)


function sampleTable(gpt: GPT, contexts: number[], tokens: number): string {
  const lines = ['| prompt tokens | prompt decode ms (first token) | ms / generated token | tokens/s |', '|---:|---:|---:|---:|']
  for (const L of contexts) {
    const cache = gpt.createCache(1, L + tokens)
    const t0 = performance.now()
    gpt.decode(cache, Int32Array.from(ids(L, 1)), 1, L)
    const first = performance.now() - t0
    const per = bestMs(tokens, () => gpt.decode(cache, Int32Array.of(cache.length % 50_257), 1, 1))
    gpt.releaseCache(cache)
    lines.push(`| ${L} | ${first.toFixed(0)} | ${per.toFixed(1)} | ${(1000 / per).toFixed(1)} |`)
    console.error(`bench: sample after ${L} tokens: ${per.toFixed(1)} ms/token`)
  }
  return lines.join('\n')
}

/** A synthetic example: a context of lc tokens, four endings of le + step·e tokens (e = 0..3), salted apart. */
function example(lc: number, le: number, step: number, salt: number): PreparedExample {
  const ctx = ids(lc, 2 + 5 * salt)
  return { rows: [0, 1, 2, 3].map(e => ({ ctx, cont: ids(le + step * e, 3 + e + 5 * salt) })), label: 0 }
}

function hellaswagTable(gpt: GPT, shapes: [number, number][], rounds: number): string {
  const lines = ['| context × ending | forward ms | rows | shared-prefix ms | rows | packed (1 a pass) ms | speed-up |',
    '|---|---:|---:|---:|---:|---:|---:|']
  for (const [lc, le] of shapes) {
    const ex = example(lc, le, 0, 0)
    const time = (method: 'forward' | 'shared-prefix' | 'packed'): number =>
      bestMs(rounds, () => scorePrepared(gpt, [ex], { scoring: 'llmc', shots: 0, method }))
    const full = time('forward'), shared = time('shared-prefix'), packed = time('packed')
    const rows = ex.rows.reduce((n, r) => n + r.cont.length, 0)
    lines.push(`| ${lc} × ${le} | ${full.toFixed(0)} | ${4 * (lc - 1) + rows} | ${shared.toFixed(0)} | ${lc - 1 + rows} | ` +
      `${packed.toFixed(0)} | ${(full / shared).toFixed(2)}×, ${(full / packed).toFixed(2)}× |`)
    console.error(`bench: hellaswag ${lc}x${le}: forward ${full.toFixed(0)} ms, shared prefix ${shared.toFixed(0)} ms, packed ${packed.toFixed(0)} ms`)
  }
  return lines.join('\n')
}

/** ms per example over `count` examples (contexts lc-8..lc+8, endings le-4..le+3), unbatched and packed. */
function packedTable(gpt: GPT, [lc, le]: [number, number], count: number, batches: number[], rounds: number): string {
  const exs = Array.from({ length: count }, (_, i) => example(lc - 8 + (i * 5) % 17, le - 4 + (i * 3) % 5, 1, i + 1))
  const lines = ['| examples a pass | ms / example | examples/s | speed-up | CPU ms / example | speed-up (CPU) |',
    '|---|---:|---:|---:|---:|---:|']
  // best wall and best CPU time (this process's threads) of the rounds: a busy machine stretches the wall time most
  const time = (opts: { method: 'shared-prefix' | 'packed'; batchExamples?: number }): [number, number] => {
    let wall = Infinity, cpu = Infinity
    for (let r = 0; r < rounds; r++) {
      const c0 = process.cpuUsage(), t0 = performance.now()
      scorePrepared(gpt, exs, { scoring: 'llmc', shots: 0, ...opts })
      const c = process.cpuUsage(c0)
      wall = Math.min(wall, (performance.now() - t0) / count)
      cpu = Math.min(cpu, (c.user + c.system) / 1000 / count)
    }
    return [wall, cpu]
  }
  const [base, baseCpu] = time({ method: 'shared-prefix' })
  const row = (what: string, [ms, cpu]: [number, number]): string =>
    `| ${what} | ${ms.toFixed(0)} | ${(1000 / ms).toFixed(2)} | ${(base / ms).toFixed(2)}× | ${cpu.toFixed(0)} | ${(baseCpu / cpu).toFixed(2)}× |`
  lines.push(row('unbatched (shared-prefix: 2 passes an example)', [base, baseCpu]))
  console.error(`bench: hellaswag ${count} examples around ${lc}x${le}, unbatched: ${base.toFixed(0)} ms/example, ${baseCpu.toFixed(0)} CPU ms`)
  for (const b of batches) {
    const t = time({ method: 'packed', batchExamples: b })
    lines.push(row(String(b), t))
    console.error(`bench: hellaswag packed ${b} a pass: ${t[0].toFixed(0)} ms/example, ${t[1].toFixed(0)} CPU ms`)
  }
  return lines.join('\n')
}

function machine(): string {
  let load = ''
  try {
    load = `, load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} at start`
  } catch { /* not Linux */ }
  return `${availableParallelism()} cores (nproc), ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}${load}`
}

function main(): void {
  const { flags: f, help } = parseArgs('bench/inference', flags, process.argv.slice(2))
  if (help) {
    console.log(formatHelp('node dist/bench/inference.js', '[flags]', 'CPU sampling and HellaSwag scoring speed', flags))
    return
  }
  const host = machine()
  const contexts = f.contexts.split(',').map(Number)
  const shapes = f.hellaswag.split(',').map(s => s.split('x').map(Number) as [number, number])
  const packed = f.packed.split('x').map(Number) as [number, number], batches = f.batches.split(',').map(Number)
  if ([...contexts, ...shapes.flat(), ...batches].some(n => !(Number.isSafeInteger(n) && n >= 1)) ||
      !(packed.length === 2 && packed[0] >= 9 && packed[1] >= 5)) {
    throw new InputError(`bench/inference: --contexts ${f.contexts} / --hellaswag ${f.hellaswag} / --batches ${f.batches} / ` +
      `--packed ${f.packed}: expected positive integers (e.g. 16,256 and 40x24 and 1,8; --packed at least 9x5)`)
  }
  const be = new CpuBackend({ threads: f.threads })
  const longest = Math.max(...[...shapes, [packed[0] + 8, packed[1] + 3]].map(([lc, le]) => lc! + le! + 2))
  const gpt = new GPT(be, presetConfig(f.model), { maxBatch: 4, maxSeqLen: longest })
  gpt.initWeights(1337)
  const out = `sample (${f.model}, best of ${f.tokens} tokens):\n\n${sampleTable(gpt, contexts, f.tokens)}\n\n` +
    `hellaswag, one example (${f.model}, best of ${f.rounds}):\n\n${hellaswagTable(gpt, shapes, f.rounds)}\n\n` +
    `hellaswag, ${f.examples} examples around ${f.packed} (${f.model}, best of ${f.rounds}):\n\n` +
    packedTable(gpt, packed, f.examples, batches, f.rounds)
  console.log(out)
  if (f.append) appendResults('inference', `Machine: ${host}.\nCommand: \`${benchCommand('inference')}\` — ${be.describe()}.\n\n${out}`)
}

try { main() } catch (e) {
  if (!(e instanceof InputError)) throw e
  console.error(e.message)   // bad flags: one line
  process.exitCode = 2
}
