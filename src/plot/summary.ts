// One run's numbers for a side-by-side comparison (`llmts compare`, the default run's table), read from
// RUN_DIR/log.jsonl — the branch that survived each rewind, a torn last line (a live run) skipped — and
// RUN_DIR/config.json. Every number comes from the files, so a run reads the same live, finished or years later.
// tokens/s is the trainer's own definition: the tokens of the logged steps over the time spent in them
// (validation, HellaSwag and checkpoints excluded), which a resumed run's sessions add up to.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { survivingLines, type LogRecord } from '../train/log.js'
import { InputError, fsReason, shown } from '../util/errors.js'
import { readRunLog } from './runs.js'

export const SPIKE = 2          // a step whose training loss exceeds the previous step's by this much (nats) is a spike
export const FINAL_STEPS = 5    // the final training loss is the mean of this many last steps' (one step's is noisy)

/** Steps whose loss is more than SPIKE nats above the step before (of the steps with a finite loss). */
export function countSpikes(curve: { loss: number }[]): number {
  let n = 0
  for (let i = 1; i < curve.length; i++) if (curve[i]!.loss > curve[i - 1]!.loss + SPIKE) n++
  return n
}

/** One run. null: not in its files (no config.json, no validation yet, another trainer's log without the key); a
 *  non-finite number (NaN): logged as null, a diverged value. Its keys, in order, are --json's and the CSV's. */
export interface RunSummary {
  label: string
  runDir: string
  modelName: string | null        // what --model named (else --init-from), as config.json records it
  parameters: number | null
  steps: number                   // the last step line's step (0: none logged yet)
  stepsPlanned: number | null     // --steps
  tokens: number | null           // trained through the last step: its line's count, else steps × totalBatchSize
  finalTrainLoss: number | null   // mean of the last FINAL_STEPS finite step losses
  finalValLoss: number | null     // the last validation's
  bestValLoss: number | null      // the lowest finite validation loss (step 0's included)
  bestValStep: number | null
  hellaswagAccNorm: number | null // the last HellaSwag line's, with how it was scored
  hellaswagScoring: string | null
  hellaswagShots: number | null
  hellaswagStep: number | null
  lossSpikes: number              // countSpikes over the finite step losses
  tokensPerSecond: number | null  // Σ tokens_per_s·ms / Σ ms over the step lines
  trainSeconds: number | null     // Σ ms: time in training steps
}

interface RunConfig { modelName: string | null; parameters: number | null; stepsPlanned: number | null; tokensPerStep: number | null }

/** The summary of RUN_DIR, headed `label`; errors start with `cmd`. `notes`: what the reader should know (no config.json). */
export function readRunSummary(runDir: string, label: string, cmd: string): { summary: RunSummary; notes: string[] } {
  const lines = survivingLines(readRunLog(runDir, cmd))
  const config = readRunConfig(runDir, cmd)
  const notes = config !== null ? [] : [`note: ${runDir} has no config.json: its model, parameters and --steps are shown as -`]
  const summary = summarize(lines, { dir: runDir, cmd }, config ?? { modelName: null, parameters: null, stepsPlanned: null, tokensPerStep: null })
  return { summary: { label, runDir, ...summary }, notes }
}

type Numbers = Omit<RunSummary, 'label' | 'runDir'>

function summarize(lines: LogRecord[], at: { dir: string; cmd: string }, config: RunConfig): Numbers {
  const value = (line: LogRecord, key: string): number | undefined => logged(line, key, at)
  const losses: { loss: number }[] = []
  let steps = 0, tokens: number | null = null, weighted = 0, ms = 0
  let finalValLoss: number | null = null, best: { loss: number; step: number } | null = null
  let hellaswag: LogRecord | null = null
  for (const line of lines) {
    const loss = value(line, 'loss')
    if (loss !== undefined) {
      steps = line.step
      if (Number.isFinite(loss)) losses.push({ loss })
      const t = value(line, 'tokens'), rate = value(line, 'tokens_per_s'), took = value(line, 'ms')
      if (t !== undefined && t < 0) {
        throw new InputError(`${at.cmd}: ${join(at.dir, 'log.jsonl')}: step ${line.step} has "tokens": ${t}, expected a non-negative number`)
      }
      tokens = t !== undefined && Number.isFinite(t) ? t : null
      if (rate !== undefined && took !== undefined && Number.isFinite(rate * took) && took > 0) { weighted += rate * took; ms += took }
    }
    const val = value(line, 'val_loss')
    if (val !== undefined) {
      finalValLoss = val
      if (Number.isFinite(val) && (best === null || val < best.loss)) best = { loss: val, step: line.step }
    }
    if (value(line, 'hellaswag_acc_norm') !== undefined) hellaswag = line
  }
  const tail = losses.slice(-FINAL_STEPS)
  return {
    modelName: config.modelName, parameters: config.parameters, steps, stepsPlanned: config.stepsPlanned,
    tokens: tokens ?? (steps === 0 ? 0 : config.tokensPerStep === null ? null : steps * config.tokensPerStep),
    finalTrainLoss: tail.length === 0 ? null : tail.reduce((s, r) => s + r.loss, 0) / tail.length,
    finalValLoss, bestValLoss: best?.loss ?? null, bestValStep: best?.step ?? null,
    ...hellaswagOf(hellaswag, at),
    lossSpikes: countSpikes(losses),
    tokensPerSecond: ms === 0 ? null : weighted / ms, trainSeconds: ms === 0 ? null : ms / 1000,
  }
}

/** A number of a log line: undefined when the line has no such key, NaN when it was logged as null (JSON's NaN and
 *  infinities); anything else is an InputError naming the file, the step and the key. */
function logged(line: LogRecord, key: string, at: { dir: string; cmd: string }): number | undefined {
  const v: unknown = line[key]
  if (v === undefined) return undefined
  if (v === null) return NaN
  if (typeof v !== 'number') {
    throw new InputError(`${at.cmd}: ${join(at.dir, 'log.jsonl')}: step ${line.step} has "${key}": ${shown(v)}, expected a number or null`)
  }
  return v
}

function hellaswagOf(line: LogRecord | null, at: { dir: string; cmd: string }):
  Pick<Numbers, 'hellaswagAccNorm' | 'hellaswagScoring' | 'hellaswagShots' | 'hellaswagStep'> {
  if (line === null) return { hellaswagAccNorm: null, hellaswagScoring: null, hellaswagShots: null, hellaswagStep: null }
  const scoring = line['hellaswag_scoring'], shots = line['hellaswag_shots']
  return {
    hellaswagAccNorm: logged(line, 'hellaswag_acc_norm', at)!, hellaswagScoring: typeof scoring === 'string' ? scoring : null,
    hellaswagShots: typeof shots === 'number' ? shots : null, hellaswagStep: line.step,
  }
}

/** What RUN_DIR/config.json (as llmts train writes it) says of the run; null when the run has none (another
 *  trainer's log). A file that is not a JSON object, or a known key of the wrong type, is an InputError. */
function readRunConfig(runDir: string, cmd: string): RunConfig | null {
  const path = join(runDir, 'config.json')
  let text: string
  try { text = readFileSync(path, 'utf8') } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new InputError(`${cmd}: cannot read ${path}: ${fsReason(e)}`)
  }
  let cfg: unknown
  try { cfg = JSON.parse(text) } catch { throw new InputError(`${cmd}: ${path} is not valid JSON (expected the run's settings, as llmts train writes them)`) }
  if (!isObject(cfg)) throw new InputError(`${cmd}: ${path} is not a JSON object (expected the run's settings, as llmts train writes them)`)
  const train = isObject(cfg['train']) ? cfg['train'] : {}
  const get = <T>(obj: Record<string, unknown>, key: string, name: string, ok: (v: unknown) => v is T, expected: string): T | null => {
    const v = obj[key]
    if (v === undefined || v === null) return null
    if (!ok(v)) throw new InputError(`${cmd}: ${path} has "${name}": ${shown(v)}, expected ${expected}`)
    return v
  }
  const isString = (v: unknown): v is string => typeof v === 'string'
  const count = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0
  const named = (key: string): string | null => { const s = get(train, key, `train.${key}`, isString, 'a string'); return s === '' ? null : s }
  return {
    modelName: named('model') ?? named('initFrom') ?? get(cfg, 'modelSource', 'modelSource', isString, 'a string'),
    parameters: get(cfg, 'parameters', 'parameters', count, 'a positive integer'),
    stepsPlanned: get(train, 'steps', 'train.steps', count, 'a positive integer'),
    tokensPerStep: get(train, 'totalBatchSize', 'train.totalBatchSize', count, 'a positive integer'),
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
