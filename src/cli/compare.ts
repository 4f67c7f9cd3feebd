// `llmts compare RUN_DIR... [--json] [--csv FILE]`: runs side by side — model, parameters, steps, tokens, final and
// best losses, HellaSwag, spikes, throughput — one column per run, labelled as `llmts plot` labels runs. The table
// code is the default run's too (comparisonTable with its own rows); the numbers are src/plot/summary.ts's.

import { statSync } from 'node:fs'
import { dirname } from 'node:path'
import { labelRuns } from '../plot/runs.js'
import { FINAL_STEPS, SPIKE, readRunSummary, type RunSummary } from '../plot/summary.js'
import { checkOutputDir, makeDirs, writeFileAtomic } from '../util/atomic.js'
import { InputError } from '../util/errors.js'
import { formatDuration } from '../util/progress.js'
import { snakeCase } from '../util/json.js'
import { formatHelp, jsonFlag, parseArgs } from './args.js'
import type { Command } from './command.js'
import { summaries } from './commands.js'
import { printJson, stderrNotes } from './output.js'

const flags = {
  csv: { type: 'string', help: 'also write the comparison as CSV: one row per run, the --json keys as columns', metavar: 'FILE' },
  json: jsonFlag,
} as const

/** A column of the table: a run's summary, and for the default run the wall time it measured around the run. */
export type TableRun = RunSummary & { wallSeconds?: number }

const whole = (n: number): string => n.toLocaleString('en-US')
const or = <T>(v: T | null, f: (v: T) => string): string => v === null ? '-' : f(v)
const fixed = (digits: number) => (n: number): string => Number.isFinite(n) ? n.toFixed(digits) : 'non-finite'
/** Seconds as "106.9 s"; from 1,000 s on as "16m40s", "5h54m". */
const duration = (s: number): string => s < 1000 ? `${s.toFixed(1)} s` : formatDuration(s)

function hellaswagCell(r: TableRun): string {
  if (r.hellaswagAccNorm === null) return '-'
  const how = [r.hellaswagScoring, r.hellaswagShots === null ? null : `${r.hellaswagShots}-shot`].filter(p => p !== null)
  const acc = Number.isFinite(r.hellaswagAccNorm) ? `${(100 * r.hellaswagAccNorm).toFixed(2)}%` : 'non-finite'
  return how.length === 0 ? acc : `${acc} (${how.join(', ')})`
}

/** Every row either table may show: its label, and its cell of a run ('-' where the run's files do not say). */
export const tableRows = {
  modelName: ['model', r => r.modelName ?? '-'],
  parameters: ['parameters', r => or(r.parameters, whole)],
  steps: ['steps (done/--steps)', r => `${whole(r.steps)}/${or(r.stepsPlanned, whole)}`],
  tokens: ['tokens trained', r => or(r.tokens, whole)],
  finalTrainLoss: [`final train loss (last ${FINAL_STEPS} steps)`, r => or(r.finalTrainLoss, fixed(4))],
  finalValLoss: ['final val loss', r => or(r.finalValLoss, fixed(4))],
  bestValLoss: ['best val loss', r => or(r.bestValLoss, fixed(4))],
  bestValStep: ['best val loss at step', r => or(r.bestValStep, whole)],
  hellaswag: ['last HellaSwag acc_norm', hellaswagCell],
  lossSpikes: [`loss spikes (+${SPIKE} nats in a step)`, r => String(r.lossSpikes)],
  tokensPerSecond: ['tokens/s (training steps)', r => or(r.tokensPerSecond, s => whole(Math.round(s)))],
  trainSeconds: ['time in training steps', r => or(r.trainSeconds, duration)],
  wallSeconds: ['time (train + val + checkpoints)', r => or(r.wallSeconds ?? null, duration)],
} satisfies Record<string, [string, (r: TableRun) => string]>

export type TableRow = keyof typeof tableRows

/** llmts compare's rows: all but the wall time, which only a command that trained the runs measured. */
const compareRows: TableRow[] = ['modelName', 'parameters', 'steps', 'tokens', 'finalTrainLoss', 'finalValLoss', 'bestValLoss',
  'bestValStep', 'hellaswag', 'lossSpikes', 'tokensPerSecond', 'trainSeconds']

/** The runs side by side: a column per run headed by its label, right-aligned, each at least 12 characters wide. */
export function comparisonTable(runs: TableRun[], rows: TableRow[]): string {
  const cells = rows.map(key => runs.map(tableRows[key][1]))
  const w0 = Math.max(...rows.map(key => tableRows[key][0].length)) + 2
  const widths = runs.map((r, j) => Math.max(12, r.label.length, ...cells.map(row => row[j]!.length)) + 2)
  const line = (first: string, row: string[]): string => first.padEnd(w0) + row.map((c, j) => c.padStart(widths[j]!)).join('')
  return [line('', runs.map(r => r.label)), ...rows.map((key, i) => line(tableRows[key][0], cells[i]!))].join('\n')
}

/** RunSummary's keys in --json's and the CSV's order (satisfies: a key added to RunSummary must be placed here). */
const columns = Object.keys({
  label: 0, runDir: 0, modelName: 0, parameters: 0, steps: 0, stepsPlanned: 0, tokens: 0, finalTrainLoss: 0, finalValLoss: 0,
  bestValLoss: 0, bestValStep: 0, hellaswagAccNorm: 0, hellaswagScoring: 0, hellaswagShots: 0, hellaswagStep: 0, lossSpikes: 0,
  tokensPerSecond: 0, trainSeconds: 0,
} satisfies Record<keyof RunSummary, 0>) as (keyof RunSummary)[]

/** The runs as CSV (RFC 4180): a header of the --json keys, a row per run; numbers as logged, empty where null or
 *  non-finite. */
export function comparisonCsv(runs: RunSummary[]): string {
  const cell = (v: string | number | null): string => {
    if (v === null || (typeof v === 'number' && !Number.isFinite(v))) return ''
    const s = String(v)
    return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
  }
  return [columns.map(snakeCase), ...runs.map(r => columns.map(k => cell(r[k])))].map(row => row.join(',')).join('\n') + '\n'
}

export const command: Command = {
  name: 'compare',
  summary: summaries.compare,
  usage: 'RUN_DIR... [--json] [--csv FILE]',
  flags,
  async run(argv) {
    const p = parseArgs('llmts compare', flags, argv)
    if (p.help) { process.stdout.write(formatHelp('llmts compare', this.usage, this.summary, flags)); return 0 }
    if (p.positionals.length === 0) throw new InputError('llmts compare: expects one or more RUN_DIR arguments (directories with log.jsonl)')
    const csv = p.flags.csv
    if (csv !== undefined) {
      checkOutputDir('llmts compare', '--csv', dirname(csv))
      if (statSync(csv, { throwIfNoEntry: false })?.isDirectory() === true) {
        throw new InputError(`llmts compare: --csv ${csv} is a directory (expected a file to write)`)
      }
    }
    const labels = labelRuns(p.positionals, 'compare')
    const read = p.positionals.map((dir, i) => readRunSummary(dir, labels[i]!, 'compare'))
    const note = stderrNotes(['compare'])
    for (const n of read.flatMap(r => r.notes)) note(n)
    const runs = read.map(r => r.summary)
    if (csv !== undefined) { makeDirs(dirname(csv)); writeFileAtomic(csv, comparisonCsv(runs)) }
    if (p.flags.json) {
      for (const r of runs) printJson(Object.fromEntries(columns.map(k => [k, r[k]])))
    } else {
      process.stdout.write(`${comparisonTable(runs, compareRows)}\n${csv !== undefined ? `\ncompare: wrote ${csv}\n` : ''}`)
    }
    return 0
  },
}
