// `llmts eval loss`: mean cross-entropy of a model (preset, config, run/checkpoint or Hugging Face directory)
// over the first N batches of token shards, read by the DataLoader from the start of the data.
// A directory of shards is read through its val split when it has one. Result on stdout, progress on stderr.
// --all-checkpoints: every step checkpoint of a run through one model and loader (checkpoint-sweep.ts).

import { statSync } from 'node:fs'
import { batchesIn, DataLoader, shardsWithBatch } from '../data/loader.js'
import { isSplit, listShards, readShardHeader } from '../data/shards.js'
import { evaluateLoss } from '../eval/loss.js'
import type { ModelConfig } from '../config.js'
import { GPT } from '../model/gpt.js'
import { checkModelFits, moveWeightsInto, resolveModel, tokenizerNote } from '../model/load.js'
import { createBackend, describeBackend } from '../train/device.js'
import { InputError } from '../util/errors.js'
import { formatDuration, PlainLines, plural, RateMeter } from '../util/progress.js'
import { MAX_SEED } from '../util/rng.js'
import { backendFlags, formatHelp, jsonFlag, MODEL_FORMS, modelFlag, parseArgs, refuseArguments } from './args.js'
import { allCheckpointsFlag, planSweep, runSweep } from './checkpoint-sweep.js'
import type { Command } from './command.js'
import { summaries } from './commands.js'
import { fitLine, liveProgress, printJson, stderrNotes } from './output.js'

const CMD = 'llmts eval loss'
const note = stderrNotes(['eval', 'loss'])

const flags = {
  model: modelFlag,
  'init-from': { type: 'string', help: 'weights (and, without --model, architecture) from an HF directory, run (its best) or checkpoint', metavar: 'DIR' },
  'all-checkpoints': allCheckpointsFlag,
  data: { type: 'string', help: 'token shard, directory of shards (its val split if any) or glob', metavar: 'SHARDS' },
  'batch-size': { type: 'int', help: 'B: sequences per batch', default: 4, min: 1 },
  'seq-len': { type: 'int', help: 'T: tokens per sequence (default: the context length, at most 1024)', min: 1 },
  steps: { type: 'int', help: 'N: batches to average over', default: 10, min: 1 },
  seed: { type: 'int', help: 'weight initialization seed for a preset or config without weights', default: 1337, min: 0, max: MAX_SEED },
  ...backendFlags,
  json: jsonFlag,
} as const

/** The shards to evaluate on: a directory's val split when it has one, else everything the spec names. */
function evalShards(spec: string): string[] {
  let isDir = false
  try { isDir = statSync(spec).isDirectory() } catch { /* listShards reports it */ }
  const all = listShards(spec), val = all.filter(p => isSplit(p, 'val'))
  if (val.length === 0 || val.length === all.length) return all
  if (!isDir) {   // a glob that matched both splits: its train shards sort first and would pass for validation data
    note(`${spec} matches train and validation shards; evaluating the ${val.length} validation ` +
      `${plural(val.length, 'shard')} (*_val_*), as for a directory`)
  }
  return val
}

/** Progress on stderr with tokens/s and the ETA (over RateMeter's window, from the reporter's creation): a rewritten
 *  line on a terminal, else plain lines at the first and last batches and every ~10 s, as train's. `which`: the
 *  checkpoint of --all-checkpoints ("checkpoint 3/7 (step 3000)"). */
export function progressReporter(steps: number, opts: { tokensPerBatch: number; which?: string; now?: () => number }):
    (done: number, loss: number) => void {
  const tty = liveProgress(), now = opts.now ?? (() => performance.now())
  const meter = new RateMeter(20_000, now), plain = new PlainLines(10_000, now)
  meter.add(0)
  return (done, loss) => {
    meter.add(done * opts.tokensPerBatch)
    const rate = meter.known ? Math.round(meter.rate()).toLocaleString('en-US') : '?'
    const line = `eval loss: ${opts.which !== undefined ? `${opts.which} | ` : ''}batch ${done}/${steps} | loss ${loss.toFixed(4)} | ${rate} tok/s | ` +
      `ETA ${formatDuration(done === steps ? 0 : meter.eta((steps - done) * opts.tokensPerBatch))}`
    if (tty) process.stderr.write(`\r\x1b[K${done === steps ? `${line}\n` : fitLine(line, process.stderr.columns)}`)
    else if (plain.due(done, steps)) process.stderr.write(`${line}\n`)
  }
}

interface LossResult { valLoss: number; steps: number; batchSize: number; seqLen: number; tokens: number }

/** The usual result line: "val_loss 3.281700 over 10 batches of 4×1024 tokens (checkpoint runs/b/best (step 5000))". */
function lossLine(r: LossResult, m: { source: string }): string {
  return `val_loss ${r.valLoss.toFixed(6)} over ${r.steps} ${plural(r.steps, 'batch', 'batches')} of ${r.batchSize}×${r.seqLen} tokens (${m.source})`
}

/** B, T, the shard files and the batches to evaluate for the flags and `config`, with notes; refused: a --seq-len
 *  past the context length, data holding fewer batches than --steps. */
function lossSettings(f: { data: string; 'batch-size': number; 'seq-len'?: number | undefined; steps: number }, stepsGiven: boolean,
                      config: ModelConfig): { B: number; T: number; steps: number; files: string[] } {
  const B = f['batch-size'], T = f['seq-len'] ?? Math.min(config.contextLength, 1024)
  let steps = f.steps
  if (T > config.contextLength) throw new InputError(`${CMD}: --seq-len ${T} exceeds the model's context length ${config.contextLength}`)
  const { files, skipped } = shardsWithBatch(evalShards(f.data), { B, T }, f.data)
  if (skipped !== null) note(skipped)
  // the loader reads batchesIn(tokens, B·T) batches per shard, then wraps around: never count a batch twice
  const batches = files.reduce((n, path) => n + batchesIn(readShardHeader(path).tokens, B * T), 0)
  if (batches < steps && !stepsGiven) {   // the default 10 on a small split: all there is
    note(`note: ${f.data} holds ${batches} ${plural(batches, 'batch', 'batches')} of B ${B} × T ${T} tokens; ` +
      `evaluating ${batches === 1 ? 'it' : 'all of them'} (--steps defaults to 10)`)
    steps = batches
  }
  if (batches < steps) {
    throw new InputError(`${CMD}: ${f.data} holds ${batches} batches of B ${B} × T ${T} tokens, fewer than --steps ${steps} ` +
      `(lower --steps, --batch-size or --seq-len)`)
  }
  return { B, T, steps, files }
}

export const command: Command = {
  name: 'eval loss',
  summary: summaries.evalLoss,
  usage: `--model ${MODEL_FORMS} [--init-from DIR] [--all-checkpoints] --data SHARDS [--batch-size B] [--seq-len T] [--steps N] [--json]`,
  flags,
  async run(argv) {
    const p = parseArgs(CMD, flags, argv)
    if (p.help) { process.stdout.write(formatHelp(CMD, this.usage, this.summary, flags)); return 0 }
    refuseArguments(CMD, p.positionals, { hint: 'flags only; see llmts eval loss --help', globFlag: '--data' })
    const f = p.flags, data = f.data
    if (data === undefined) throw new InputError(`${CMD}: --data is required (a token shard, or a directory of shards)`)
    const sweep = f['all-checkpoints'] ? planSweep(CMD, f.model, f['init-from']) : null
    const resolved = sweep?.first ?? resolveModel(f.model, { initFrom: f['init-from'] })
    checkModelFits(CMD, resolved.config, 4, 'its weights')
    const differs = tokenizerNote(CMD, resolved)
    if (differs !== null) note(differs)
    const config = resolved.config
    const { B, T, steps, files } = lossSettings({ ...f, data }, p.given.has('steps'), config)
    const backend = await createBackend(f.device, { threads: f.threads, precision: f.precision })
    note(describeBackend(backend))
    const model = new GPT(backend, config, { maxBatch: B, maxSeqLen: T, mode: 'inference' })
    const loader = new DataLoader({ files, B, T, vocabSize: config.vocabSize })
    try {   // closed on an error too (a bad id in a later batch): the command may run in a process that goes on
      const evaluate = (which?: string): LossResult => {
        loader.reset()   // every checkpoint reads the same batches
        const onBatch = progressReporter(steps, { tokensPerBatch: B * T, ...(which !== undefined ? { which } : {}) })
        return { valLoss: evaluateLoss(model, loader, { B, T, steps, onBatch }), steps, batchSize: B, seqLen: T, tokens: steps * B * T }
      }
      if (sweep !== null) {
        return runSweep(CMD, sweep, model, { evaluate, line: lossLine, record: (r, m) => ({ ...r, model: m.path }), json: f.json, note,
          best: { of: r => r.valLoss, want: 'lowest', shown: r => `val_loss ${r.valLoss.toFixed(6)}` } })
      }
      if (!moveWeightsInto(model, resolved)) {
        model.initWeights(f.seed)
        note(`${resolved.source} has no weights; initialized randomly with seed ${f.seed}`)
      }
      const r = evaluate()
      if (f.json) printJson({ ...r, model: resolved.path })
      else process.stdout.write(`${lossLine(r, resolved)}\n`)
      return 0
    } finally { loader.close() }
  },
}
