// Resolves what `--model` / `--init-from` name into a config and (maybe) weights: a preset, a config JSON file, a
// Hugging Face directory, or a training run / checkpoint directory. Every command that takes a model calls
// resolveModel, so the accepted forms and their errors are the same everywhere. Presets and config files carry no
// weights: the caller initializes them from a seed.

import { readdirSync, readFileSync, statSync, type Stats } from 'node:fs'
import { totalmem } from 'node:os'
import { join } from 'node:path'
import type { Backend } from '../backend/backend.js'
import { configFromJson, GPT2_VOCAB, presetConfig, presets, type ModelConfig } from '../config.js'
import { configFromHfJson } from '../io/hf-config.js'
import { readHfTokenizer, type HfTokenizer } from '../io/hf-tokenizer-check.js'
import { checkHfDir, DOWNLOAD_STAGING, loadHfDir, readHfConfig } from '../io/hf.js'
// the one place model/ depends on train/: the checkpoint format belongs with the trainer that writes it, and every
// command resolves --model here
import { describeCheckpoint } from '../train/checkpoint.js'
import { isCheckpointDir, isRunDir, loadCheckpointModel, resolveCheckpointDir } from '../train/checkpoint-dirs.js'
import { GPT } from './gpt.js'
import { ParamLayout } from './params.js'
import { InputError, shown } from '../util/errors.js'
import { refuseDuplicateKey } from '../util/json.js'

export interface ResolvedModel {
  config: ModelConfig
  params?: Float32Array   // (layout.total) flat; absent for presets and config files (initialize from a seed)
  source: string          // what was loaded, for logs: "preset tiny-gpt2", "checkpoint DIR", "Hugging Face directory DIR", ...
  path: string            // the same as a --model value (a preset's name, a file or directory; a run's checkpoint), for JSON
  tokenizer: HfTokenizer | null   // what a Hugging Face directory's tokenizer files say; null: none (our forms hold
                                  // GPT-2 ids), and the vocabulary size decides
  hfDir?: true                    // a Hugging Face directory: `tokenizer` is what its files say (null: it has none)
}

interface ResolveOptions {
  /** A Hugging Face, run or checkpoint directory whose weights (and architecture) replace those of the model spec. */
  initFrom?: string
  /** Called with the model before its weights are read (a Hugging Face directory's: from config.json and its
   *  tokenizer files), and again with the result: a refusal here costs no weight loading. */
  check?: (m: ModelInfo) => void
  /** 'header': the weights are not read, only their files' headers checked against the config (and a checkpoint's
   *  file size against state.json): a description (`llmts model`) without the cost of the weights. Default 'read'. */
  weights?: 'read' | 'header'
}

type ModelInfo = Pick<ResolvedModel, 'config' | 'source' | 'tokenizer'>

/**
 * `spec`: a preset name, a config JSON file (ours, or a Hugging Face config.json), a Hugging Face
 * directory (config.json + model.safetensors), or a run / checkpoint directory (state.json).
 * With opts.initFrom the weights come from that Hugging Face, run or checkpoint directory; a spec given beside it
 * must describe the same architecture (differences are listed in the error) and carry no weights of its own.
 */
export function resolveModel(spec: string | undefined, opts: ResolveOptions = {}): ResolvedModel {
  const m = resolveBoth(spec, opts)
  opts.check?.(m)
  return m
}

function resolveBoth(spec: string | undefined, opts: ResolveOptions): ResolvedModel {
  const base = spec === undefined ? undefined : resolveSpec(spec, opts)
  if (opts.initFrom === undefined) {
    if (base === undefined) throw new InputError('model: no model given (pass --model PRESET|FILE|DIR or --init-from DIR)')
    return base
  }
  const loaded = resolveWeightsDir(opts.initFrom, opts)
  if (base === undefined) return loaded
  if (base.params !== undefined) {
    throw new InputError(`model: --init-from ${opts.initFrom} would replace the weights of ${base.source}; ` +
      `give a preset or config file with --init-from, or drop one of the two`)
  }
  const diffs = diffConfigs(base.config, loaded.config)
  if (diffs.length > 0) {
    throw new InputError(`model: ${base.source} and --init-from ${opts.initFrom} differ: ${diffs.join(', ')} ` +
      `(drop --model to use the directory's config)`)
  }
  return loaded
}

/** What --init-from names: a run (its best or newest checkpoint), a checkpoint or a Hugging Face directory. */
function resolveWeightsDir(dir: string, opts: ResolveOptions): ResolvedModel {
  return isCheckpointDir(dir) || isRunDir(dir) ? checkpointModel(dir, opts) : hfDirModel(dir, opts)
}

// one builder per directory form, shared by --model and --init-from: the same directory gets the same label either way
function checkpointModel(path: string, opts: ResolveOptions): ResolvedModel {
  // the step says which one a run directory chose: best/ is often not the last step
  const { step, ...ck } = opts.weights === 'header'
    ? (dir => ({ ...describeCheckpoint(dir), source: dir }))(resolveCheckpointDir(path))
    : loadCheckpointModel(path)
  return { ...ck, source: `checkpoint ${ck.source} (step ${step})`, path: ck.source, tokenizer: null }
}

function hfDirModel(dir: string, opts: ResolveOptions): ResolvedModel {
  const source = `Hugging Face directory ${dir}`
  const load = (read: { config?: ModelConfig }): { config: ModelConfig; params?: Float32Array } =>
    opts.weights === 'header' ? { config: checkHfDir(dir, read).config } : loadHfDir(dir, read)
  if (!statOrNull(dir)?.isDirectory()) return { ...load({}), source, path: dir, tokenizer: null }   // which refuses it
  const { config } = readHfConfig(dir)   // read once: the tokenizer check and the loader see the same file
  const tokenizer = readHfTokenizer(dir, config.vocabSize)
  opts.check?.({ config, source, tokenizer })
  return { ...load({ config }), source, path: dir, tokenizer, hfDir: true }
}

/** Uploads the resolved weights into `model` and drops the resolved array: the model holds its own copy, and a command
 *  that keeps `m` for its labels would otherwise hold the weights twice while it runs (475 MiB at gpt2-124m). False
 *  when `m` has no weights (a preset or config file: the caller initializes them). */
export function moveWeightsInto(model: { setParams(flat: Float32Array): void }, m: ResolvedModel): boolean {
  if (m.params === undefined) return false
  model.setParams(m.params)
  delete m.params
  return true
}

/** Refuses a model whose token ids are not GPT-2's, for a command that turns text into ids or ids into text with
 *  GPT-2's BPE (`needs`: what of it does, e.g. "text prompts"). */
export function requireGpt2Tokenizer(cmd: string, m: ModelInfo, needs: string): void {
  if (m.tokenizer !== null && !m.tokenizer.gpt2) {
    throw new InputError(`${cmd}: ${m.source} has a tokenizer other than GPT-2's (${m.tokenizer.what}); ` +
      `llm.ts tokenizes with GPT-2's BPE only, and this model's token ids mean other text`)
  }
  if (m.config.vocabSize !== GPT2_VOCAB) {
    throw new InputError(`${cmd}: ${m.source} has a ${m.config.vocabSize}-token vocabulary; ${needs} need GPT-2's ${GPT2_VOCAB}`)
  }
}

/** For commands that read token shards (GPT-2 ids): a note when the model's tokenizer is another, else null.
 *  Whether its vocabulary holds the shards' ids the loader checks, shard by shard. */
export function tokenizerNote(cmd: string, m: Pick<ResolvedModel, 'source' | 'tokenizer'>): string | null {
  if (m.tokenizer === null || m.tokenizer.gpt2) return null
  return `${cmd}: note: ${m.source} has a tokenizer other than GPT-2's (${m.tokenizer.what}); the shards hold GPT-2 ids ` +
    '(llmts prepare), which are not the tokens this model was trained on'
}

function resolveSpec(spec: string, opts: ResolveOptions): ResolvedModel {
  if (Object.hasOwn(presets, spec)) return { config: presetConfig(spec), source: `preset ${spec}`, path: spec, tokenizer: null }
  let st: Stats
  try { st = statSync(spec) } catch {
    throw new InputError(`model: "${spec}" is neither a preset (${Object.keys(presets).join(', ')}) nor an existing file or directory`)
  }
  if (st.isDirectory()) {
    // training output: a run directory (its best or newest checkpoint) or one checkpoint directory
    if (isCheckpointDir(spec) || isRunDir(spec)) return checkpointModel(spec, opts)
    if (statOrNull(join(spec, 'state.json')) !== null) {
      throw new InputError(`model: ${spec} has a state.json but no model.safetensors ` +
        `(an incomplete or damaged checkpoint; another checkpoint of its run?)`)
    }
    if (statOrNull(join(spec, 'config.json'))?.isFile()) {
      return hfDirModel(spec, opts)
    }
    if (statOrNull(join(spec, DOWNLOAD_STAGING)) !== null) {
      throw new InputError(`model: ${spec} is an unfinished llmts download (its config.json comes last, after the weights): ` +
        'run the same llmts download again to finish it')
    }
    const shards = readdirSync(spec).some(f => f.endsWith('.bin')) ? '; it holds token shards (*.bin): those go in --data' : ''
    throw new InputError(`model: directory ${spec} is neither a run directory (checkpoints/, best/), a checkpoint (state.json) ` +
      `nor a Hugging Face directory (config.json)${shards}`)
  }
  if (/\.(safetensors|bin|pt|pth|ckpt)$/i.test(spec)) {
    throw new InputError(`model: ${spec} is a weights or data file, not a config; ` +
      `give the directory that holds the weights (a checkpoint, run or Hugging Face directory)`)
  }
  return { config: readConfigFile(spec), source: `config file ${spec}`, path: spec, tokenizer: null }
}

/** A config JSON file: a Hugging Face config.json (has model_type or architectures) or our ModelConfig keys. */
function readConfigFile(path: string): ModelConfig {
  let obj: unknown, text = ''
  try { text = readFileSync(path, 'utf8'); obj = JSON.parse(text) } catch (e) {
    // JSON.parse quotes the start of the text: a binary file's bytes would reach the terminal
    const why = (e as Error).message.replace(/[^\x20-\x7e]/g, '?')
    throw new InputError(`model: ${path} is not a JSON config file: ${why}`)
  }
  refuseDuplicateKey(text, `model: ${path}`)
  const o = obj as Record<string, unknown> | null
  if (typeof o === 'object' && o !== null && ('model_type' in o || 'architectures' in o)) return configFromHfJson(o, path).config
  return checkParameterClaim(configFromJson(obj, path), o as Record<string, unknown>, path)
}

/** A `llmts model --json` entry saved as a config says its size in "parameters": an edited file must not claim
 *  a size its settings do not make (the count excludes padded vocabulary rows, as `llmts model` does). */
function checkParameterClaim(config: ModelConfig, o: Record<string, unknown>, path: string): ModelConfig {
  const claim = o['parameters']
  if (claim === undefined) return config
  const count = new ParamLayout(config).countReal()
  if (claim !== count) {
    throw new InputError(`config: ${path} says "parameters": ${shown(claim)}, but its settings make a model of ` +
      `${count} parameters (correct "parameters" or delete it)`)
  }
  return config
}

function statOrNull(path: string): Stats | null {
  try { return statSync(path) } catch { return null }
}

/** "key a vs b" for every field where two configs differ. */
export function diffConfigs(a: ModelConfig, b: ModelConfig): string[] {
  const keys = Object.keys(a) as (keyof ModelConfig)[]
  return keys.filter(k => a[k] !== b[k]).map(k => `${k} ${a[k]} vs ${b[k]}`)
}

/** Largest parameter count the flat float32 buffers hold (a typed array's length limit). */
export const MAX_PARAMS = 2 ** 32 - 1

/** Refuses, before any allocation, a model this machine cannot hold: `bytesPerParam` bytes for each parameter
 *  (4 for the weights alone) beyond its memory, or more parameters than one float32 buffer holds. */
export function checkModelFits(cmd: string, config: ModelConfig, bytesPerParam: number, what: string): void {
  const total = new ParamLayout(config).total, need = total * bytesPerParam
  const count = `the model has ${total.toLocaleString('en-US')} parameters`
  if (need > totalmem()) {
    throw new InputError(`${cmd}: ${count} and needs at least ${(need / 2 ** 30).toFixed(1)} GiB for ${what}; ` +
      `this machine has ${(totalmem() / 2 ** 30).toFixed(1)} GiB (a smaller --model?)`)
  }
  if (total > MAX_PARAMS) throw new InputError(`${cmd}: ${count}, more than the ${MAX_PARAMS.toLocaleString('en-US')} llm.ts holds ` +
    `(a smaller --model?)`)
}

/** A GPT that only decodes (`sample`, `eval hellaswag`): a key/value cache or pool has buffers of its own, so the
 *  forward's are sized for one row. Sized for the prompt, they were one layer's activations and a logits chunk that
 *  nothing read: device memory on CUDA (gpt2-350m, 1,024 rows: 0.09 GiB). */
export function decodingModel(backend: Backend, config: ModelConfig): GPT {
  return new GPT(backend, config, { maxBatch: 1, maxSeqLen: 1, mode: 'inference' })
}
