// Checkpoints: RUN_DIR/checkpoints/step_NNNNNN/ holds model.safetensors (internal parameter names, F32, padded
// vocabulary rows included), optimizer.safetensors (AdamW m and v, flat) and state.json (step, loader and RNG
// state, both configs, a SHA-256 of each tensor file verified on load). A checkpoint is written into a temp
// directory, fsynced and renamed into place, so a directory named step_* is always complete.

import { createHash } from 'node:crypto'
import {
  closeSync, copyFileSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync,
  renameSync, rmSync, statSync,
} from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { validateConfig, type ModelConfig } from '../config.js'
import { parseSafetensors, toFloat32, writeSafetensors, type SafetensorsFile } from '../io/safetensors.js'
import { ParamLayout } from '../model/params.js'
import { writeFileAtomic } from '../util/atomic.js'
import { InputError } from '../util/errors.js'
import type { RngState } from '../util/rng.js'
import type { TrainConfig } from './config.js'

export const MODEL_FILE = 'model.safetensors'
export const OPTIMIZER_FILE = 'optimizer.safetensors'
export const STATE_FILE = 'state.json'
const FORMAT = 'llmts-checkpoint'

export interface OptimizerState { m: Float32Array; v: Float32Array; step: number }

/** Everything besides tensors that a bit-exact resume needs. */
export interface TrainProgress {
  step: number               // optimizer steps completed
  loader: unknown            // the train loader's state()
  rng: RngState              // the trainer's RNG (periodic samples)
  valLoss: number | null     // validation loss measured at this step, if any
  bestValLoss: number | null // lowest validation loss of the run so far
}

export interface Checkpoint {
  modelConfig: ModelConfig
  trainConfig: TrainConfig | null   // null for checkpoints not made by `llmts train`
  params: Float32Array              // (layout.total) flat parameters
  optimizer: OptimizerState | null
  progress: TrainProgress
}

interface StateJson extends TrainProgress {
  format: typeof FORMAT
  version: 1
  modelConfig: ModelConfig
  trainConfig: TrainConfig | null
  optimizerStep: number | null
  files: Record<string, { sha256: string; bytes: number }>
}

export function checkpointName(step: number): string {
  return `step_${String(step).padStart(6, '0')}`
}

/** Writes a checkpoint directory atomically (replacing an existing one of the same name). */
export function writeCheckpoint(dir: string, ck: Checkpoint): void {
  const layout = new ParamLayout(ck.modelConfig)
  if (ck.params.length !== layout.total) throw new Error(`checkpoint: params have ${ck.params.length} floats, layout needs ${layout.total}`)
  mkdirSync(dirname(dir), { recursive: true })
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`)
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp)
  try {
    writeSafetensors(join(tmp, MODEL_FILE), layout.specs.map(s => ({
      name: s.name, dtype: 'F32' as const, shape: s.shape, data: ck.params.subarray(s.offset, s.offset + s.size),
    })), { format: FORMAT, config: JSON.stringify(ck.modelConfig) })
    const files: StateJson['files'] = { [MODEL_FILE]: hashFile(join(tmp, MODEL_FILE)) }
    if (ck.optimizer !== null) {
      writeSafetensors(join(tmp, OPTIMIZER_FILE), [
        { name: 'm', dtype: 'F32', shape: [layout.total], data: ck.optimizer.m },
        { name: 'v', dtype: 'F32', shape: [layout.total], data: ck.optimizer.v },
      ], { format: FORMAT })
      files[OPTIMIZER_FILE] = hashFile(join(tmp, OPTIMIZER_FILE))
    }
    const state: StateJson = {
      format: FORMAT, version: 1, ...ck.progress, modelConfig: ck.modelConfig, trainConfig: ck.trainConfig,
      optimizerStep: ck.optimizer?.step ?? null, files,
    }
    writeFileAtomic(join(tmp, STATE_FILE), JSON.stringify(state, null, 2) + '\n')
    swapInto(tmp, dir)
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true })
    throw e
  }
}

/** Renames the finished directory `tmp` to `dir` (moving an old `dir` aside first) and fsyncs the parent. */
function swapInto(tmp: string, dir: string): void {
  fsyncPath(tmp)
  const old = join(dirname(dir), `.${basename(dir)}.old-${process.pid}`)
  const hadOld = existsSync(dir)
  if (hadOld) renameSync(dir, old)
  renameSync(tmp, dir)
  fsyncPath(dirname(dir))
  if (hadOld) rmSync(old, { recursive: true, force: true })
}

function fsyncPath(path: string): void {
  try {
    const fd = openSync(path, 'r')
    try { fsyncSync(fd) } finally { closeSync(fd) }
  } catch { /* some filesystems refuse fsync on directories; rename is still atomic */ }
}

function hashFile(path: string): { sha256: string; bytes: number } {
  const buf = readFileSync(path)
  return { sha256: createHash('sha256').update(buf).digest('hex'), bytes: buf.byteLength }
}

/** Reads and verifies a checkpoint; `withOptimizer: false` skips optimizer.safetensors (inference). */
export function readCheckpoint(dir: string, opts: { withOptimizer: boolean }): Checkpoint {
  const state = readState(dir)
  const modelConfig = validateConfig(state.modelConfig, `${join(dir, STATE_FILE)} modelConfig`)
  const layout = new ParamLayout(modelConfig)
  const model = readVerified(dir, MODEL_FILE, state)
  const params = new Float32Array(layout.total)
  for (const s of layout.specs) {
    const t = model.tensors.get(s.name)
    if (t === undefined) throw new InputError(`checkpoint: ${model.path} has no tensor ${s.name}`)
    if (t.shape.join(',') !== s.shape.join(',')) {
      throw new InputError(`checkpoint: ${model.path}: ${s.name} has shape [${t.shape}], the config needs [${s.shape}]`)
    }
    params.set(toFloat32(model, s.name), s.offset)
  }
  let optimizer: OptimizerState | null = null
  if (opts.withOptimizer) {
    if (state.files[OPTIMIZER_FILE] === undefined || state.optimizerStep === null) {
      throw new InputError(`checkpoint: ${dir} has no optimizer state (cannot resume training from it)`)
    }
    const f = readVerified(dir, OPTIMIZER_FILE, state)
    const m = toFloat32(f, 'm'), v = toFloat32(f, 'v')
    if (m.length !== layout.total || v.length !== layout.total) {
      throw new InputError(`checkpoint: ${f.path}: m/v have ${m.length}/${v.length} floats, the config needs ${layout.total}`)
    }
    optimizer = { m, v, step: state.optimizerStep }
  }
  const { step, loader, rng, valLoss, bestValLoss } = state
  return { modelConfig, trainConfig: state.trainConfig, params, optimizer, progress: { step, loader, rng, valLoss, bestValLoss } }
}

/** The training settings recorded in a checkpoint's state.json (no tensor file is read). */
export function readCheckpointTrainConfig(dir: string): TrainConfig | null {
  return readState(dir).trainConfig
}

function readState(dir: string): StateJson {
  const path = join(dir, STATE_FILE)
  let state: StateJson
  try { state = JSON.parse(readFileSync(path, 'utf8')) as StateJson } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new InputError(`checkpoint: cannot read ${path}: ${code ?? 'invalid JSON'} (not a checkpoint directory?)`)
  }
  if (state.format !== FORMAT || typeof state.step !== 'number' || typeof state.files !== 'object') {
    throw new InputError(`checkpoint: ${path} is not an llm.ts checkpoint state (format ${JSON.stringify(state.format)})`)
  }
  return state
}

function readVerified(dir: string, file: string, state: StateJson): SafetensorsFile {
  const path = join(dir, file)
  const want = state.files[file]
  if (want === undefined) throw new InputError(`checkpoint: ${join(dir, STATE_FILE)} lists no checksum for ${file}`)
  let buf: Buffer
  try { buf = readFileSync(path) } catch (e) {
    throw new InputError(`checkpoint: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)
  }
  const got = createHash('sha256').update(buf).digest('hex')
  if (got !== want.sha256 || buf.byteLength !== want.bytes) {
    throw new InputError(`checkpoint: ${path} fails its checksum (${buf.byteLength} bytes, sha256 ${got.slice(0, 12)}…; ` +
      `state.json expects ${want.bytes} bytes, ${want.sha256.slice(0, 12)}…) — the file is corrupt or was replaced`)
  }
  return parseSafetensors(buf, path)
}

/** The complete step checkpoints of a run, oldest first. */
export function listCheckpoints(runDir: string): { step: number; path: string }[] {
  const dir = join(runDir, 'checkpoints')
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter(n => /^step_\d+$/.test(n) && existsSync(join(dir, n, STATE_FILE)))
    .map(n => ({ step: Number(n.slice(5)), path: join(dir, n) }))
    .sort((a, b) => a.step - b.step)
}

/** Deletes all but the newest `keep` step checkpoints (keep 0 keeps all) and leftovers of interrupted writes. */
export function pruneCheckpoints(runDir: string, keep: number): void {
  const dir = join(runDir, 'checkpoints')
  for (const n of existsSync(runDir) ? readdirSync(runDir) : []) {
    if (/^\.best\.(tmp|old)-\d+$/.test(n)) rmSync(join(runDir, n), { recursive: true, force: true })
  }
  if (!existsSync(dir)) return
  for (const n of readdirSync(dir)) {
    if (/^\.step_\d+\.(tmp|old)-\d+$/.test(n)) rmSync(join(dir, n), { recursive: true, force: true })
  }
  if (keep <= 0) return
  const all = listCheckpoints(runDir)
  for (const c of all.slice(0, Math.max(0, all.length - keep))) rmSync(c.path, { recursive: true, force: true })
}

/** Makes RUN_DIR/best a copy of checkpoint `src` (hard links when possible), atomically. */
export function saveBest(runDir: string, src: string): void {
  const dir = join(runDir, 'best')
  const tmp = join(runDir, `.best.tmp-${process.pid}`)
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp)
  for (const n of readdirSync(src)) {
    try { linkSync(join(src, n), join(tmp, n)) } catch { copyFileSync(join(src, n), join(tmp, n)) }
  }
  swapInto(tmp, dir)
}

export function isCheckpointDir(path: string): boolean {
  return existsSync(join(path, STATE_FILE)) && existsSync(join(path, MODEL_FILE))
}

export function isRunDir(path: string): boolean {
  return existsSync(join(path, 'checkpoints')) || isCheckpointDir(join(path, 'best'))
}

/** A checkpoint directory from a checkpoint or run directory (a run: best/, else its newest checkpoint). */
export function resolveCheckpointDir(path: string): string {
  if (isCheckpointDir(path)) return path
  if (isCheckpointDir(join(path, 'best'))) return join(path, 'best')
  const last = listCheckpoints(path).at(-1)
  if (last !== undefined) return last.path
  const what = existsSync(path) && statSync(path).isDirectory() ? 'has no checkpoint' : 'does not exist'
  throw new InputError(`checkpoint: ${path} ${what} (expected a run directory or RUN_DIR/checkpoints/step_N)`)
}

/** Model config and flat parameters of a run directory or checkpoint (no optimizer state). */
export function loadCheckpointModel(path: string): { config: ModelConfig; params: Float32Array; source: string } {
  const dir = resolveCheckpointDir(path)
  const ck = readCheckpoint(dir, { withOptimizer: false })
  return { config: ck.modelConfig, params: ck.params, source: dir }
}
