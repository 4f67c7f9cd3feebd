// `llmts prepare fineweb`: flags, progress (two cli-progress bars on a terminal, a line every 10 s otherwise),
// Ctrl-C (stops cleanly; the same command resumes) and the summary. src/cli/prepare.ts hands over argv when
// the first positional is "fineweb"; the work lives in src/data/fineweb/ and src/io/hub/.

import { availableParallelism } from 'node:os'
import { formatHelp, jsonFlag, parseArgs, refuseArguments } from './args.js'
import { InputError, Interrupted } from '../util/errors.js'
import { prepareDefaults } from '../data/prepare.js'
import { MAX_SHARD_TOKENS, MIN_SHARD_SIZE } from '../data/shards.js'
import { Display } from './display.js'
import { finewebSpec, prepareFineweb, type FinewebResult } from '../data/fineweb/fineweb.js'
import { formatBytes, plural } from '../util/progress.js'
import { checkOutputDir } from '../util/atomic.js'
import { tokenizerWorkers } from '../data/pool.js'
import { commandLine, jsonText, stderrNotes } from './output.js'
import { lockOutput } from '../util/lock.js'
import type { Command } from './command.js'

const flags = {
  edu: { type: 'bool', help: 'HuggingFaceFW/fineweb-edu instead of HuggingFaceFW/fineweb (shards named edufineweb_*)' },
  size: { type: 'enum', values: ['10B', '100B'], default: '10B', help: 'the sample: sample/10BT or sample/100BT' },
  out: { type: 'string', metavar: 'DIR', help: 'output directory for the shards (required, but with --download-only)' },
  workers: { type: 'int', min: 0, max: 1024, default: availableParallelism(),
    help: 'tokenizer threads, at most one per core (0: tokenize on the main thread)' },
  'download-workers': { type: 'int', min: 1, max: 64, default: 4, help: 'files downloaded in parallel' },
  'base-url': { type: 'string', metavar: 'URL', help: 'hub or mirror (default $HF_ENDPOINT, else https://huggingface.co)' },
  cache: { type: 'string', metavar: 'DIR', help: 'where the Parquet files go (default datasets/REPO in the cache: ' +
    '$LLMTS_CACHE, else $XDG_CACHE_HOME/llmts, else ~/.cache/llmts)' },
  'shard-size': { type: 'int', min: MIN_SHARD_SIZE, max: MAX_SHARD_TOKENS, default: prepareDefaults.shardSize,
    help: 'tokens per shard; the first shard is validation' },
  'download-only': { type: 'bool', help: 'download and verify the Parquet files, do not tokenize' },
  json: jsonFlag,
} as const

const summary = 'download a FineWeb sample from the Hugging Face hub (resumable) and tokenize it into llm.c shards'
const details = `
Downloads HuggingFaceFW/fineweb (or fineweb-edu) sample/10BT or sample/100BT: the file list is saved as
CACHE/sample/NBT/manifest.json, files are fetched with HTTP Range requests (an interrupted file continues),
retried with backoff, and checked (size, sha256, Parquet footer) before they count. HF_TOKEN is sent when set.
Tokenization starts while later files download. Output as llm.c: OUT/NAME_val_000000.bin (the first shard),
OUT/NAME_train_000001.bin, ... and OUT/NAME.json (written last). Interrupted runs resume: run the same command.
`

export const command: Command = {
  name: 'prepare fineweb',
  summary,
  usage: '[--edu] [--size 10B|100B] --out DIR [flags]',
  flags,
  run: argv => runPrepareFineweb(argv),
}

/** Runs `llmts prepare fineweb ...` (argv after "fineweb"); returns the exit code. Results go to `stdout`. */
export async function runPrepareFineweb(argv: string[], stdout: { write(s: string): unknown } = process.stdout): Promise<number> {
  const cmd = 'llmts prepare fineweb'
  const p = parseArgs(cmd, flags, argv)
  if (p.help) { stdout.write(formatHelp(cmd, command.usage, summary, flags) + details); return 0 }
  refuseArguments(cmd, p.positionals, { hint: 'fineweb takes only flags' })
  const f = p.flags
  if (f.out === undefined && !f['download-only']) throw new InputError(`${cmd}: --out DIR is required (where the shards go)`)
  if (f.out !== undefined) checkOutputDir(cmd, '--out', f.out)
  // as llmts prepare: two runs writing one dataset's shards into one folder are refused (another dataset may share it)
  const lock = f.out === undefined || f['download-only'] ? undefined
    : lockOutput(f.out, { command: cmd, flag: '--out', note: stderrNotes(['prepare', 'fineweb']), name: `.${finewebSpec({ edu: f.edu }).name}.lock` })
  try { return await fetchAndTokenize(f, stdout) } finally { lock?.release() }
}

type FinewebFlags = ReturnType<typeof parseArgs<typeof flags>>['flags']

async function fetchAndTokenize(f: FinewebFlags, stdout: { write(s: string): unknown }): Promise<number> {
  const stop = new AbortController()
  const onSigint = (): void => stop.abort(new Interrupted('fineweb: interrupted; run the same command again to resume'))
  process.once('SIGINT', onSigint)
  const display = new Display()
  const note = (line: string): void => display.log(commandLine(['prepare', 'fineweb'], line))   // `fineweb: ` goes
  let result: FinewebResult
  try {
    result = await prepareFineweb({
      edu: f.edu, size: f.size as '10B' | '100B', workers: tokenizerWorkers(f.workers),
      outDir: f.out ?? '.',   // --download-only writes no shards
      downloadWorkers: f['download-workers'],
      shardSize: f['shard-size'], downloadOnly: f['download-only'], signal: stop.signal,
      ...(f['base-url'] === undefined ? {} : { baseUrl: f['base-url'] }), ...(f.cache === undefined ? {} : { cacheDir: f.cache }),
      http: { onRetry: r => note(`${r.reason} on ${r.url}; retry ${r.attempt} in ${(r.waitMs / 1000).toFixed(1)} s`) },
      onManifest: (m, info) => note(`${m.repo} ${m.dir}: ${m.files.length} files, ` +
        `${formatBytes(m.files.reduce((n, x) => n + x.size, 0))} (${info.fromCache ? 'manifest from the cache' : 'listed from the hub'}) ` +
        `in ${info.cacheDir}; disk: need ~${formatBytes(info.needBytes)}, ${formatBytes(info.freeBytes)} free`),
      onDownloadProgress: q => display.download(q),
      onTokenizeProgress: q => display.tokenize(q),
      onNote: note,
    })
  } finally {
    display.stop()
    process.removeListener('SIGINT', onSigint)
  }
  printSummary(result, { json: f.json }, stdout)
  return 0
}

function printSummary(r: FinewebResult, opts: { json: boolean }, stdout: { write(s: string): unknown }): void {
  if (opts.json) { stdout.write(jsonText(r)); return }
  stdout.write(`fineweb: ${r.files.length} Parquet files in ${r.cacheDir}\n`)
  const s = r.shards
  if (s === undefined) return
  const n = (x: number): string => x.toLocaleString('en-US')
  const how = s.resumedShards === s.val.length + s.train.length ? 'already complete' :
    `${s.seconds.toFixed(1)} s, ${n(Math.round(s.tokensPerSecond))} tokens/s with ${s.workers} ${plural(s.workers, 'worker')}` +
    `${s.resumedShards > 0 ? `, ${s.resumedShards} shards kept from an earlier run` : ''}`
  stdout.write(`prepared ${r.spec.name}: ${n(s.documents)} ${plural(s.documents, 'document')}, ${n(s.tokens)} tokens ` +
    `in ${s.val.length} val + ${s.train.length} train shards (${how})\n` +
    `  ${s.val[0] ?? ''}\n  ${s.train[0] ?? ''}${s.train.length > 1 ? `\n  ... ${s.train.at(-1)}` : ''}\n  ${s.meta}\n`)
}
