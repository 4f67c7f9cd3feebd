// `llmts train --default-run` (what `npm start` runs): trains tiny-gpt2 and tiny-variant on the same tokens,
// then prints the side-by-side table and an honest verdict, and writes the comparison (CSV, JSON, loss-curve
// charts via `llmts plot`'s renderer) beside the two run directories. Settings: src/train/default-run.ts.

import { join } from 'node:path'
import { GPT2_VOCAB } from '../config.js'
import { renderPlot } from '../plot/plot.js'
import type { Precision } from '../train/config.js'
import { defaultRun, runDefaultRun, type ModelOutcome } from '../train/default-run.js'
import { refuseCpuPrecision } from '../train/device.js'
import { checkOutputDir, makeDirs, writeFileAtomic } from '../util/atomic.js'
import { InputError } from '../util/errors.js'
import { lockOutput } from '../util/lock.js'
import { consoleReporter } from './train.js'
import { commandLine, jsonText, liveProgress, printJson, stderrNotes } from './output.js'

const SAME = 0.01   // val-loss differences below this are called a tie
const SPIKE = 2     // a step whose training loss exceeds the previous step's by this much (nats) is a spike

export function countSpikes(curve: { loss: number }[]): number {
  let n = 0
  for (let i = 1; i < curve.length; i++) if (curve[i]!.loss > curve[i - 1]!.loss + SPIKE) n++
  return n
}

export function verdict(gpt2: ModelOutcome, variant: ModelOutcome, tokens: number): string {
  const a = gpt2.finalValLoss, b = variant.finalValLoss
  const scale = `after ${tokens.toLocaleString('en-US')} training tokens each`
  if (!Number.isFinite(a) || !Number.isFinite(b)) return 'no validation loss to compare (validation data missing?)'
  if (b < a - SAME) {
    return `the variant converged faster at this scale: validation loss ${b.toFixed(3)} vs ${a.toFixed(3)} for GPT-2 ${scale}.`
  }
  if (b > a + SAME) {
    return `the variant did NOT converge faster at this scale: validation loss ${b.toFixed(3)} vs ${a.toFixed(3)} for GPT-2 ${scale}. ` +
      `The report's gap was measured after billions of tokens; ${tokens.toLocaleString('en-US')} tokens mostly measure how fast ` +
      'each model learns unigram and bigram statistics.'
  }
  return `no clear difference at this scale: validation loss ${b.toFixed(3)} (variant) vs ${a.toFixed(3)} (GPT-2) ${scale}.`
}

function table(outcomes: ModelOutcome[]): string {
  const fmt = (n: number, digits: number): string => Number.isFinite(n) ? n.toFixed(digits) : '-'
  const rows: [string, (o: ModelOutcome) => string][] = [
    ['parameters', o => o.info.parameters.toLocaleString('en-US')],
    ['final train loss (last 5 steps)', o => fmt(o.finalTrainLoss, 4)],
    ['final val loss', o => fmt(o.finalValLoss, 4)],
    ['best val loss', o => fmt(o.result.bestValLoss ?? NaN, 4)],
    [`loss spikes (+${SPIKE} nats in a step)`, o => String(countSpikes(o.curve))],
    ['tokens/s (training steps)', o => Math.round(o.result.tokensPerS).toLocaleString('en-US')],
    ['time (train + val + checkpoints)', o => `${o.wallSeconds.toFixed(1)} s`],
  ]
  const w0 = Math.max(...rows.map(r => r[0].length)) + 2
  const w = Math.max(...outcomes.map(o => o.info.config.model.length), 12) + 2
  const head = ''.padEnd(w0) + outcomes.map(o => o.info.config.model.padStart(w)).join('')
  return [head, ...rows.map(([label, f]) => label.padEnd(w0) + outcomes.map(o => f(o).padStart(w)).join(''))].join('\n')
}

/** comparison.csv: step, then each model's training loss and validation loss (blank where none). */
function comparisonCsv(outcomes: ModelOutcome[]): string {
  const steps = new Set<number>()
  for (const o of outcomes) { o.curve.forEach(r => steps.add(r.step)); o.valCurve.forEach(r => steps.add(r.step)) }
  const names = outcomes.map(o => o.info.config.model)
  const lines = [['step', ...names.flatMap(n => [`${n}_loss`, `${n}_val_loss`])].join(',')]
  for (const s of [...steps].sort((a, b) => a - b)) {
    const cells = outcomes.flatMap(o => [o.curve.find(r => r.step === s)?.loss, o.valCurve.find(r => r.step === s)?.val_loss])
    lines.push([s, ...cells.map(v => v === undefined ? '' : String(v))].join(','))
  }
  return lines.join('\n') + '\n'
}

export interface DefaultRunFlags {
  json: boolean
  given: string[]                 // flags given besides --default-run and --json
  steps?: number
  out?: string
  device?: 'cpu' | 'cuda' | 'auto'
  threads?: number
  precision?: Precision
}

export async function runDefault(opts: DefaultRunFlags): Promise<number> {
  const unsupported = opts.given.filter(f => !['steps', 'out', 'device', 'threads', 'precision'].includes(f))
  if (unsupported.length > 0) {
    throw new InputError(`llmts train --default-run: --${unsupported[0]} is not a setting of the default run ` +
      `(it takes --steps, --out, --device, --threads, --precision, --json; ` +
      'its settings are in src/train/default-run.ts)')
  }
  if ((opts.device ?? 'cpu') === 'cpu') refuseCpuPrecision(opts.precision ?? 'auto')   // before the corpus and the notes
  const outDir = opts.out ?? defaultRun.outDir
  checkOutputDir('llmts train --default-run', '--out', outDir)
  // two default runs at once would train into the same run folders: the second is refused, as train is
  const lock = lockOutput(outDir, { command: 'llmts train --default-run', flag: '--out', note: stderrNotes(['train']) })
  try { return await compareModels(opts, outDir) } finally { lock.release() }
}

async function compareModels(opts: DefaultRunFlags, outDir: string): Promise<number> {
  const device = opts.device ?? 'cpu'   // the README's offline CPU demo; --device cuda|auto to use a GPU
  const t0 = performance.now()
  const note = stderrNotes(['train'])   // its trainRun notes too (`train: note: ...` -> `llmts train: note: ...`)
  note(`${defaultRun.models.join(' vs ')} on ${defaultRun.corpus}, B=${defaultRun.batchSize} T=${defaultRun.seqLen} ` +
    `x${defaultRun.gradAccum} accumulation, lr ${defaultRun.lr}; runs under ${outDir}/`)
  // Ctrl-C: no checkpoint to keep (the next default run starts both runs over), but say so before exit code 130
  const onSigint = (): void => {
    process.stderr.write(`${liveProgress() ? '\n' : ''}${commandLine(['train'], 'interrupted; nothing to resume (the next default run starts over)')}\n`)
    process.exit(130)
  }
  process.once('SIGINT', onSigint)
  let r: Awaited<ReturnType<typeof runDefaultRun>>
  try {
    r = await runDefaultRun({
      steps: opts.steps, outDir, on: { device, threads: opts.threads, precision: opts.precision }, note,
      reporter: model => consoleReporter({ tty: liveProgress(), vocabSize: () => GPT2_VOCAB, prefix: `[${model}] ` }),
    })
  } finally {
    process.off('SIGINT', onSigint)
  }
  const [gpt2, variant] = r.outcomes as [ModelOutcome, ModelOutcome]
  const tokens = r.steps * gpt2.info.config.totalBatchSize
  makeDirs(outDir)
  writeFileAtomic(join(outDir, 'comparison.csv'), comparisonCsv(r.outcomes))
  const charts: string[] = []
  for (const metric of ['loss', 'val_loss'] as const) {
    const out = join(outDir, `${metric}.svg`)
    await renderPlot(r.outcomes.map(o => o.info.runDir), out,
      { metric, x: 'step', title: `${metric === 'loss' ? 'training' : 'validation'} loss, ${defaultRun.corpus}` })
    charts.push(out)
  }
  const v = verdict(gpt2, variant, tokens)
  const summary = {
    corpus: defaultRun.corpus, steps: r.steps, tokensPerModel: tokens, calibration: r.calibration, settings: { ...defaultRun, outDir },
    runs: r.outcomes.map(o => ({
      model: o.info.config.model, runDir: o.info.runDir, parameters: o.info.parameters, finalTrainLoss: o.finalTrainLoss,
      finalValLoss: o.finalValLoss, bestValLoss: o.result.bestValLoss, lossSpikes: countSpikes(o.curve), tokensPerSecond: o.result.tokensPerS,
      seconds: o.wallSeconds,
    })),
    verdict: v, files: [join(outDir, 'comparison.csv'), join(outDir, 'comparison.json'), ...charts],
    totalSeconds: (performance.now() - t0) / 1000,
  }
  writeFileAtomic(join(outDir, 'comparison.json'), jsonText(summary, 2))
  if (opts.json) { printJson(summary); return 0 }
  process.stdout.write(`${process.stdout.isTTY ? '\n' : ''}${defaultRun.models.join(' vs ')}: ${r.steps} steps x ${gpt2.info.config.totalBatchSize} tokens = ` +
    `${tokens.toLocaleString('en-US')} tokens of ${defaultRun.corpus} each, ${gpt2.info.backend}\n\n${table(r.outcomes)}\n\nverdict: ${v}\n\n` +
    `wrote ${r.outcomes.map(o => o.info.runDir + '/').join(', ')}, ${summary.files.join(', ')} ` +
    `(${summary.totalSeconds.toFixed(0)} s)\n`)
  return 0
}
