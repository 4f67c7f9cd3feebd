// `llmts train --default-run` (what `npm start` runs): trains tiny-gpt2 and tiny-variant on the same tokens,
// then prints the side-by-side table and an honest verdict, and writes the comparison (CSV, JSON, loss-curve
// charts via `llmts plot`'s renderer) beside the two run directories. Settings: src/train/default-run.ts.

import { join } from 'node:path'
import { GPT2_VOCAB } from '../config.js'
import { renderPlot } from '../plot/plot.js'
import { readRunSummary } from '../plot/summary.js'
import type { Precision } from '../train/config.js'
import { defaultRun, runDefaultRun, type ModelOutcome } from '../train/default-run.js'
import { refuseCpuPrecision } from '../train/device.js'
import { checkOutputDir, makeDirs, writeFileAtomic } from '../util/atomic.js'
import { InputError } from '../util/errors.js'
import { lockOutput } from '../util/lock.js'
import { comparisonTable, type TableRow, type TableRun } from './compare.js'
import { consoleReporter } from './train.js'
import { commandLine, jsonText, liveProgress, printJson, stderrNotes } from './output.js'

const SAME = 0.01   // val-loss differences below this are called a tie

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

/** The table's rows: compare's table, with the wall time the default run measured around each run. */
const tableRows: TableRow[] = ['parameters', 'finalTrainLoss', 'finalValLoss', 'bestValLoss', 'lossSpikes', 'tokensPerSecond', 'wallSeconds']

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
  // each run's numbers as `llmts compare` reads them from its files, with the wall time measured here
  const runs: TableRun[] = r.outcomes.map(o => ({ ...readRunSummary(o.info.runDir, o.info.config.model, 'train').summary, wallSeconds: o.wallSeconds }))
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
    runs: r.outcomes.map((o, i) => ({
      model: o.info.config.model, runDir: o.info.runDir, parameters: o.info.parameters, finalTrainLoss: runs[i]!.finalTrainLoss,
      finalValLoss: o.finalValLoss, bestValLoss: runs[i]!.bestValLoss, lossSpikes: runs[i]!.lossSpikes, tokensPerSecond: runs[i]!.tokensPerSecond,
      seconds: o.wallSeconds,
    })),
    verdict: v, files: [join(outDir, 'comparison.csv'), join(outDir, 'comparison.json'), ...charts],
    totalSeconds: (performance.now() - t0) / 1000,
  }
  writeFileAtomic(join(outDir, 'comparison.json'), jsonText(summary, 2))
  if (opts.json) { printJson(summary); return 0 }
  process.stdout.write(`${process.stdout.isTTY ? '\n' : ''}${defaultRun.models.join(' vs ')}: ${r.steps} steps x ${gpt2.info.config.totalBatchSize} tokens = ` +
    `${tokens.toLocaleString('en-US')} tokens of ${defaultRun.corpus} each, ${gpt2.info.backend}\n\n${comparisonTable(runs, tableRows)}\n\nverdict: ${v}\n\n` +
    `wrote ${r.outcomes.map(o => o.info.runDir + '/').join(', ')}, ${summary.files.join(', ')} ` +
    `(${summary.totalSeconds.toFixed(0)} s)\n`)
  return 0
}
