// `llmts prepare`: text, JSONL, Parquet (files, directories, globs) or a built-in corpus -> llm.c token shards.
// Progress goes to stderr: a cli-progress bar on a terminal, a plain line every 10 s otherwise; stdout gets
// the summary (or, with --json, only the JSON result).

import { availableParallelism } from 'node:os'
import { basename, extname } from 'node:path'
import cliProgress from 'cli-progress'
import { checkName, prepare, prepareDefaults, type PrepareProgress, type PrepareResult } from '../data/prepare.js'
import { MAX_SHARD_TOKENS, MIN_SHARD_SIZE } from '../data/shards.js'
import { corpora, openCorpus, sharedTinyShakespeare } from '../data/sources/corpora.js'
import { openInputs } from '../data/sources/inputs.js'
import { InputError } from '../util/errors.js'
import { formatHelp, jsonFlag, parseArgs } from './args.js'
import type { Command } from './command.js'
import { summaries } from './commands.js'
import { checkOutputDir } from '../util/atomic.js'
import { lockOutput } from '../util/lock.js'
import { formatCount, formatDuration, plural } from '../util/progress.js'
import { tokenizerWorkers } from '../data/pool.js'
import { liveProgress, printJson, stderrNotes } from './output.js'

const flags = {
  corpus: { type: 'enum', values: Object.keys(corpora), help: 'a built-in corpus instead of INPUT files' },
  out: { type: 'string', metavar: 'DIR', help: 'output directory (required)' },
  name: { type: 'string', metavar: 'NAME', help: 'output file prefix (default: the corpus\'s name, the input\'s name when there is one, else data)' },
  'val-tokens': { type: 'int', min: 0, max: MAX_SHARD_TOKENS, default: prepareDefaults.valTokens,
    help: 'the first N tokens form NAME_val_000000.bin' },
  'shard-size': { type: 'int', min: MIN_SHARD_SIZE, max: MAX_SHARD_TOKENS, default: prepareDefaults.shardSize, help: 'tokens per train shard' },
  workers: { type: 'int', min: 0, max: 1024, default: availableParallelism(),
    help: 'tokenizer threads, at most one per core (0: tokenize on the main thread)' },
  'text-column': { type: 'string', metavar: 'NAME', default: 'text', help: 'JSONL field / Parquet column holding the text' },
  'tinyshakespeare-path': { type: 'string', metavar: 'FILE',
    help: `local tinyshakespeare (default ${sharedTinyShakespeare()}, i.e. ../shared/data beside the llm.ts checkout; ` +
      'else the cache\'s downloads/, else downloaded once there)' },
  'allow-special': { type: 'bool', help: 'treat "<|endoftext|>" in the text as the end-of-text token (default: ordinary text)' },
  json: jsonFlag,
} as const

const summary = summaries.prepare
const details = `
INPUT is a file, a directory (its .txt, .text, .md, .jsonl, .ndjson and .parquet files, recursively) or a quoted glob.
Text files are one document each; JSONL and Parquet give one document per line/row. Every document
starts with <|endoftext|> (50256). Output: OUT/NAME_val_000000.bin, OUT/NAME_train_000001.bin, ...
and OUT/NAME.json (written last). FineWeb from the hub: llmts prepare fineweb --help. Built-in corpora:${
  Object.entries(corpora).map(([k, v]) => `\n  ${k.padEnd(17)}${v}`).join('')}
`

function defaultName(inputs: string[]): string {
  const first = inputs.length === 1 ? basename(inputs[0]!.replace(/[\\/]+$/, '')) : 'data'
  const stem = first.slice(0, first.length - extname(first).length) || first
  return stem.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[^A-Za-z0-9]+/, '') || 'data'
}

export const command: Command = {
  name: 'prepare',
  summary,
  usage: '[INPUT...] [--corpus NAME] --out DIR [flags]',
  flags,
  subcommands: { fineweb: () => import('./prepare-fineweb.js') },   // its lines name it: `llmts prepare fineweb: `
  async run(argv) {
    // `llmts prepare fineweb ...`: download + tokenize FineWeb (src/cli/prepare-fineweb.ts has its own flags)
    if (argv[0] === 'fineweb') return (await this.subcommands!['fineweb']!()).command.run(argv.slice(1))
    const p = parseArgs('llmts prepare', flags, argv)
    if (p.help) { process.stdout.write(formatHelp('llmts prepare', this.usage, summary, flags) + details); return 0 }
    const f = p.flags
    if (f.out === undefined) throw new InputError('llmts prepare: --out DIR is required (where the shards go)')
    checkOutputDir('llmts prepare', '--out', f.out)
    if (f.corpus !== undefined && p.positionals.length > 0) throw new InputError('llmts prepare: give INPUT files or --corpus NAME, not both')
    if (f.corpus === undefined && p.positionals.length === 0) {
      throw new InputError(`llmts prepare: nothing to prepare ` +
        `(give INPUT files, directories or globs, or --corpus ${Object.keys(corpora).join('|')})`)
    }
    const name = f.name ?? f.corpus ?? defaultName(p.positionals)
    checkName(name)
    // two prepares of one NAME into one folder would mix their shards: the second is refused (other names may share it)
    const lock = lockOutput(f.out, { command: 'llmts prepare', flag: '--out', note: stderrNotes(['prepare']), name: `.${name}.lock` })
    try { return await run(f, p.positionals, name) } finally { lock.release() }
  },
}

type PrepareFlags = ReturnType<typeof parseArgs<typeof flags>>['flags']

async function run(f: PrepareFlags, inputs: string[], name: string): Promise<number> {
  const source = f.corpus !== undefined
    ? await openCorpus(f.corpus, f['tinyshakespeare-path'] === undefined ? {} : { tinyshakespearePath: f['tinyshakespeare-path'] })
    : await openInputs(inputs, { textColumn: f['text-column'], note: stderrNotes(['prepare']) })
  const progress = new ProgressDisplay()
  let result: PrepareResult
  try {
    result = await prepare({
      source, outDir: f.out!, name, valTokens: f['val-tokens'],
      shardSize: f['shard-size'], workers: tokenizerWorkers(f.workers), allowSpecial: f['allow-special'],
      onProgress: q => progress.update(q),
    })
  } finally {
    progress.stop()
  }
  if (f.json) { printJson(result); return 0 }
  const n = (x: number): string => x.toLocaleString('en-US')
  process.stdout.write(`prepared ${result.name}: ${n(result.documents)} ${plural(result.documents, 'document')}, ${n(result.tokens)} tokens ` +
    `(val ${n(result.valTokens)}, train ${n(result.trainTokens)}) in ${result.seconds.toFixed(1)} s ` +
    `(${n(Math.round(result.tokensPerSecond))} tokens/s, ${result.workers} workers)\n`)
  for (const file of [...result.val, ...result.train, result.meta]) process.stdout.write(`  ${file}\n`)
  return 0
}

/** Progress on stderr: a bar on a terminal, a plain line every 10 s otherwise. */
class ProgressDisplay {
  private bar: cliProgress.SingleBar | null = null
  private lastLine = 0

  update(q: PrepareProgress): void {
    const rate = q.seconds > 0 ? q.tokens / q.seconds : 0
    const payload = { docs: formatCount(q.documents), toks: formatCount(q.tokens), rate: formatCount(rate) }
    if (liveProgress()) {
      if (this.bar === null) {
        const format = q.totalBytes !== undefined
          ? '{bar} {percentage}% | {docs} docs | {toks} tokens | {rate} tok/s | ETA {eta_formatted}'
          : '{docs} docs | {toks} tokens | {rate} tok/s | {duration_formatted}'
        this.bar = new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true, etaBuffer: 50 }, cliProgress.Presets.shades_classic)
        this.bar.start(q.totalBytes ?? 1, 0, payload)
      }
      this.bar.update(q.totalBytes !== undefined ? Math.min(q.bytes, q.totalBytes) : 0, payload)
    } else if (q.seconds - this.lastLine >= 10) {
      this.lastLine = q.seconds
      process.stderr.write(plainLine(q) + '\n')
    }
  }

  stop(): void {
    this.bar?.stop()
    this.bar = null
  }
}

/** prepare's progress off a terminal, its fields as the bar's (' | '): percent and ETA by input bytes when they are
 *  known (the ETA at the run's average rate so far). */
export function plainLine(q: PrepareProgress): string {
  const rate = q.seconds > 0 ? q.tokens / q.seconds : 0
  const known = q.totalBytes !== undefined && q.totalBytes > 0
  const pct = known ? `${(100 * q.bytes / q.totalBytes!).toFixed(0)}% | ` : ''
  const eta = known && q.bytes > 0 ? ` | ETA ${formatDuration(q.seconds * (q.totalBytes! - q.bytes) / q.bytes)}` : ''
  return `prepare: ${pct}${formatCount(q.documents)} docs | ${formatCount(q.tokens)} tokens | ${formatCount(rate)} tok/s${eta}`
}
