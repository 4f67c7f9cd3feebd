// Checkpoints: RUN_DIR/checkpoints/step_NNNNNN/ holds model.safetensors (internal parameter names, F32, padded
// vocabulary rows included), optimizer.safetensors (AdamW m and v, flat) and state.json (step, loader and RNG
// state, both configs, a SHA-256 of each tensor file verified on load). A checkpoint is written into a temp
// directory, fsynced and renamed into place, so a directory named step_* is always complete. Leftovers of an
// interrupted write or swap are cleaned (or renamed back) by the next run; deletions are renames first.

import { createHash } from 'node:crypto'
import {
  closeSync, copyFileSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, readSync,
  renameSync, rmSync, statSync,
} from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { validateConfig, type ModelConfig } from '../config.js'
import { readSafetensorsHeader, readSafetensorsInto, writeSafetensorsTo, type TensorInfo, type WriteTensor } from '../io/safetensors.js'
import { ParamLayout } from '../model/params.js'
import { fsyncDir, makeDirs, spaceError, writeFileAtomic, writeFilesAtomic } from '../util/atomic.js'
import { fsReason, InputError } from '../util/errors.js'
import { DamagedCheckpointError, FORMAT, readStateFile, unreadableError, type StateJson, type TrainProgress } from './checkpoint-state.js'
import { validateTrainConfig, type TrainConfig } from './config.js'
import { slowCheckpointStage } from './test-hooks.js'

export { DamagedCheckpointError, type TrainProgress } from './checkpoint-state.js'

export const MODEL_FILE = 'model.safetensors'
const OPTIMIZER_FILE = 'optimizer.safetensors'
export const STATE_FILE = 'state.json'

interface OptimizerState { m: Float32Array; v: Float32Array; step: number }

export interface Checkpoint {
  modelConfig: ModelConfig
  trainConfig: TrainConfig | null   // null for checkpoints not made by `llmts train`
  params: Float32Array              // (layout.total) flat parameters
  optimizer: OptimizerState | null
  progress: TrainProgress
}

export function checkpointName(step: number): string {
  return `step_${String(step).padStart(6, '0')}`
}

/** Where deletions that are housekeeping report a failure (an old checkpoint, a replaced copy, a leftover): what the
 *  run needs is durable by then, so a folder that cannot be deleted (read-only, another user's file) is a warning. */
export type Warn = (line: string) => void

/** Writes a checkpoint directory atomically (replacing an existing one of the same name; see swapInto for `warn`). */
export function writeCheckpoint(dir: string, ck: Checkpoint, warn?: Warn): void {
  const layout = new ParamLayout(ck.modelConfig)
  if (ck.params.length !== layout.total) throw new Error(`checkpoint: params have ${ck.params.length} floats, layout needs ${layout.total}`)
  writeDirAtomic(dir, tmp => {
    const files: StateJson['files'] = {
      [MODEL_FILE]: writeHashed(join(tmp, MODEL_FILE), layout.specs.map(s => ({
        name: s.name, dtype: 'F32' as const, shape: s.shape, data: ck.params.subarray(s.offset, s.offset + s.size),
      })), { format: FORMAT, config: JSON.stringify(ck.modelConfig) }),
    }
    slowCheckpointStage()
    if (ck.optimizer !== null) {
      files[OPTIMIZER_FILE] = writeHashed(join(tmp, OPTIMIZER_FILE), [
        { name: 'm', dtype: 'F32', shape: [layout.total], data: ck.optimizer.m },
        { name: 'v', dtype: 'F32', shape: [layout.total], data: ck.optimizer.v },
      ], { format: FORMAT })
      slowCheckpointStage()
    }
    const state: StateJson = {
      format: FORMAT, version: 1, ...ck.progress, modelConfig: ck.modelConfig, trainConfig: ck.trainConfig,
      optimizerStep: ck.optimizer?.step ?? null, files,
    }
    writeFileAtomic(join(tmp, STATE_FILE), JSON.stringify(state, null, 2) + '\n')
  }, warn)
}

/** Makes directory `dir` whole or not at all: `fill` writes into a fresh temp directory beside it, which then
 *  replaces `dir`; on a failure the temp directory goes, and a full disk is an OutOfSpaceError naming `dir`. */
function writeDirAtomic(dir: string, fill: (tmp: string) => void, warn: Warn | undefined): void {
  makeDirs(dirname(dir))
  const tmp = asideName(dir, 'tmp')
  try {
    mkdirSync(tmp)
    fill(tmp)
    swapInto(tmp, dir, warn)
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true })
    throw spaceError(e, dir)
  }
}

/** Renames the finished directory `tmp` to `dir` (moving an old `dir` aside first) and fsyncs the parent. The old
 *  one's deletion failing is a warning when `warn` is given (`dir` is whole by then), else thrown. */
function swapInto(tmp: string, dir: string, warn: Warn | undefined): void {
  fsyncDir(tmp)
  const old = asideName(dir, 'old')
  const hadOld = existsSync(dir)
  if (hadOld) renameSync(dir, old)
  slowCheckpointStage()   // the one moment `dir` is missing: removeLeftovers renames `old` back after a crash
  renameSync(tmp, dir)
  fsyncDir(dirname(dir))
  if (hadOld) removeOrWarn(old, `the replaced ${dir}`, warn)
}

/** A free name beside `path` for its temp copy or for moving it aside: `.NAME.KIND-PID`, or `-2`, `-3`... after it
 *  when taken (by a leftover this process could not delete: a rename onto it would fail, and the run with it). */
function asideName(path: string, kind: 'tmp' | 'old' | 'del'): string {
  const first = join(dirname(path), `.${basename(path)}.${kind}-${process.pid}`)
  let name = first
  for (let n = 2; existsSync(name); n++) name = `${first}-${n}`
  return name
}

/** The paths warned about: a leftover that stays is met again at every checkpoint, one warning per process (a
 *  background save's thread gets the set with its job and hands it back: checkpoint-writer.ts). */
export const warned = new Set<string>()

/** Deletes `path` (what `what` names); a failure goes to `warn`, once per path, naming what is left, or is thrown
 *  when no `warn` is given. */
function removeOrWarn(path: string, what: string, warn: Warn | undefined): void {
  try { rmSync(path, { recursive: true, force: true }) } catch (e) {
    if (warn === undefined) throw e
    warnOnce(warn, path, `could not delete ${what}: ${failure(e, path)}; ${path} is left (delete it by hand), the run goes on`)
  }
}

function warnOnce(warn: Warn, path: string, line: string): void {
  if (warned.has(path)) return
  warned.add(path)
  warn(`train: warning: ${line}`)
}

/** An fs error's reason and, when it is not `path` itself, the file it failed on (a file inside a folder). */
function failure(e: unknown, path: string): string {
  const at = (e as NodeJS.ErrnoException).path
  return `${fsReason(e)}${at !== undefined && at !== path ? ` at ${at}` : ''}`
}

type FileSum = { sha256: string; bytes: number }

/** Writes a safetensors file atomically, hashing its bytes on their way to the disk: the file is not read back (a
 *  350M model's optimizer.safetensors, 2.8 GB, is over the 2 GiB one read returns, and a read back held it all). */
function writeHashed(path: string, tensors: WriteTensor[], metadata: Record<string, string>): FileSum {
  const hash = createHash('sha256')
  let bytes = 0
  writeFilesAtomic([{ path, write: w => writeSafetensorsTo({
    write: data => { hash.update(data); bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength; w.write(data) },
  }, tensors, metadata) }])
  return { sha256: hash.digest('hex'), bytes }
}

/** SHA-256 and size of a file, read in chunks (any size, little memory). */
function hashFile(path: string): FileSum {
  const hash = createHash('sha256'), chunk = Buffer.alloc(16 * 2 ** 20)
  const fd = openSync(path, 'r')
  let bytes = 0
  try {
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, bytes)) > 0; bytes += n) hash.update(chunk.subarray(0, n))
  } finally { closeSync(fd) }
  return { sha256: hash.digest('hex'), bytes }
}

/** What every run's settings satisfied when it saved them (run.ts validates before the first step): state.json's
 *  train settings against its model. A hand-edited or damaged state.json that breaks this is damage, named here,
 *  not a later error blaming flags the user never gave. */
function checkSettingsFit(c: TrainConfig, model: ModelConfig, path: string): void {
  try { validateTrainConfig(c, model) } catch (e) {
    if (!(e instanceof InputError)) throw e
    throw new DamagedCheckpointError(`checkpoint: ${path}: its trainConfig does not fit its modelConfig: ` +
      `${e.message.replace(/^train: /, '')} (damaged checkpoint state)`)
  }
}

/** Reads and verifies a checkpoint; `withOptimizer: false` skips optimizer.safetensors (inference).
 *  Damage (bad state.json, a checksum or tensor mismatch) is a DamagedCheckpointError naming the file. */
export function readCheckpoint(dir: string, opts: { withOptimizer: boolean }): Checkpoint {
  const { state, modelConfig } = readCheckedState(dir)
  const layout = new ParamLayout(modelConfig)
  checkParamsFit(dir, layout.total)
  const params = new Float32Array(layout.total)
  readVerified(dir, MODEL_FILE, state, tensors => placeParams(tensors, layout, params, join(dir, MODEL_FILE)))
  let optimizer: OptimizerState | null = null
  if (opts.withOptimizer) {
    if (state.files[OPTIMIZER_FILE] === undefined || state.optimizerStep === null) {
      throw new InputError(`checkpoint: ${dir} has no optimizer state (cannot resume training from it)`)
    }
    const path = join(dir, OPTIMIZER_FILE)
    const m = new Float32Array(params.length), v = new Float32Array(params.length)
    readVerified(dir, OPTIMIZER_FILE, state, tensors => {
      for (const name of ['m', 'v']) {
        const t = tensors.get(name)
        if (t?.dtype !== 'F32' || t.shape.reduce((a, b) => a * b, 1) !== params.length) {
          throw new DamagedCheckpointError(`checkpoint: ${path}: "${name}" must be F32 with ${params.length} values (the model's parameter count)`)
        }
      }
      return new Map([['m', bytesOf(m)], ['v', bytesOf(v)]])
    })
    optimizer = { m, v, step: state.optimizerStep }
  }
  const { step, loader, rng, valLoss, bestValLoss, guard, tokens } = state
  return {
    modelConfig, trainConfig: state.trainConfig, params, optimizer,
    progress: { step, loader, rng, valLoss, bestValLoss, ...(guard !== undefined ? { guard } : {}), ...(tokens !== undefined ? { tokens } : {}) },
  }
}

/** A modelConfig with more F32 parameters than model.safetensors holds bytes / 4 (a damaged state.json: 2^31 hidden
 *  units) is refused before arrays of its size are allocated. */
function checkParamsFit(dir: string, total: number): void {
  const path = join(dir, MODEL_FILE)
  let size: number
  try { size = statSync(path).size } catch (e) { throw unreadableError(path, e) }
  if (4 * total > size) {
    throw new DamagedCheckpointError(`checkpoint: ${join(dir, STATE_FILE)}: its modelConfig has ${total.toLocaleString('en-US')} ` +
      `parameters, more than ${path} can hold (${size.toLocaleString('en-US')} bytes; 4 a parameter) (damaged checkpoint state)`)
  }
}

/** state.json of checkpoint `dir`, checked: its step against the directory's name, its configs valid and agreeing. */
function readCheckedState(dir: string): { state: StateJson; modelConfig: ModelConfig } {
  const state = readStateFile(join(dir, STATE_FILE))
  const named = /^step_(\d+)$/.exec(basename(dir))   // a copy under another step's name: resume and pruning go by the name
  if (named !== null && Number(named[1]) !== state.step) {
    throw new DamagedCheckpointError(
      `checkpoint: ${join(dir, STATE_FILE)} says step ${state.step}, the directory name step ${Number(named[1])}`)
  }
  let modelConfig: ModelConfig
  try { modelConfig = validateConfig({ ...state.modelConfig }, `${join(dir, STATE_FILE)} modelConfig`) } catch (e) {
    throw new DamagedCheckpointError((e as Error).message)
  }
  if (state.trainConfig !== null) checkSettingsFit(state.trainConfig, modelConfig, join(dir, STATE_FILE))
  return { state, modelConfig }
}

/** What a checkpoint is, without reading its weights (`llmts model`): state.json checked as readCheckpoint checks it,
 *  model.safetensors's header against its config and the file's size against state.json's; the checksum, which
 *  needs every byte, is left to the commands that read them. */
export function describeCheckpoint(dir: string): { config: ModelConfig; step: number } {
  const { state, modelConfig } = readCheckedState(dir)
  const path = join(dir, MODEL_FILE), want = state.files[MODEL_FILE]
  if (want === undefined) throw new DamagedCheckpointError(`checkpoint: ${join(dir, STATE_FILE)} lists no checksum for ${MODEL_FILE}`)
  const { tensors } = readSafetensorsHeader(path)   // its problems (unreadable, a bad header) are InputErrors naming it
  const bytes = statSync(path).size
  if (bytes !== want.bytes) {
    throw new DamagedCheckpointError(`checkpoint: ${path} is ${bytes} bytes, state.json expects ${want.bytes} (truncated or replaced)`)
  }
  placeParams(tensors, new ParamLayout(modelConfig), null, path)
  return { config: modelConfig, step: state.step }
}

/** Where each tensor of model.safetensors goes in `params` (flat, layout.total): every tensor's presence, dtype and
 *  shape checked first, and no tensor the layout does not have (params null: only checked). */
function placeParams(tensors: Map<string, TensorInfo>, layout: ParamLayout, params: Float32Array | null, path: string): Map<string, Uint8Array> {
  for (const s of layout.specs) {
    const t = tensors.get(s.name)
    if (t === undefined) throw new DamagedCheckpointError(`checkpoint: ${path} has no tensor ${s.name}`)
    if (t.dtype !== 'F32' || t.shape.join(',') !== s.shape.join(',')) {
      throw new DamagedCheckpointError(`checkpoint: ${path}: ${s.name} is ${t.dtype} [${t.shape}], the config needs F32 [${s.shape}]`)
    }
  }
  const known = new Set(layout.specs.map(s => s.name)), extra = [...tensors.keys()].filter(n => !known.has(n))
  if (extra.length > 0) {   // a state.json whose config describes a smaller model than the weights do
    throw new DamagedCheckpointError(`checkpoint: ${path} has ${extra.length} tensor(s) the config in state.json does not ` +
      `describe (${extra.slice(0, 3).join(', ')}${extra.length > 3 ? ', …' : ''}); state.json and the weights disagree`)
  }
  if (params === null) return new Map()   // only checked
  return new Map(layout.specs.map(s => [s.name, bytesOf(params.subarray(s.offset, s.offset + s.size))]))
}

// the file's little-endian F32 bytes are the array's own on this little-endian host (shards.ts refuses any other)
function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength)
}

/** The step and validation loss recorded in a checkpoint's state.json, or null when it is unreadable. */
export function readStepAndLoss(dir: string): { step: number; valLoss: number | null } | null {
  try { const s = readStateFile(join(dir, STATE_FILE)); return { step: s.step, valLoss: s.valLoss } } catch { return null }
}

/** Reads `file` of checkpoint `dir` into the arrays `place` returns (after checking the header against what they
 *  need), hashing each byte as it goes by: one pass, no copy of the file in memory. A checksum mismatch is the
 *  error whenever there is one, before any problem of the content (a damaged file is best named by its checksum). */
function readVerified(dir: string, file: string, state: StateJson, place: (tensors: Map<string, TensorInfo>) => Map<string, Uint8Array>): void {
  const path = join(dir, file)
  const want = state.files[file]
  if (want === undefined) throw new DamagedCheckpointError(`checkpoint: ${join(dir, STATE_FILE)} lists no checksum for ${file}`)
  const hash = createHash('sha256')
  let bytes = 0
  try {
    readSafetensorsInto(path, place, chunk => { hash.update(chunk); bytes += chunk.byteLength })
  } catch (e) {
    if (typeof (e as NodeJS.ErrnoException).syscall === 'string') throw unreadableError(path, e)
    checkSum(path, want, hashFile(path))
    throw e instanceof DamagedCheckpointError ? e : new DamagedCheckpointError((e as Error).message)
  }
  checkSum(path, want, { sha256: hash.digest('hex'), bytes })
}

function checkSum(path: string, want: FileSum, got: FileSum): void {
  if (got.sha256 !== want.sha256 || got.bytes !== want.bytes) {
    throw new DamagedCheckpointError(`checkpoint: ${path} fails its checksum (${got.bytes} bytes, sha256 ${got.sha256.slice(0, 12)}…; ` +
      `state.json expects ${want.bytes} bytes, ${want.sha256.slice(0, 12)}…) — the file is corrupt or was replaced`)
  }
}

/** Renames a damaged checkpoint to step_N.damaged[-K] (out of listCheckpoints' and pruning's way); the new path. */
export function moveAsideDamaged(dir: string): string {
  let aside = `${dir}.damaged`
  for (let k = 2; existsSync(aside); k++) aside = `${dir}.damaged-${k}`
  renameSync(dir, aside)
  return aside
}

/** The complete step checkpoints of a run, oldest first. */
export function listCheckpoints(runDir: string): { step: number; path: string }[] {
  const dir = join(runDir, 'checkpoints')
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter(n => /^step_\d+$/.test(n) && hasStateFile(join(dir, n)))
    .map(n => ({ step: Number(n.slice(5)), path: join(dir, n) }))
    .sort((a, b) => a.step - b.step)
}

/** step_N directories without a state.json: checkpoints are written whole by a rename, so these are damaged. */
export function listStateless(runDir: string): string[] {
  const dir = join(runDir, 'checkpoints')
  if (!existsSync(dir)) return []
  return readdirSync(dir, { withFileTypes: true })
    .filter(e => e.isDirectory() && /^step_\d+$/.test(e.name) && !hasStateFile(join(dir, e.name)))
    .map(e => join(dir, e.name))
}

/** Whether checkpoint directory `dir` has a state.json; one this user may not look into is an InputError (existsSync
 *  would say no, and --resume would move an intact checkpoint aside as damaged). */
function hasStateFile(dir: string): boolean {
  try { statSync(join(dir, STATE_FILE)); return true } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return false
    throw unreadableError(join(dir, STATE_FILE), e)
  }
}

/** What pruning keeps: the newest `last` step checkpoints (0 keeps all; --keep-checkpoints), not counting those whose
 *  step is a multiple of `every` (--keep-every; 0: none), which are never deleted (llm.c's major checkpoints). */
export interface KeepPolicy { last: number; every: number }

/** Deletes all but the checkpoints `keep` keeps after removing leftovers. A deletion renames the directory to a temp
 *  name first, so a crash midway never leaves a partial step_* behind. It runs after the new checkpoint is durable:
 *  one that cannot be deleted is a warning (`warn`), not a failed run. */
export function pruneCheckpoints(runDir: string, keep: KeepPolicy, warn: Warn): void {
  removeLeftovers(runDir, warn)
  if (keep.last <= 0) return
  const minor = listCheckpoints(runDir).filter(c => keep.every <= 0 || c.step % keep.every !== 0)
  const why = `--keep-checkpoints ${keep.last}${keep.every > 0 ? `, not a multiple of --keep-every ${keep.every}` : ''}`
  for (const c of minor.slice(0, Math.max(0, minor.length - keep.last))) {
    const doomed = asideName(c.path, 'del')
    const what = `the old checkpoint ${c.path} (${why})`
    try { renameSync(c.path, doomed) } catch (e) {   // kept as it is, a checkpoint still
      warnOnce(warn, c.path, `could not delete ${what}: ${failure(e, c.path)}; it is kept, the run goes on`)
      continue
    }
    removeOrWarn(doomed, what, warn)
  }
}

/** Cleans what interrupted writes left in RUN_DIR and RUN_DIR/checkpoints: temp directories and files are
 *  removed (one that cannot be is a warning); a `.X.old-PID` whose X is missing (a crash between swapInto's two
 *  renames) is renamed back to X. */
export function removeLeftovers(runDir: string, warn: Warn): void {
  const clean = (dir: string, re: RegExp): void => {
    if (!existsSync(dir)) return
    for (const n of readdirSync(dir)) {
      const m = re.exec(n)
      if (m === null) continue
      const target = join(dir, m[1]!)
      if (m[2] === 'old' && !existsSync(target)) renameSync(join(dir, n), target)
      else removeOrWarn(join(dir, n), 'a leftover of an interrupted write or deletion', warn)
    }
  }
  clean(runDir, /^\.(best|\.best-committed|log\.jsonl|config\.json)\.(tmp|old|del)-\d+(-\d+)?$/)
  clean(join(runDir, 'checkpoints'), /^\.(step_\d+)\.(tmp|old|del)-\d+(-\d+)?$/)
}

/** RUN_DIR/.best-committed: while best/ holds a step after the newest checkpoint (a validation between checkpoints),
 *  the best as of that checkpoint, which a resume from it must put back (repairBest); absent otherwise. */
export const COMMITTED_BEST = '.best-committed'

/** Makes RUN_DIR/best (or `to`) a copy of checkpoint `src` (hard links when possible), atomically. */
export function saveBest(runDir: string, src: string, opts: { to?: 'best' | typeof COMMITTED_BEST; warn?: Warn } = {}): void {
  writeDirAtomic(join(runDir, opts.to ?? 'best'), tmp => {
    for (const n of readdirSync(src)) {
      try { linkSync(join(src, n), join(tmp, n)) } catch { copyFileSync(join(src, n), join(tmp, n)) }
    }
  }, opts.warn)
}

/** Removes RUN_DIR/best or .best-committed, renamed to a temp name first (as pruning does): never left half-deleted.
 *  Once renamed it is gone for the run, so a deletion that fails then is a warning. */
export function removeRunEntry(runDir: string, name: 'best' | typeof COMMITTED_BEST, warn: Warn): void {
  const dir = join(runDir, name)
  if (!existsSync(dir)) return
  const doomed = asideName(dir, 'del')   // not writeDirAtomic's temp name: a leftover there would fail the next write
  renameSync(dir, doomed)
  removeOrWarn(doomed, dir, warn)
}
