// `llmts eval hellaswag`: HellaSwag accuracy of a model (run/checkpoint, Hugging Face directory, preset or
// config) with lm-evaluation-harness scoring (optionally K-shot) or llm.c's. Every number printed names its
// scoring and shots, since 10-shot and 0-shot scores are not comparable. Progress on stderr, result on stdout.
// --all-checkpoints: every step checkpoint of a run, the examples tokenized once (checkpoint-sweep.ts).

import cliProgress from 'cli-progress'
import { loadHellaswag } from '../eval/hellaswag-data.js'
import { DEFAULT_FEWSHOT_SEED, hellaswagScorings } from '../eval/hellaswag-prompt.js'
import {
  DEFAULT_BATCH_EXAMPLES, longestInput, prepareHellaswag, scorePrepared, type HellaswagResult, type PreparedExample,
} from '../eval/hellaswag.js'
import { checkModelFits, decodingModel, moveWeightsInto, requireGpt2Tokenizer, resolveModel } from '../model/load.js'
import { createBackend, describeBackend } from '../train/device.js'
import { InputError } from '../util/errors.js'
import { formatDuration, PlainLines, plural, RateMeter } from '../util/progress.js'
import { MAX_SEED } from '../util/rng.js'
import { backendFlags, formatHelp, jsonFlag, MODEL_FORMS, modelFlag, parseArgs, refuseArguments } from './args.js'
import { allCheckpointsFlag, planSweep, runSweep } from './checkpoint-sweep.js'
import type { Command } from './command.js'
import { summaries } from './commands.js'
import { liveProgress, printJson, stderrNotes } from './output.js'

const CMD = 'llmts eval hellaswag'

const flags = {
  model: modelFlag,
  'init-from': { type: 'string', help: 'weights (and, without --model, architecture) from an HF directory, run (its best) or checkpoint', metavar: 'DIR' },
  'all-checkpoints': allCheckpointsFlag,
  data: { type: 'string', help: 'HellaSwag validation JSONL (default: downloaded once into hellaswag/ in the cache: ' +
    '$LLMTS_CACHE, else $XDG_CACHE_HOME/llmts, else ~/.cache/llmts)', metavar: 'FILE' },
  'train-data': { type: 'string', help: 'HellaSwag training JSONL for few-shot examples (default: downloaded like --data)', metavar: 'FILE' },
  limit: { type: 'int', help: 'score only the first N examples, 0 = all ' +
    '(their few-shot prompts are the full run\'s, as with the harness\'s --limit)', min: 0 },
  shots: { type: 'int', help: 'solved training examples before each query (harness scoring only)', default: 0, min: 0 },
  scoring: { type: 'enum', values: hellaswagScorings, default: 'harness',
    help: 'harness: lm-evaluation-harness (acc_norm per character); llmc: llm.c (acc_norm = lowest mean token loss)' },
  'fewshot-seed': { type: 'int', help: 'seed of the few-shot draw, as lm-evaluation-harness\'s fewshot seed', default: DEFAULT_FEWSHOT_SEED, min: 0 },
  seed: { type: 'int', help: 'weight initialization seed for a preset or config without weights', default: 1337, min: 0, max: MAX_SEED },
  'batch-examples': { type: 'int', default: DEFAULT_BATCH_EXAMPLES, min: 1, help: 'examples scored in one pass of the model ' +
    '(fewer where long prompts fill the pass); the scores do not depend on it' },
  ...backendFlags,
  json: jsonFlag,
} as const

/** "harness scoring, 10-shot": the tag every printed HellaSwag number carries. */
function describeScoring(r: { scoring: string; shots: number }): string {
  return `${r.scoring} scoring, ${r.shots}-shot`
}

function formatPercent(p: number, se: number): string {
  return `${(100 * p).toFixed(2)}%${Number.isFinite(se) ? ` ± ${(100 * se).toFixed(2)}` : ''}`
}

/** One line: "hellaswag (harness scoring, 0-shot, 100 examples): acc_norm 31.00% ± 4.65, acc 29.00% ± 4.56". */
function formatHellaswag(r: HellaswagResult): string {
  return `hellaswag (${describeScoring(r)}, ${r.count} ${plural(r.count, 'example')}): acc_norm ${formatPercent(r.accNorm, r.accNormStderr)}, ` +
    `acc ${formatPercent(r.acc, r.accStderr)}`
}

/** Progress on stderr: a bar with the running acc_norm, rate and ETA on a terminal; otherwise plain lines at the first
 *  and last examples and every ~10 s, with the rate and ETA over RateMeter's window from the reporter's creation.
 *  `which`: the checkpoint of --all-checkpoints ("checkpoint 3/7 (step 3000)"). */
export function progressReporter(tag: string, opts: { which?: string; now?: () => number } = {}):
    { update: (done: number, total: number, c: { accNorm: number }) => void; stop: () => void } {
  const which = opts.which !== undefined ? `${opts.which} | ` : ''
  if (!liveProgress()) {
    const now = opts.now ?? (() => performance.now())
    const meter = new RateMeter(20_000, now), plain = new PlainLines(10_000, now)
    meter.add(0)
    return {
      update(done, total, c) {
        meter.add(done)
        if (!plain.due(done, total)) return
        const rate = meter.known ? meter.rate().toFixed(2) : '?'
        process.stderr.write(`hellaswag (${tag}): ${which}${done}/${total} examples | acc_norm ${(100 * c.accNorm / done).toFixed(2)}% | ` +
          `${rate} ex/s | ETA ${formatDuration(done === total ? 0 : meter.eta(total - done))}\n`)
      },
      stop() {},
    }
  }
  const bar = new cliProgress.SingleBar({
    format: `hellaswag (${tag}) ${which}{bar} {value}/{total} | acc_norm {accNorm}% | {rate} ex/s | ETA {eta_formatted}`,
    stream: process.stderr, hideCursor: true, etaBuffer: 50,
  }, cliProgress.Presets.shades_classic)
  const t0 = Date.now()
  let started = false
  return {
    update(done, total, c) {
      const payload = { accNorm: (100 * c.accNorm / done).toFixed(2), rate: (done / Math.max(1e-3, (Date.now() - t0) / 1000)).toFixed(2) }
      if (!started) { bar.start(total, 0, payload); started = true }
      bar.update(done, payload)
    },
    stop() { if (started) bar.stop() },
  }
}

type Flags = ReturnType<typeof parseArgs<typeof flags>>['flags']

/** The examples of --data (--limit of them), tokenized with their few-shot prompts: once, whatever the model. */
async function prepareExamples(f: Flags, status: (line: string) => void): Promise<PreparedExample[]> {
  const examples = await loadHellaswag('val', { ...(f.data !== undefined ? { file: f.data } : {}),
    ...(f.limit !== undefined && f.limit > 0 ? { limit: f.limit } : {}), onStatus: status })
  if (f.limit !== undefined && f.limit > examples.length) {
    status(`note: --limit ${f.limit} is more than the ${examples.length} examples there are; scoring them all`)
  }
  const train = f.shots > 0
    ? await loadHellaswag('train', { ...(f['train-data'] !== undefined ? { file: f['train-data'] } : {}), onStatus: status })
    : undefined
  return prepareHellaswag(examples, { scoring: f.scoring, shots: f.shots, seed: f['fewshot-seed'], ...(train ? { train } : {}) })
}

/** The JSON object of a result (`m`: the model scored). */
function hellaswagRecord(r: HellaswagResult, f: Flags, m: { path: string }): object {
  return {
    task: 'hellaswag', scoring: r.scoring, shots: r.shots, count: r.count,
    acc: r.acc, accStderr: r.accStderr, accNorm: r.accNorm, accNormStderr: r.accNormStderr,
    fewshotSeed: f.shots > 0 ? f['fewshot-seed'] : null, data: f.data ?? 'hellaswag_val.jsonl (cache)', model: m.path,
  }
}

/** The command's body: parses argv, scores, prints; returns the exit code. */
async function runHellaswag(argv: string[]): Promise<number> {
  const p = parseArgs(CMD, flags, argv)
  if (p.help) { process.stdout.write(formatHelp(CMD, command.usage, command.summary, flags)); return 0 }
  refuseArguments(CMD, p.positionals)
  const f = p.flags
  if (f.scoring === 'llmc' && f.shots > 0) throw new InputError(`${CMD}: --scoring llmc is zero-shot as in llm.c ` +
    `(use --scoring harness for --shots ${f.shots})`)
  const check = (m: Parameters<typeof requireGpt2Tokenizer>[1]): void => requireGpt2Tokenizer(CMD, m, 'HellaSwag\'s texts')
  const sweep = f['all-checkpoints'] ? planSweep(CMD, f.model, f['init-from']) : null
  if (sweep !== null) check(sweep.first)
  const resolved = sweep?.first ?? resolveModel(f.model, { initFrom: f['init-from'], check })
  checkModelFits(CMD, resolved.config, 4, 'its weights')
  const status = stderrNotes(['eval', 'hellaswag'])   // `hellaswag: downloading ...` -> `llmts eval hellaswag: downloading ...`
  // tokenize first, so the cache is sized to the longest prompt rather than the context length
  const prepared = await prepareExamples(f, status)
  const maxSeqLen = Math.min(resolved.config.contextLength, longestInput(prepared))
  const backend = await createBackend(f.device, { threads: f.threads, precision: f.precision })
  status(describeBackend(backend))
  // scoring runs through key/value rows of its own: the forward's (training) buffers are never used
  const model = decodingModel(backend, resolved.config)
  const tag = describeScoring({ scoring: f.scoring, shots: f.shots })
  const evaluate = (which?: string): HellaswagResult => {
    const progress = progressReporter(tag, which !== undefined ? { which } : {})
    try {
      return scorePrepared(model, prepared, { scoring: f.scoring, shots: f.shots, window: maxSeqLen, batchExamples: f['batch-examples'],
        onProgress: progress.update })
    } finally { progress.stop() }
  }
  const line = (r: HellaswagResult, m: { source: string }): string => `${formatHellaswag(r)} (${m.source})`
  if (sweep !== null) {
    return runSweep(CMD, sweep, model, { evaluate, line, record: (r, m) => hellaswagRecord(r, f, m), json: f.json, note: status,
      best: { of: r => r.accNorm, want: 'highest', shown: r => `acc_norm ${formatPercent(r.accNorm, r.accNormStderr)}` } })
  }
  if (!moveWeightsInto(model, resolved)) {
    model.initWeights(f.seed)
    status(`${resolved.source} has no weights; initialized randomly with seed ${f.seed}`)
  }
  const r = evaluate()
  if (f.json) printJson(hellaswagRecord(r, f, resolved))
  else process.stdout.write(`${line(r, resolved)}\n`)
  return 0
}

export const command: Command = {
  name: 'eval hellaswag',
  summary: summaries.evalHellaswag,
  usage: `--model ${MODEL_FORMS} [--init-from DIR] [--all-checkpoints] [--data FILE.jsonl] [--limit N] [--shots N] [--scoring harness|llmc] [--batch-examples N] [--json]`,
  flags,
  run: runHellaswag,
}
