// Which folder is what: a checkpoint (state.json + model.safetensors), a run (checkpoints/, best/), and the
// checkpoint a command takes from a run (best/, else the newest). Reading and writing them is checkpoint.ts's.

import { existsSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import type { ModelConfig } from '../config.js'
import { InputError } from '../util/errors.js'
import { listCheckpoints, MODEL_FILE, readCheckpoint, STATE_FILE } from './checkpoint.js'

export function isCheckpointDir(path: string): boolean {
  return existsSync(join(path, STATE_FILE)) && existsSync(join(path, MODEL_FILE))
}

export function isRunDir(path: string): boolean {
  return existsSync(join(path, 'checkpoints')) || isCheckpointDir(join(path, 'best'))
}

/** An export (or a download) writes model.safetensors and config.json: into a run or checkpoint directory it would
 *  replace the run's own files (a checkpoint's weights would then fail their checksum). A new folder inside a run
 *  is fine. */
export function refuseTrainingDir(cmd: string, out: string): void {
  const inRun = (basename(out) === 'best' || basename(out) === 'checkpoints') && isRunDir(dirname(out))
  if (isCheckpointDir(out) || isRunDir(out) || inRun || existsSync(join(out, 'log.jsonl')) || existsSync(join(out, 'state.json'))) {
    throw new InputError(`${cmd}: --out ${out} is a training run or checkpoint directory; writing there would overwrite its files ` +
      `(choose a new folder, e.g. ${join(out, 'hf')})`)
  }
}

/** A checkpoint directory from a checkpoint or run directory (a run: best/, else its newest checkpoint). */
export function resolveCheckpointDir(path: string): string {
  if (isCheckpointDir(path)) return path
  const best = join(path, 'best')
  if (isCheckpointDir(best)) return best
  const last = listCheckpoints(path).at(-1)
  if (existsSync(best)) {   // written whole by a rename: a part missing is damage, and the newest is not the best
    const missing = [STATE_FILE, MODEL_FILE].filter(f => !existsSync(join(best, f))).join(' and ')
    throw new InputError(`checkpoint: ${best} has no ${missing} (damaged); give the checkpoint to use` +
      `${last !== undefined ? `, e.g. the newest, ${last.path}` : ''}`)
  }
  if (last !== undefined) return last.path
  const what = existsSync(path) && statSync(path).isDirectory() ? 'has no checkpoint' : 'does not exist'
  throw new InputError(`checkpoint: ${path} ${what} (expected a run directory or RUN_DIR/checkpoints/step_N)`)
}

/** Model config and flat parameters of a run directory or checkpoint (no optimizer state). */
export function loadCheckpointModel(path: string): { config: ModelConfig; params: Float32Array; source: string; step: number } {
  const dir = resolveCheckpointDir(path)
  const ck = readCheckpoint(dir, { withOptimizer: false })
  return { config: ck.modelConfig, params: ck.params, source: dir, step: ck.progress.step }
}
