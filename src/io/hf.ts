// Hugging Face directories: import (config.json + model.safetensors, or a sharded index) into our flat
// parameter buffer, and export to what transformers' from_pretrained loads with no custom code.
// Every tensor mapping comes from the `hf` pieces of the parameter table (src/model/params.ts): a fused
// tensor is split by rows, GPT-2 Conv1D weights are stored transposed (in, out). Only real vocabulary rows
// cross the boundary; padded rows are zero on import.

import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { GPT2_VOCAB, type ModelConfig } from '../config.js'
import { ParamLayout, type HfFamily, type HfPiece, type ParamSpec } from '../model/params.js'
import { makeDirs, removeDeadTemps, writeFilesAtomic, type AtomicWriter } from '../util/atomic.js'
import { fsReason, InputError, shown } from '../util/errors.js'
import { configFromHfJson, hfConfigJson, hfGenerationConfigJson, requireHfFamily, type HfDtype } from './hf-config.js'
import { gpt2TokenizerFiles } from './hf-tokenizer.js'
import { floatToBf16, readSafetensors, toFloat32, writeSafetensorsTo, type SafetensorsFile, type WriteTensor } from './safetensors.js'

export type { HfDtype } from './hf-config.js'

/** Tensors transformers keeps in checkpoints that carry no weights (causal-mask and RoPE buffers). */
const IGNORED = /(^|\.)(attn\.bias|attn\.masked_bias|rotary_emb\.inv_freq)$/

/** The folder in a directory `llmts download` fills where config.json waits for the weights: present only while
 *  the download is unfinished (src/io/hf-download.ts). */
export const DOWNLOAD_STAGING = '.llmts-download'

/** Reads and maps dir/config.json (no weights). */
export function readHfConfig(dir: string): { config: ModelConfig; family: HfFamily } {
  const path = join(dir, 'config.json')
  let text: string
  try { text = readFileSync(path, 'utf8') } catch (e) {
    throw new InputError(`hf: cannot read ${path}: ${fsReason(e)} (expected a Hugging Face model directory)`)
  }
  let obj: unknown
  try { obj = JSON.parse(text) } catch (e) { throw new InputError(`hf: ${path} is not valid JSON: ${(e as Error).message}`) }
  return configFromHfJson(obj, path)
}

/** Opens model.safetensors, or every shard named by model.safetensors.index.json; name -> file. */
function openWeights(dir: string): Map<string, SafetensorsFile> {
  const single = join(dir, 'model.safetensors')
  const index = join(dir, 'model.safetensors.index.json')
  const byName = new Map<string, SafetensorsFile>()
  if (existsSync(single)) {
    const f = readSafetensors(single)
    for (const name of f.tensors.keys()) byName.set(name, f)
    return byName
  }
  // a .part file is what an interrupted `llmts download` leaves; pytorch_model.bin is what older repositories hold
  const unfinished = ' (its weights are an unfinished download, a .part file: run the same llmts download again to finish it)'
  if (!existsSync(index)) {
    const hint = existsSync(`${single}.part`) || existsSync(`${index}.part`) ? unfinished
      : existsSync(join(dir, 'pytorch_model.bin')) ? ' (pytorch_model.bin is not read: convert it to safetensors)' : ''
    throw new InputError(`hf: ${dir} has neither model.safetensors nor model.safetensors.index.json${hint}`)
  }
  const shards = new Map<string, SafetensorsFile>()
  for (const [name, file] of Object.entries(readWeightMap(index))) {
    let shard = shards.get(file)
    if (shard === undefined) {
      const path = join(dir, file)
      if (!existsSync(path) && existsSync(`${path}.part`)) throw new InputError(`hf: ${index} names ${file}, which is missing${unfinished}`)
      shard = readSafetensors(path)
      shards.set(file, shard)
    }
    if (!shard.tensors.has(name)) throw new InputError(`hf: ${index} puts ${name} in ${file}, which has no such tensor`)
    byName.set(name, shard)
  }
  return byName
}

/** model.safetensors.index.json's weight_map: tensor name -> shard file name (checked: a plain file name). */
export function readWeightMap(index: string): Record<string, string> {
  let obj: unknown
  try { obj = JSON.parse(readFileSync(index, 'utf8')) } catch (e) {
    throw new InputError(`hf: ${index} is not valid JSON: ${(e as Error).message}`)
  }
  // valid JSON of another shape (null, an array) has no weight_map either: not a TypeError called invalid JSON
  const isObject = (v: unknown): v is object => typeof v === 'object' && v !== null && !Array.isArray(v)
  const map = isObject(obj) ? (obj as { weight_map?: unknown }).weight_map : undefined
  if (!isObject(map)) throw new InputError(`hf: ${index} has no "weight_map" object (tensor name -> shard file), got ${shown(map)}`)
  for (const [name, file] of Object.entries(map as Record<string, unknown>)) {
    // a plain name in the same folder: no path (nothing read or downloaded outside it), not '.', '..' or ''
    if (typeof file !== 'string' || /[/\\]/.test(file) || ['', '.', '..'].includes(file)) throw new InputError(
      `hf: ${index}: bad shard file name for ${name}: ${shown(file)} (expected a file name beside the index)`)
  }
  return map as Record<string, string>
}

/** The shape a piece has in the HF file: (rows, cols), (cols, rows) for Conv1D, (rows) for vectors. */
function hfShape(spec: ParamSpec, piece: HfPiece): number[] {
  if (spec.shape.length === 1) return [piece.rows]
  const cols = spec.shape[1]!
  return piece.transpose ? [cols, piece.rows] : [piece.rows, cols]
}

/** Looks a tensor up by its full name, or without the base-model prefix (GPT2Model / LlamaModel saves). */
function lookupName(files: Map<string, SafetensorsFile>, name: string): string | undefined {
  if (files.has(name)) return name
  const bare = name.replace(/^(transformer|model)\./, '')
  return bare !== name && files.has(bare) ? bare : undefined
}

/**
 * Imports a Hugging Face directory: config.json mapped to a ModelConfig and the weights as one flat
 * float32 buffer in our layout (layout.total floats, padded vocabulary rows zero).
 * Missing, unexpected or mismatched tensors -> one InputError naming each (up to 5) with both shapes; a NaN or
 * infinite weight -> one naming the tensor and index.
 */
export function loadHfDir(dir: string): { config: ModelConfig; params: Float32Array } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError(`hf: ${dir} is not a directory`)
  const { config } = readHfConfig(dir)
  const layout = new ParamLayout(config)
  const files = openWeights(dir)
  // every name and shape is checked before the buffer is allocated: config.json's sizes are only trusted once the
  // tensors agree with them (a corrupt size would otherwise ask for a buffer of any length)
  const found: { spec: ParamSpec; piece: HfPiece; name: string }[] = []
  const problems: string[] = [], mismatched: string[] = []
  for (const spec of layout.specs) {
    for (const piece of spec.hf) {
      const want = hfShape(spec, piece)
      const name = lookupName(files, piece.name)
      if (name === undefined) { problems.push(`missing tensor ${piece.name} (expected shape [${want}])`); continue }
      const shape = files.get(name)!.tensors.get(name)!.shape
      if (shape.join(',') !== want.join(',')) {
        problems.push(`tensor ${name} has shape [${shape}], config.json implies [${want}]`)
        mismatched.push(name)
      } else found.push({ spec, piece, name })
    }
  }
  // a tensor whose shape is wrong is named once, as mismatched, not again as unexpected
  const used = new Set([...found.map(f => f.name), ...mismatched])
  for (const name of files.keys()) {
    if (used.has(name) || IGNORED.test(name)) continue
    // tied checkpoints sometimes also store the output layer; transformers ties it, and so do we
    if (config.tiedEmbeddings && name === 'lm_head.weight') continue
    problems.push(`unexpected tensor ${name} with shape [${files.get(name)!.tensors.get(name)!.shape}]`)
  }
  refuse(dir, problems)
  const params = new Float32Array(layout.total)
  for (const { spec, piece, name } of found) {
    const values = toFloat32(files.get(name)!, name)
    const bad = firstNonFinite(values)
    if (bad >= 0) problems.push(`tensor ${name} holds ${values[bad]} at index ${bad} (weights must be finite)`)
    else copyPieceIn(params, spec, piece, values)
  }
  refuse(dir, problems)
  return { config, params }
}

function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return i
  return -1
}

/** One InputError naming up to 5 of `problems` (none: nothing thrown). */
function refuse(dir: string, problems: string[]): void {
  if (problems.length === 0) return
  const more = problems.length > 5 ? `; and ${problems.length - 5} more` : ''
  throw new InputError(`hf: ${dir}: ${problems.slice(0, 5).join('; ')}${more}`)
}

// params: the flat buffer   src: the HF tensor, (rows, cols) or (cols, rows) when piece.transpose
function copyPieceIn(params: Float32Array, spec: ParamSpec, piece: HfPiece, src: Float32Array): void {
  const cols = spec.shape.length === 1 ? 1 : spec.shape[1]!
  const base = spec.offset + piece.rowStart * cols
  if (!piece.transpose) { params.set(src, base); return }
  for (let c = 0; c < cols; c++) {
    for (let r = 0; r < piece.rows; r++) params[base + r * cols + c] = src[c * piece.rows + r]!
  }
}

// returns the HF tensor of a piece: (rows, cols), a view of params, or (cols, rows) when piece.transpose, a copy
function copyPieceOut(params: Float32Array, spec: ParamSpec, piece: HfPiece): Float32Array {
  const cols = spec.shape.length === 1 ? 1 : spec.shape[1]!
  const base = spec.offset + piece.rowStart * cols
  const rowsView = params.subarray(base, base + piece.rows * cols)
  if (!piece.transpose) return rowsView   // only read, by the writer
  const out = new Float32Array(piece.rows * cols)
  for (let r = 0; r < piece.rows; r++) {
    for (let c = 0; c < cols; c++) out[c * piece.rows + r] = rowsView[r * cols + c]!
  }
  return out
}

/** The HF tensors of a flat parameter buffer, in table order, as float32; each made when `data` is called (the
 *  writer calls it as it reaches the tensor, so an export holds one converted tensor at a time). */
function hfTensors(config: ModelConfig, params: Float32Array): { name: string; shape: number[]; data: () => Float32Array }[] {
  requireHfFamily(config)
  const layout = new ParamLayout(config)
  if (params.length !== layout.total) throw new Error(`hf: parameter buffer has ${params.length} floats, the layout needs ${layout.total}`)
  const out: { name: string; shape: number[]; data: () => Float32Array }[] = []
  for (const spec of layout.specs) {
    for (const piece of spec.hf) out.push({ name: piece.name, shape: hfShape(spec, piece), data: () => copyPieceOut(params, spec, piece) })
  }
  return out
}

interface ExportOptions {
  dtype: HfDtype
  tokenizer?: 'gpt2' | 'none'   // GPT-2 tokenizer files (default); 'none' for tiny test vocabularies
}

/** Refuses a model whose vocabulary the GPT-2 tokenizer files (50257 tokens) do not fit. */
export function requireGpt2Vocab(config: ModelConfig): void {
  if (config.vocabSize < GPT2_VOCAB) {
    throw new InputError(`hf: vocabulary of ${config.vocabSize} tokens is smaller than GPT-2's ${GPT2_VOCAB}, ` +
      `so the GPT-2 tokenizer files would not fit it`)
  }
}

/**
 * Writes a directory transformers loads with AutoModelForCausalLM / AutoTokenizer.from_pretrained:
 * config.json, generation_config.json, model.safetensors and the GPT-2 tokenizer files, each atomically.
 * params: flat, layout.total floats. Returns the names of the files written.
 */
export function exportHf(dir: string, config: ModelConfig, params: Float32Array, opts: ExportOptions): string[] {
  const withTokenizer = (opts.tokenizer ?? 'gpt2') === 'gpt2'
  if (withTokenizer) requireGpt2Vocab(config)
  const tensors: WriteTensor[] = hfTensors(config, params).map(t => ({
    name: t.name, shape: t.shape,
    dtype: opts.dtype === 'bf16' ? 'BF16' : 'F32',
    data: opts.dtype === 'bf16' ? () => floatToBf16(t.data()) : t.data,
  }))
  const files: Record<string, string> = {
    'config.json': JSON.stringify(hfConfigJson(config, opts.dtype), null, 2) + '\n',
    'generation_config.json': JSON.stringify(hfGenerationConfigJson(), null, 2) + '\n',
    ...(withTokenizer ? gpt2TokenizerFiles({ modelMaxLength: config.contextLength }) : {}),
  }
  const names = ['model.safetensors', ...Object.keys(files)]
  makeDirs(dir)
  removeDeadTemps(dir, n => names.includes(n))   // an earlier export killed while writing
  // all written before any is renamed into place: an interrupted export leaves the previous one whole
  writeFilesAtomic([
    { path: join(dir, 'model.safetensors'), write: w => writeSafetensorsTo(w, tensors, { format: 'pt' }) },
    ...Object.entries(files).map(([name, text]) => ({ path: join(dir, name), write: (w: AtomicWriter) => w.write(text) })),
  ])
  return names
}
