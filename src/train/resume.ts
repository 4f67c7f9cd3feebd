// Where `--resume` continues a run: the newest checkpoint that passes verification. A damaged newest one
// (bad state.json, a checksum mismatch) is renamed to step_N.damaged with a warning and the previous one is
// tried; if every checkpoint is damaged the resume is refused. A run killed before its first checkpoint
// (config.json written, no checkpoint) starts over from step 0 with its recorded settings.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { InputError } from '../util/errors.js'
import { formatBytes } from '../util/progress.js'
import {
  COMMITTED_BEST, DamagedCheckpointError, listCheckpoints, listStateless, MODEL_FILE, moveAsideDamaged, readCheckpoint,
  readStepAndLoss, removeLeftovers, removeRunEntry, saveBest, STATE_FILE, type Checkpoint,
} from './checkpoint.js'
import { trainConfigFromJson, trainDefaults, type TrainConfig } from './config.js'
import { readLog, type LogRecord } from './log.js'

export type ResumePoint =
  // log: log.jsonl's records as noteMissingLog read them, kept so the trainer does not parse a long log a second time
  | { kind: 'checkpoint'; path: string; checkpoint: Checkpoint; log?: LogRecord[] }
  | { kind: 'restart'; config: TrainConfig }   // no checkpoint yet: the settings of RUN_DIR/config.json

/** Finds (and fully verifies) what --resume continues from; notes each damaged checkpoint moved aside. */
export function findResumePoint(runDir: string, note: (line: string) => void = () => {}): ResumePoint {
  const st = statSync(runDir, { throwIfNoEntry: false })
  if (st === undefined) throw new InputError(`train: --resume: ${runDir} does not exist (start without --resume to begin a run there)`)
  if (!st.isDirectory()) throw new InputError(`train: --resume: ${runDir} is not a directory (--out takes a run directory)`)
  refuseModelDir(runDir, '--resume: ')
  removeLeftovers(runDir, note)   // first: a checkpoint caught mid-swap by a crash is renamed back here
  const damaged: string[] = []
  for (const path of listStateless(runDir)) {   // not listed as checkpoints, and the step would be written over
    damaged.push(moveAsideDamaged(path))
    note(`train: warning: --resume skips a damaged checkpoint (${path} has no ${STATE_FILE}); ${movedTo(damaged.at(-1)!)}`)
  }
  const checkpoints = listCheckpoints(runDir)
  for (const c of checkpoints.reverse()) {
    try {
      const checkpoint = readCheckpoint(c.path, { withOptimizer: true })
      const log = noteMissingLog(runDir, checkpoint.progress.step, note)
      return { kind: 'checkpoint', path: c.path, checkpoint, log }
    } catch (e) {
      if (!(e instanceof DamagedCheckpointError)) throw e
      const aside = moveAsideDamaged(c.path)
      damaged.push(aside)
      note(`train: warning: --resume skips a damaged checkpoint (${e.message}); ${movedTo(aside)}`)
    }
  }
  if (damaged.length > 0) {
    throw new InputError(`train: --resume: no intact checkpoint in ${join(runDir, 'checkpoints')} (damaged ones moved to ${damaged.join(', ')}); ` +
      'start over with --overwrite')
  }
  const config = readRunConfig(runDir)
  if (config === null) {
    throw new InputError(`train: --resume: ${runDir} holds no run (no config.json, no checkpoint); start without --resume to begin one`)
  }
  return { kind: 'restart', config }
}

/** Where a damaged checkpoint went and what it costs: kept (it may hold the data the user wants back, e.g. weights
 *  whose state.json alone is torn) and never pruned, so the user deletes it, knowing it is 1.49 GB at gpt2-124m. */
function movedTo(aside: string): string {
  let size = ''
  try {
    let bytes = 0
    for (const n of readdirSync(aside, { recursive: true, encoding: 'utf8' })) {
      const st = statSync(join(aside, n))
      if (st.isFile()) bytes += st.size
    }
    size = `${formatBytes(bytes)}, `
  } catch { /* a part it cannot look into: the note without the size */ }
  return `moved to ${aside} (${size}kept for inspection and never pruned: delete it when done)`
}

/** Refuses a checkpoint or a Hugging Face directory (a model.safetensors or state.json at its top) given as a run
 *  directory: a run there would mix its files with the model's, and --resume would read the model's config.json. */
export function refuseModelDir(runDir: string, context = ''): void {
  const found = [STATE_FILE, MODEL_FILE].find(f => existsSync(join(runDir, f)))
  if (found === undefined) return
  const parent = dirname(runDir), run = basename(parent) === 'checkpoints' ? dirname(parent) : parent
  const what = found === STATE_FILE ? `a checkpoint (it has ${STATE_FILE}); --out takes its run directory, ${run}` :
    `a model directory (it has ${found}), not a run; give another --out (the model goes in --model or --init-from)`
  throw new InputError(`train: ${context}${runDir} is ${what}`)
}

/** Notes a log.jsonl that lacks the resumed step's line (deleted, emptied, cut short): the resumed log would
 *  start at step+1 without a word, and plots of the run would silently lack the missing steps. Returns the records. */
function noteMissingLog(runDir: string, step: number, note: (line: string) => void): LogRecord[] {
  const path = join(runDir, 'log.jsonl')
  const lines = existsSync(path) ? readLog(path) : []
  if (lines.some(l => l.step === step && 'loss' in l)) return lines
  note(`train: note: ${path} has no line for the resumed step ${step} (deleted, emptied or cut short?); ` +
    `new lines start at step ${step + 1}`)
  return lines
}

/** The train settings of RUN_DIR/config.json (written before the first step), or null when it is absent. */
function readRunConfig(runDir: string): TrainConfig | null {
  const path = join(runDir, 'config.json')
  if (!existsSync(path)) return null
  let obj: unknown
  try { obj = JSON.parse(readFileSync(path, 'utf8')) } catch (e) {
    throw new InputError(`train: --resume: ${path} is not valid JSON (${(e as Error).message}); start over with --overwrite`)
  }
  const train = typeof obj === 'object' && obj !== null ? (obj as { train?: unknown }).train : undefined
  return { ...trainDefaults, ...trainConfigFromJson(train, `${path} "train"`) }
}

/** Notes train shards that differ from those RUN_DIR/config.json recorded when --data did not change: the saved
 *  position (a shard index and an offset) then points into other data, e.g. after `llmts prepare` wrote the folder
 *  again or shards were added or removed. A note, not an error: the run can go on, and changing the data is a use. */
export function noteShardChange(runDir: string, train: string[], note: (line: string) => void): void {
  let recorded: unknown
  try { recorded = (JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')) as { trainShards?: unknown }).trainShards } catch { return }
  if (!Array.isArray(recorded) || recorded.join('\n') === train.join('\n')) return
  const gone = recorded.filter(f => !train.includes(f)), added = train.filter(f => !recorded.includes(f))
  const list = (fs: unknown[]): string => `${fs.slice(0, 2).join(', ')}${fs.length > 2 ? ', …' : ''}`
  note(`train: note: --resume: the train shards are not those ${join(runDir, 'config.json')} recorded (${recorded.length} then, ` +
    `${train.length} now${gone.length > 0 ? `; gone: ${list(gone)}` : ''}${added.length > 0 ? `; new: ${list(added)}` : ''}` +
    `${gone.length + added.length === 0 ? '; in another order' : ''}); the saved data position now points into other data`)
}

/** Warns of train shards whose contents changed under the same name since the checkpoint (the loader state's
 *  fingerprints: size and sampled bytes). A warning, not an error, as for shards added or removed: llm.c's resume goes on
 *  with whatever data it is given, training on new data is a use, and a refusal would leave the run no way to go on;
 *  but unlike a changed list, same names look like the same data, so this is said loudly. */
export function noteShardContents(changes: string[], checkpointDir: string, note: (line: string) => void): void {
  if (changes.length === 0) return
  const more = changes.length > 1 ? `; and ${changes.length - 1} more changed` : ''
  note(`train: warning: --resume: a train shard is not the one ${join(checkpointDir, 'state.json')} was trained on: ` +
    `${changes[0]}${more}; the run goes on with the data it is given now, no longer the same stream (put the old shards back to continue it)`)
}

/** Notes a resume whose validation reads other tokens than the run's did (--val-steps, --batch-size, --seq-len, other
 *  val shards): allowed, as nanoGPT's eval_iters and llm.c's val_max_steps may change, but the val losses after it are
 *  then not comparable with those before, nor with the best so far, which best/ still keeps until a lower one. */
export function noteValidationChange(runDir: string, was: TrainConfig, now: TrainConfig, val: string[] | null,
                                     from: { step: number; bestValLoss: number | null }, note: (line: string) => void): void {
  if (val === null || now.valEvery <= 0) return
  const causes = ([['valSteps', 'val-steps'], ['batchSize', 'batch-size'], ['seqLen', 'seq-len']] as const)
    .filter(([k]) => was[k] !== now[k]).map(([k, f]) => `--${f} ${was[k]} → ${now[k]}`)
  let recorded: unknown
  try { recorded = (JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')) as { valShards?: unknown }).valShards } catch { /* none */ }
  const otherShards = Array.isArray(recorded) ? recorded.join('\n') !== val.join('\n') : was.valData !== now.valData || was.data !== now.data
  if (otherShards) causes.push('other validation shards')
  if (causes.length === 0) return
  note(`train: note: --resume: validation reads other tokens after the resumed step ${from.step} (${causes.join(', ')}), so its ` +
    `val losses are not comparable with those logged before` + (from.bestValLoss === null ? '' : `, nor with the best so far ` +
    `(${from.bestValLoss.toFixed(4)}, in best/), which best/ keeps until one of them is lower`))
}

/** The settings a resumed run starts from (before --config and flags): the checkpoint's, else config.json's. */
export function resumedSettings(point: ResumePoint): TrainConfig {
  return point.kind === 'restart' ? point.config : point.checkpoint.trainConfig ?? trainDefaults
}

/** RUN_DIR/best made to hold the best as of the resumed checkpoint. The steps after it are trained again, so a
 *  best/ from them (a kill, or a stop on a NaN, before the next checkpoint) goes, and the checkpoint's best comes
 *  back from .best-committed or a step checkpoint; a crash between a checkpoint and its copy to best/ is repaired. */
export function repairBest(runDir: string, point: ResumePoint & { kind: 'checkpoint' }, note: (line: string) => void = () => {}): void {
  const p = point.checkpoint.progress, best = join(runDir, 'best'), had = readStepAndLoss(best)
  const isBest = (m: { step: number; valLoss: number | null } | null): boolean =>
    m !== null && m.step <= p.step && m.valLoss !== null && m.valLoss === p.bestValLoss
  if (!isBest(had)) {
    const candidates = [join(runDir, COMMITTED_BEST), ...listCheckpoints(runDir).reverse().map(c => c.path)]
    const src = isBest(p) ? point.path : candidates.find(dir => isBest(readStepAndLoss(dir)))
    const later = had !== null && had.step > p.step   // from the steps this resume trains again
    if (src !== undefined) saveBest(runDir, src, { warn: note })
    else if (later) removeRunEntry(runDir, 'best', note)
    if (later) {
      const now = src !== undefined ? `best/ is step ${readStepAndLoss(best)!.step}'s again (val loss ${p.bestValLoss!.toFixed(4)})`
        : p.bestValLoss === null ? 'the run had no best validation loss then' : `no copy of its best as of then (val loss ` +
          `${p.bestValLoss.toFixed(4)}) is left, so it has no best/ until a validation beats that`
      note(`train: note: --resume drops best/ of step ${had.step} (val loss ${had.valLoss?.toFixed(4) ?? '-'}), after the resumed ` +
        `step ${p.step}; ${now}`)
    }
  }
  removeRunEntry(runDir, COMMITTED_BEST, note)
}

/** Restores the train loader's position from a checkpoint; a position that does not fit the data (other
 *  shards, B or T) is an InputError naming the checkpoint's state.json. */
export function restoreLoader(loader: { restore(state: never): void }, state: unknown, checkpointDir: string): void {
  const where = join(checkpointDir, 'state.json')
  if (state === null) throw new InputError(`train: --resume: ${where} has no data-loader position (not written by llmts train)`)
  try { loader.restore(state as never) } catch (e) {
    throw e instanceof InputError ? new InputError(`train: --resume: ${where}: ${e.message}`) : e
  }
}
