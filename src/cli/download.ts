// `llmts download REPO --out DIR`: a Hugging Face model (LlamaForCausalLM or GPT2LMHeadModel) into a directory
// that --model and --init-from read, e.g. GPT-2 124M as the baseline of `llmts eval hellaswag`. Resumable: the
// same command continues an interrupted download and keeps the files already complete.

import { Display } from './display.js'
import { formatBytes, plural } from '../util/progress.js'
import { downloadHfModel, type ModelDownloadResult, type ModelListing } from '../io/hf-download.js'
import { InputError, Interrupted } from '../util/errors.js'
import { formatHelp, jsonFlag, parseArgs, refuseArguments } from './args.js'
import type { Command } from './command.js'
import { summaries } from './commands.js'
import { refuseTrainingDir } from '../train/checkpoint-dirs.js'
import { checkOutputDir } from '../util/atomic.js'
import { lockOutput } from '../util/lock.js'
import { commandLine, printJson, stderrNotes } from './output.js'

const CMD = 'llmts download'

const flags = {
  out: { type: 'string', metavar: 'DIR', help: 'the directory to fill (required; created if missing)' },
  revision: { type: 'string', metavar: 'REV', default: 'main', help: 'branch, tag or commit of the repository' },
  'base-url': { type: 'string', metavar: 'URL', help: 'hub or mirror (default $HF_ENDPOINT, else https://huggingface.co)' },
  workers: { type: 'int', min: 1, max: 64, default: 4, help: 'files downloaded in parallel' },
  json: jsonFlag,
} as const

type DownloadFlags = ReturnType<typeof parseArgs<typeof flags>>['flags']

const details = `
Fetches config.json first and refuses an architecture llm.ts does not read before any weight is downloaded;
then model.safetensors (or model.safetensors.index.json and its shards) and, when present, the tokenizer and
generation files. Each file is checked (size, the hub's sha256, a parseable header) before it gets its name;
an interrupted download continues where it stopped when the command is run again. HF_TOKEN is sent when set
(gated repositories). Example: llmts download openai-community/gpt2 --out hf/gpt2
`

export const command: Command = {
  name: 'download',
  summary: summaries.download,
  usage: 'REPO --out DIR [--revision REV] [--base-url URL] [--workers N] [--json]',
  flags,
  async run(argv) {
    const p = parseArgs(CMD, flags, argv)
    if (p.help) { process.stdout.write(formatHelp(CMD, this.usage, this.summary, flags) + details); return 0 }
    const repo = p.positionals[0]
    if (repo === undefined) throw new InputError(`${CMD}: which repository? (e.g. ${CMD} openai-community/gpt2 --out hf/gpt2)`)
    refuseArguments(CMD, p.positionals.slice(1), { hint: 'one repository at a time' })
    const f = p.flags
    if (f.out === undefined) throw new InputError(`${CMD}: --out DIR is required (where the model's files go)`)
    refuseTrainingDir(CMD, f.out)
    checkOutputDir(CMD, '--out', f.out)   // before the network
    // two downloads into one folder would share its staging files: the second is refused
    const lock = lockOutput(f.out, { command: CMD, flag: '--out', note: stderrNotes(['download']) })
    try { return await download(repo, f.out, f) } finally { lock.release() }
  },
}

async function download(repo: string, out: string, f: DownloadFlags): Promise<number> {
  const stop = new AbortController()
  const onSigint = (): void => stop.abort(new Interrupted(`download: interrupted; run the same command again to resume`))
  process.once('SIGINT', onSigint)
  const display = new Display()
  let result: ModelDownloadResult
  try {
    result = await downloadHfModel({
      repo, revision: f.revision, outDir: out, workers: f.workers, ...(f['base-url'] === undefined ? {} : { baseUrl: f['base-url'] }),
      http: { signal: stop.signal,
        onRetry: r => display.log(commandLine(['download'], `${r.reason} on ${r.url}; retry ${r.attempt} in ${(r.waitMs / 1000).toFixed(1)} s`)) },
      onListing: l => display.log(commandLine(['download'], listingLine(repo, l))),
      onProgress: q => display.download(q),
    })
  } finally {
    display.stop()
    process.removeListener('SIGINT', onSigint)
  }
  if (f.json) printJson(result)
  else {
    process.stdout.write(`downloaded ${result.repo}@${result.revision} into ${result.dir}: ${result.files.map(x => x.path).join(', ')} ` +
      `(${formatBytes(result.files.reduce((n, x) => n + x.bytes, 0))}, ${result.seconds.toFixed(1)} s); use it with --model ${result.dir}\n`)
  }
  return 0
}

/** "REPO (GPT2LMHeadModel, 12 layers, d=768): config.json read, then 7 files, 551 MB": the count and bytes are the
 *  progress's (config.json, and a shard index, came first, apart). */
function listingLine(repo: string, l: ModelListing): string {
  const arch = l.family === 'llama' ? 'LlamaForCausalLM' : 'GPT2LMHeadModel'
  return `${repo} (${arch}, ${l.config.layers} layers, d=${l.config.channels}): ${l.read.map(x => x.path).join(' and ')} read, ` +
    `then ${l.rest.length} ${plural(l.rest.length, 'file')}, ${formatBytes(l.rest.reduce((n, x) => n + x.size, 0))}`
}
