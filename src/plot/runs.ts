// Reads training runs for plotting: RUN_DIR/log.jsonl (step lines' loss, lr, grad_norm and tokens_per_s; val_loss
// and hellaswag lines) and, for a tokens x-axis, RUN_DIR/config.json's totalBatchSize (tokens per optimizer step).
// A torn last line (a run still writing) is skipped, unless it is the only one; any other unparseable line is an
// InputError naming the file and line. A value logged as null (JSON's NaN/Inf: a diverged step or validation, a
// non-finite gradient norm) is left out and counted; any other value that is not a number is an InputError naming
// the file and step. The log reader and the run labels serve `llmts compare` too (src/plot/summary.ts).

import { readFileSync, statSync } from 'node:fs'
import { join, resolve, sep } from 'node:path'
import { readLogWithTorn, survivingLines, type LogRecord } from '../train/log.js'
import { InputError, shown } from '../util/errors.js'

export type PlotMetric = 'loss' | 'val_loss' | 'hellaswag' | 'lr' | 'grad_norm' | 'tokens_per_s'
export type PlotX = 'step' | 'tokens'

export const plotMetrics: readonly PlotMetric[] = ['loss', 'val_loss', 'hellaswag', 'lr', 'grad_norm', 'tokens_per_s']
export const plotXs: readonly PlotX[] = ['step', 'tokens']

/** The log.jsonl key each metric reads. */
export const metricKey: Record<PlotMetric, string> = {
  loss: 'loss',
  val_loss: 'val_loss',
  hellaswag: 'hellaswag_acc_norm',
  lr: 'lr',                       // the step lines' keys from here on; grad_norm is before clipping
  grad_norm: 'grad_norm',
  tokens_per_s: 'tokens_per_s',
}

export interface RunSeries {
  label: string                   // shown in the legend: the run directory's name
  dir: string
  points: { x: number; y: number }[]
  /** Steps whose value was null or infinite (a NaN/Inf loss), left out of the points. */
  nonFinite: number
  /** HellaSwag lines only: how the numbers were computed ("harness scoring, 10-shot"), when logged; "mixed
   *  scorings" when the run's lines disagree (a resumed run that changed --hellaswag-scoring or shots). */
  hellaswag?: string
}

/** RUN_DIR/log.jsonl's lines (train/log.ts's reader); errors start with `cmd` (plot, compare) and name the file and
 *  the 1-based line. A torn last line is a live run's step being written, and is skipped; when it is the only line,
 *  nothing could be read, and the error says why rather than "no loss values". */
export function readRunLog(runDir: string, cmd = 'plot'): LogRecord[] {
  const path = join(runDir, 'log.jsonl')
  let log: ReturnType<typeof readLogWithTorn>
  try { log = readLogWithTorn(path) } catch (e) {
    if (e instanceof InputError) throw new InputError(`${cmd}: ${e.message}`)
    const code = (e as NodeJS.ErrnoException).code
    // ENOTDIR: a file given as a run (`llmts plot runs/*` over a folder that holds files too)
    const hint = code === 'ENOENT' ? (isDir(runDir) ? ' (not a training run directory?)' : ' (no such run directory)')
      : code === 'ENOTDIR' ? ' (a file, not a run directory)' : ''
    throw new InputError(`${cmd}: cannot read ${path}: ${code ?? String(e)}${hint}`)
  }
  if (log.records.length > 0 || log.torn === undefined) return log.records
  const what = `its only line, ${shown(log.torn)}, has no newline and`
  throw new InputError(log.torn.startsWith('{')
    ? `${cmd}: ${path}: ${what} is not complete JSON (a run still writing its first step? try again once it has logged one)`
    : `${cmd}: ${path}: ${what} is not JSON (expected one JSON object per line: not a training run's log?)`)
}

function isDir(p: string): boolean {
  try { return statSync(p).isDirectory() } catch { return false }
}

/** Tokens per optimizer step from RUN_DIR/config.json (top level or one object level down). */
function readTokensPerStep(runDir: string): number {
  const path = join(runDir, 'config.json')
  let cfg: unknown
  try { cfg = JSON.parse(readFileSync(path, 'utf8')) } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new InputError(`plot: --x tokens needs ${path}: ${code ?? 'not valid JSON'} (use --x step instead)`)
  }
  const found = findKey(cfg, 'totalBatchSize')
  if (typeof found !== 'number' || !Number.isFinite(found) || found <= 0) {
    throw new InputError(`plot: ${path} has no positive totalBatchSize (tokens per step), needed for --x tokens (use --x step instead)`)
  }
  return found
}

function findKey(obj: unknown, key: string): unknown {
  if (typeof obj !== 'object' || obj === null) return undefined
  const o = obj as Record<string, unknown>
  if (key in o) return o[key]
  for (const v of Object.values(o)) {
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && key in v) return (v as Record<string, unknown>)[key]
  }
  return undefined
}

/** Legend labels (and compare's column heads): directory names, widened (parent/name, grandparent/parent/name, ...)
 *  until each run's is its own. The same directory given twice is an InputError starting with `cmd`: its two series
 *  would be drawn as one line. */
export function labelRuns(runDirs: string[], cmd = 'plot'): string[] {
  const abs = runDirs.map(d => resolve(d))
  abs.forEach((d, i) => {
    const j = abs.indexOf(d)
    if (j !== i) throw new InputError(`${cmd}: run directory ${runDirs[i]} is given twice (also as ${runDirs[j]}); give each run once`)
  })
  const parts = abs.map(d => d.split(sep).filter(p => p !== ''))
  const tail = (p: string[], n: number): string => p.slice(-n).join('/')
  return parts.map((p, i) => {
    let n = 1
    while (n < p.length && parts.some((q, j) => j !== i && tail(q, n) === tail(p, n))) n++
    return tail(p, n)
  })
}

/** One series per run for the metric against step or tokens: the branch that survived each rewind, and of two lines
 *  for one step (with no rewind between), the later. */
export function collectSeries(runDirs: string[], metric: PlotMetric, x: PlotX): RunSeries[] {
  if (runDirs.length === 0) throw new InputError('plot: no run directories given (usage: llmts plot RUN_DIR... --out FILE)')
  const labels = labelRuns(runDirs)
  const key = metricKey[metric]
  return runDirs.map((dir, r) => {
    const lines = survivingLines(readRunLog(dir))   // a rewound log: the surviving branch only
    // --x tokens: the count each step line logged (right across a resume that changed the batch size), else, for logs
    // of older versions, the step times config.json's totalBatchSize
    const logged = x === 'tokens' ? loggedTokens(lines, dir) : new Map<number, number>()
    let perStep: number | undefined
    const xOf = (step: number): number => x === 'step' || step === 0 ? step : logged.get(step) ?? step * (perStep ??= readTokensPerStep(dir))
    const byStep = new Map<number, number | null>()   // null: a non-finite value
    const series: RunSeries = { label: labels[r]!, dir, points: [], nonFinite: 0 }
    const tags = new Set<string>()
    for (const line of lines) {
      const y: unknown = line[key]
      if (y === undefined) continue
      if (y !== null && typeof y !== 'number') {
        throw new InputError(`plot: ${join(dir, 'log.jsonl')}: step ${line.step} has "${key}": ${shown(y)}, expected a number`)
      }
      byStep.set(line.step, y !== null && Number.isFinite(y) ? y : null)
      if (metric === 'hellaswag') tags.add(hellaswagTags(line))
    }
    const steps = [...byStep.entries()].sort((a, b) => a[0] - b[0])
    series.points = steps.flatMap(([s, y]) => (y === null ? [] : [{ x: xOf(s), y }]))
    series.nonFinite = steps.length - series.points.length
    if (tags.size > 0) series.hellaswag = tags.size === 1 ? [...tags][0]! : 'mixed scorings'
    return series
  })
}

/** step -> the tokens its step line logged; a damaged count (negative, a string) is an InputError naming the step
 *  rather than a point drawn at x = -5 or silently placed at step × totalBatchSize. */
function loggedTokens(lines: LogRecord[], dir: string): Map<number, number> {
  const logged = new Map<number, number>()
  for (const line of lines) {
    const t: unknown = line['tokens']
    if (t === undefined || !('loss' in line)) continue
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) {
      throw new InputError(`plot: ${join(dir, 'log.jsonl')}: step ${line.step} has "tokens": ${shown(t)}, expected a non-negative number`)
    }
    logged.set(line.step, t)
  }
  return logged
}

/** "harness scoring, 10-shot" from a HellaSwag line's tags (either may be missing; "" when both are). */
function hellaswagTags(line: LogRecord): string {
  const scoring = line['hellaswag_scoring'] ?? line['scoring']
  const shots = line['hellaswag_shots'] ?? line['shots']
  return [typeof scoring === 'string' ? `${scoring} scoring` : '', typeof shots === 'number' ? `${shots}-shot` : '']
    .filter(p => p !== '').join(', ')
}
