// A checkpoint's state.json: its type and the check that turns any malformed content (bad JSON, a missing or
// mistyped field, a bad checksum entry) into a DamagedCheckpointError naming the file, so --resume can fall
// back to an older checkpoint. Another format or version is a plain InputError (refused, never moved aside).

import { readFileSync } from 'node:fs'
import type { ModelConfig } from '../config.js'
import { fsReason, InputError, shown } from '../util/errors.js'
import type { RngState } from '../util/rng.js'
import { trainConfigFromJson, trainDefaults, type TrainConfig } from './config.js'
import { isGuardState, type GuardState } from './divergence.js'

export const FORMAT = 'llmts-checkpoint'

/** A checkpoint that cannot be trusted: unreadable, malformed, or failing its checksums. */
export class DamagedCheckpointError extends InputError {
  override name = 'DamagedCheckpointError'
}

/** A checkpoint file this user may not read (copied by another user, or a root-owned container's run) is no
 *  damage: --resume must not move it aside and roll back to an older checkpoint. An InputError with the fix; any
 *  other read failure is damage. */
export function unreadableError(path: string, e: unknown, hint = ''): InputError {
  const code = (e as NodeJS.ErrnoException | null)?.code
  if (code === 'EACCES' || code === 'EPERM') {
    return new InputError(`checkpoint: cannot read ${path}: ${fsReason(e)}; the checkpoint is not damaged: give this user ` +
      'read access to it (chmod/chown), then run again')
  }
  return new DamagedCheckpointError(`checkpoint: cannot read ${path}: ${fsReason(e)}${hint}`)
}

/** Everything besides tensors that a bit-exact resume needs. */
export interface TrainProgress {
  step: number               // optimizer steps completed
  loader: unknown            // the train loader's state(), an object (null in checkpoints not made by training)
  rng: RngState              // the trainer's RNG (periodic samples)
  valLoss: number | null     // validation loss measured at this step, if any
  bestValLoss: number | null // lowest validation loss of the run so far
  guard?: GuardState         // spike detectors' windows (absent in checkpoints of older versions)
  tokens?: number            // tokens trained through this step (absent in older versions: step × total batch)
}

export interface StateJson extends TrainProgress {
  format: typeof FORMAT
  version: 1
  modelConfig: ModelConfig
  trainConfig: TrainConfig | null
  optimizerStep: number | null
  files: Record<string, { sha256: string; bytes: number }>
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
const isLoss = (x: unknown): boolean => x === null || (typeof x === 'number' && Number.isFinite(x))

/** Reads and checks `path` (a state.json); the train settings are completed with today's defaults. */
export function readStateFile(path: string): StateJson {
  let text: string
  try { text = readFileSync(path, 'utf8') } catch (e) { throw unreadableError(path, e, ' (not a checkpoint directory?)') }
  let s: unknown
  try { s = JSON.parse(text) } catch {
    throw new DamagedCheckpointError(`checkpoint: ${path} is not valid JSON (damaged checkpoint state)`)
  }
  const bad = (what: string): never => { throw new DamagedCheckpointError(`checkpoint: ${path}: ${what} (damaged checkpoint state)`) }
  if (!isObject(s)) return bad('not a JSON object')
  if (s['format'] === undefined) return bad('no "format" key')   // cut or emptied: fall back like any damage
  if (s['format'] !== FORMAT) throw new InputError(`checkpoint: ${path} is not an llm.ts checkpoint state (format ${shown(s['format'])})`)
  if (s['version'] !== 1) throw new InputError(`checkpoint: ${path} has version ${shown(s['version'])}; this llm.ts reads version 1`)
  if (!isCount(s['step'])) bad('"step" must be a non-negative integer')
  if (!isObject(s['modelConfig'])) bad('"modelConfig" must be an object')
  if (s['loader'] !== null && !isObject(s['loader'])) bad('"loader" must be an object or null')
  const rng = s['rng']
  if (!Array.isArray(rng) || rng.length !== 4 || !rng.every(v => isCount(v) && v <= 0xffffffff)) bad('"rng" must be 4 uint32 words')
  if (!isLoss(s['valLoss']) || !isLoss(s['bestValLoss'])) bad('"valLoss" and "bestValLoss" must be numbers or null')
  if (s['optimizerStep'] !== null && !isCount(s['optimizerStep'])) bad('"optimizerStep" must be a non-negative integer or null')
  if (s['guard'] !== undefined && !isGuardState(s['guard'])) bad('"guard" must hold two arrays of finite numbers')
  if (s['tokens'] !== undefined && !isCount(s['tokens'])) bad('"tokens" must be a non-negative integer')
  const files = s['files']
  if (!isObject(files)) return bad('"files" must be an object')
  for (const [name, f] of Object.entries(files)) {
    if (!isObject(f) || typeof f['sha256'] !== 'string' || !/^[0-9a-f]{64}$/.test(f['sha256']) || !isCount(f['bytes'])) {
      bad(`"files".${shown(name)} must be {"sha256": 64 hex digits, "bytes": a count}`)
    }
  }
  let trainConfig: TrainConfig | null = null
  if (s['trainConfig'] !== null) {
    try {
      trainConfig = { ...trainDefaults, ...trainConfigFromJson(s['trainConfig'], `${path} trainConfig`) }
    } catch (e) { return bad((e as Error).message) }
  }
  return { ...(s as unknown as StateJson), trainConfig }
}
