// --all-checkpoints of `llmts eval loss` and `llmts eval hellaswag`: every step checkpoint of a run, in step order,
// through one backend and one model whose weights are replaced checkpoint by checkpoint (the command reads and
// tokenizes its data once). A checkpoint that cannot be read (damaged) or evaluated (diverged weights: a non-finite
// loss) is a warning and skipped: the others' results stand, and the command ends with an error naming the skipped
// ones (exit 2).

import { existsSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { presets, type ModelConfig } from '../config.js'
import { diffConfigs, moveWeightsInto, resolveModel, type ResolvedModel } from '../model/load.js'
import { isCheckpointDir, isRunDir } from '../train/checkpoint-dirs.js'
import { listCheckpoints, listStateless } from '../train/checkpoint.js'
import { InputError } from '../util/errors.js'
import { plural } from '../util/progress.js'
import { printJson } from './output.js'

export const allCheckpointsFlag = { type: 'bool',
  help: 'evaluate every step checkpoint of the --model run directory, in step order: one result line each' } as const

interface Entry {
  step: number
  path: string
  damage: string | null   // why it cannot be read, found before any checkpoint is evaluated
}

export interface SweepPlan {
  first: ResolvedModel   // the first readable checkpoint, without its weights: the architecture and labels
  entries: Entry[]       // in step order
}

/** What --all-checkpoints with `--model spec` evaluates: the run's step checkpoints, each's state.json and weights'
 *  header checked (not the weights: those are read at its turn). Refused: no run directory, --init-from, a run without
 *  step checkpoints or none readable, and checkpoints of different architectures. */
export function planSweep(cmd: string, spec: string | undefined, initFrom: string | undefined): SweepPlan {
  const expected = 'a training run directory, with checkpoints/step_N'
  if (initFrom !== undefined) throw new InputError(`${cmd}: --all-checkpoints takes every checkpoint's weights from --model RUN_DIR; drop --init-from`)
  if (spec === undefined) throw new InputError(`${cmd}: --all-checkpoints needs --model RUN_DIR (${expected})`)
  if (!isRunDir(spec)) throw new InputError(`${cmd}: --all-checkpoints needs --model RUN_DIR (${expected}); ${whatIs(spec)}`)
  const entries: Entry[] = [
    ...listCheckpoints(spec).map(c => ({ ...c, damage: null })),
    ...listStateless(spec).map(path => ({ step: Number(basename(path).slice(5)), path,
      damage: `checkpoint: ${path} has no state.json (damaged: a checkpoint is written whole)` })),
  ].sort((a, b) => a.step - b.step)
  if (entries.length === 0) {
    const best = isCheckpointDir(join(spec, 'best')) ? `; its best/ alone: --model ${join(spec, 'best')} without --all-checkpoints` : ''
    throw new InputError(`${cmd}: ${spec} has no step checkpoints (expected ${join(spec, 'checkpoints', 'step_N')}${best})`)
  }
  let first: ResolvedModel | undefined
  for (const e of entries.filter(e => e.damage === null)) {
    let m: ResolvedModel
    try { m = resolveModel(e.path, { weights: 'header' }) } catch (err) {
      if (!(err instanceof InputError)) throw err
      e.damage = err.message
      continue
    }
    first ??= m
    refuseOtherArchitecture(cmd, first, m)
  }
  if (first === undefined) {
    throw new InputError(`${cmd}: none of the ${entries.length} step checkpoints of ${spec} can be read (the first: ${entries[0]!.damage})`)
  }
  return { first, entries }
}

function refuseOtherArchitecture(cmd: string, first: ResolvedModel, m: { config: ModelConfig; source: string }): void {
  const diffs = diffConfigs(first.config, m.config)
  if (diffs.length > 0) {
    throw new InputError(`${cmd}: ${first.source} and ${m.source} differ: ${diffs.join(', ')} ` +
      `(--all-checkpoints needs one architecture; evaluate them one by one)`)
  }
}

/** What `spec` is, for the refusal of one that is not a run directory. */
function whatIs(spec: string): string {
  if (Object.hasOwn(presets, spec)) return `${spec} is a preset`
  const runOf = basename(spec) === 'best' ? dirname(spec) : dirname(dirname(spec))
  if (isCheckpointDir(spec)) return `${spec} is one checkpoint${isRunDir(runOf) ? ` (of the run ${runOf})` : ''}`
  if (basename(spec) === 'checkpoints' && isRunDir(dirname(spec))) return `${spec} is the checkpoints folder of the run ${dirname(spec)}`
  let dir: boolean
  try { dir = statSync(spec).isDirectory() } catch { return `${spec} does not exist` }
  if (!dir) return `${spec} is a file`
  return existsSync(join(spec, 'config.json')) ? `${spec} is a Hugging Face directory` : `${spec} has no checkpoints/ folder`
}

export interface SweepOutput<R> {
  /** Evaluates the model as it is now; `which` ("checkpoint 3/7 (step 3000)") is for its progress lines. */
  evaluate: (which: string) => R
  /** The command's usual result line and JSON object for a result of model `m`. */
  line: (r: R, m: ResolvedModel) => string
  record: (r: R, m: ResolvedModel) => object
  /** The number that makes one checkpoint the best, and how it is printed in the final line ("val_loss 3.281700"). */
  best: { of: (r: R) => number; want: 'lowest' | 'highest'; shown: (r: R) => string }
  json: boolean
  note: (line: string) => void
}

/** Loads each checkpoint of `plan` into `model` in turn and evaluates it: a result line (JSON Lines with --json, each
 *  with its "step") as each completes, then in text the best (the earliest of equals). Damaged checkpoints and failed
 *  evaluations are warnings, skipped; an InputError at the end names them. Returns the exit code. */
export function runSweep<R>(cmd: string, plan: SweepPlan, model: { setParams(flat: Float32Array): void }, o: SweepOutput<R>): number {
  const n = plan.entries.length, skipped: number[] = []
  let best: { step: number; score: number; shown: string; path: string } | null = null
  for (const [i, e] of plan.entries.entries()) {
    const which = `checkpoint ${i + 1}/${n} (step ${e.step})`
    const m = loadEntry(e)
    if ('damage' in m) {
      o.note(`warning: ${which} skipped: ${m.damage}`)
      skipped.push(e.step)
      continue
    }
    refuseOtherArchitecture(cmd, plan.first, m.model)   // checked from the headers; the files may have changed since
    moveWeightsInto(model, m.model)
    const r = evaluateOne(o, which)
    if ('failure' in r) {   // diverged weights (a non-finite loss): the others' results still stand
      o.note(`warning: ${which} skipped: ${r.failure}`)
      skipped.push(e.step)
      continue
    }
    const score = o.best.of(r.result)
    if (o.json) printJson({ step: e.step, ...o.record(r.result, m.model) })
    else process.stdout.write(`step ${e.step}: ${o.line(r.result, m.model)}\n`)
    if (best === null || (o.best.want === 'lowest' ? score < best.score : score > best.score)) {
      best = { step: e.step, score, shown: o.best.shown(r.result), path: m.model.path }
    }
  }
  if (!o.json && best !== null) process.stdout.write(`best: step ${best.step}, ${best.shown} (${best.path})\n`)
  if (skipped.length > 0) {
    const which = `step ${skipped.join(', ')}; see the warnings above`
    throw new InputError(skipped.length === n ? `${cmd}: none of the ${n} ${plural(n, 'checkpoint')} could be evaluated (${which})`
      : `${cmd}: ${skipped.length} of ${n} checkpoints could not be evaluated and ${skipped.length === 1 ? 'was' : 'were'} skipped ` +
        `(${which}); the others' results are printed`)
  }
  return 0
}

/** The result of the model as loaded, or the InputError's message of an evaluation that failed (a non-finite loss). */
function evaluateOne<R>(o: SweepOutput<R>, which: string): { result: R } | { failure: string } {
  try { return { result: o.evaluate(which) } } catch (err) {
    if (err instanceof InputError) return { failure: err.message }
    throw err
  }
}

/** The checkpoint with its weights, or why it cannot be read (an InputError's message: damage, an unreadable file). */
function loadEntry(e: Entry): { model: ResolvedModel } | { damage: string } {
  if (e.damage !== null) return { damage: e.damage }
  try { return { model: resolveModel(e.path) } } catch (err) {
    if (err instanceof InputError) return { damage: err.message }
    throw err
  }
}
