// CPU inference speed: what `llmts sample` and `llmts eval hellaswag` pay per token and per example, on a preset
// with random weights (speed does not depend on them). sample: the prompt's one batched decode (time to first
// token) and then ms per generated token at several context lengths (the KV cache makes each O(context) in
// attention only). hellaswag: one synthetic example (a context, four endings) scored by one (4, T) forward and by
// the shared-prefix path (the context once through the cache). --append adds a dated entry to bench/RESULTS.md.
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

function hellaswagTable(gpt: GPT, shapes: [number, number][], rounds: number): string {
  const lines = ['| context × ending | forward ms | rows | shared-prefix ms | rows | speed-up |', '|---|---:|---:|---:|---:|---:|']
  for (const [lc, le] of shapes) {
    const ctx = ids(lc, 2)
    const example: PreparedExample = { rows: [0, 1, 2, 3].map(e => ({ ctx, cont: ids(le, 3 + e) })), label: 0 }
    const time = (method: 'forward' | 'shared-prefix'): number =>
      bestMs(rounds, () => scorePrepared(gpt, [example], { scoring: 'llmc', shots: 0, method }))
    const full = time('forward'), shared = time('shared-prefix')
    lines.push(`| ${lc} × ${le} | ${full.toFixed(0)} | ${4 * (lc + le - 1)} | ${shared.toFixed(0)} | ${lc - 1 + 4 * le} | ` +
      `${(full / shared).toFixed(2)}× |`)
    console.error(`bench: hellaswag ${lc}x${le}: forward ${full.toFixed(0)} ms, shared prefix ${shared.toFixed(0)} ms`)
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
  if ([...contexts, ...shapes.flat()].some(n => !(Number.isSafeInteger(n) && n >= 1))) {
    throw new InputError(`bench/inference: --contexts ${f.contexts} / --hellaswag ${f.hellaswag}: expected positive integers (e.g. 16,256 and 40x24)`)
  }
  const be = new CpuBackend({ threads: f.threads })
  const longest = Math.max(...shapes.map(([lc, le]) => lc + le - 1))
  const gpt = new GPT(be, presetConfig(f.model), { maxBatch: 4, maxSeqLen: longest })
  gpt.initWeights(1337)
  const out = `sample (${f.model}, best of ${f.tokens} tokens):\n\n${sampleTable(gpt, contexts, f.tokens)}\n\n` +
    `hellaswag, one example (${f.model}, best of ${f.rounds}):\n\n${hellaswagTable(gpt, shapes, f.rounds)}`
  console.log(out)
  if (f.append) appendResults('inference', `Machine: ${host}.\nCommand: \`${benchCommand('inference')}\` — ${be.describe()}.\n\n${out}`)
}

try { main() } catch (e) {
  if (!(e instanceof InputError)) throw e
  console.error(e.message)   // bad flags: one line
  process.exitCode = 2
}
