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
import { decodeFloats, floatToBf16, isFloat, readSafetensorsHeader, readSafetensorsInto, writeSafetensorsTo, type TensorInfo,
  type TensorSink, type WriteTensor } from './safetensors.js'

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

/** A tensor of the weights as its file's header describes it (the data not read). */
interface WeightEntry extends TensorInfo { path: string }

/** A piece of the parameter table and the tensor of the files that holds it. */
interface Found { spec: ParamSpec; piece: HfPiece; name: string }

/** The headers of model.safetensors, or of every shard named by model.safetensors.index.json; name -> tensor. */
function openWeights(dir: string): Map<string, WeightEntry> {
  const single = join(dir, 'model.safetensors')
  const index = join(dir, 'model.safetensors.index.json')
  const byName = new Map<string, WeightEntry>()
  if (existsSync(single)) {
    for (const [name, t] of readSafetensorsHeader(single).tensors) byName.set(name, { ...t, path: single })
    return byName
  }
  // a .part file is what an interrupted `llmts download` leaves; pytorch_model.bin is what older repositories hold
  const unfinished = ' (its weights are an unfinished download, a .part file: run the same llmts download again to finish it)'
  if (!existsSync(index)) {
    const hint = existsSync(`${single}.part`) || existsSync(`${index}.part`) ? unfinished
      : existsSync(join(dir, 'pytorch_model.bin')) ? ' (pytorch_model.bin is not read: convert it to safetensors)' : ''
    throw new InputError(`hf: ${dir} has neither model.safetensors nor model.safetensors.index.json${hint}`)
  }
  const shards = new Map<string, Map<string, TensorInfo>>()
  for (const [name, file] of Object.entries(readWeightMap(index))) {
    const path = join(dir, file)
    let shard = shards.get(file)
    if (shard === undefined) {
      if (!existsSync(path) && existsSync(`${path}.part`)) throw new InputError(`hf: ${index} names ${file}, which is missing${unfinished}`)
      shard = readSafetensorsHeader(path).tensors
      shards.set(file, shard)
    }
    const t = shard.get(name)
    if (t === undefined) throw new InputError(`hf: ${index} puts ${name} in ${file}, which has no such tensor`)
    byName.set(name, { ...t, path })
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
function lookupName(files: Map<string, WeightEntry>, name: string): string | undefined {
  if (files.has(name)) return name
  const bare = name.replace(/^(transformer|model)\./, '')
  return bare !== name && files.has(bare) ? bare : undefined
}

/**
 * Imports a Hugging Face directory: config.json mapped to a ModelConfig and the weights as one flat
 * float32 buffer in our layout (layout.total floats, padded vocabulary rows zero). Each file is streamed, a chunk
 * (opts.chunkBytes, default 16 MiB) at a time, straight into its place in the buffer: no whole-file buffer, so files
 * of any size load.
 * Missing, unexpected or mismatched tensors -> one InputError naming each (up to 5) with both shapes; a NaN or
 * infinite weight -> one naming the tensor and index.
 */
export function loadHfDir(dir: string, opts: { chunkBytes?: number; config?: ModelConfig } = {}): { config: ModelConfig; params: Float32Array } {
  const { config, layout, files, found } = checkHfDir(dir, opts)
  const params = new Float32Array(layout.total), problems: string[] = []
  for (const path of new Set(found.map(f => files.get(f.name)!.path))) {
    const here = found.filter(f => files.get(f.name)!.path === path)
    readSafetensorsInto(path, tensors => new Map(here.map(f => [f.name, pieceSink(params, f, files.get(f.name)!, tensors.get(f.name), problems)])),
      undefined, opts)
    for (const { spec, piece, name } of here) {   // those read as they are (f32, untransposed) are checked once in place
      if (files.get(name)!.dtype !== 'F32' || piece.transpose) continue
      const values = pieceRows(params, spec, piece), bad = firstNonFinite(values)
      if (bad >= 0) problems.push(`tensor ${name} holds ${values[bad]} at index ${bad} (weights must be finite)`)
    }
  }
  refuse(dir, problems)
  return { config, params }
}

/** What a Hugging Face directory holds, checked from config.json and the weights' headers alone (their data not read):
 *  the same InputErrors as loadHfDir for a missing, unexpected or mis-shaped tensor. `opts.config`: config.json as
 *  the caller has read it already (readHfConfig). */
export function checkHfDir(dir: string, opts: { config?: ModelConfig } = {}):
  { config: ModelConfig; layout: ParamLayout; files: Map<string, WeightEntry>; found: Found[] } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError(`hf: ${dir} is not a directory`)
  const config = opts.config ?? readHfConfig(dir).config
  const layout = new ParamLayout(config)
  const files = openWeights(dir)
  // every name and shape is checked before the buffer is allocated: config.json's sizes are only trusted once the
  // tensors agree with them (a corrupt size would otherwise ask for a buffer of any length)
  const found: Found[] = []
  const problems: string[] = [], mismatched: string[] = []
  for (const spec of layout.specs) {
    for (const piece of spec.hf) {
      const want = hfShape(spec, piece)
      const name = lookupName(files, piece.name)
      if (name === undefined) { problems.push(`missing tensor ${piece.name} (expected shape [${want}])`); continue }
      const { shape, dtype } = files.get(name)!
      if (shape.join(',') !== want.join(',')) {
        problems.push(`tensor ${name} has shape [${shape}], config.json implies [${want}]`)
        mismatched.push(name)
      } else if (!isFloat(dtype)) {
        problems.push(`tensor ${name} is ${dtype}, expected a float type (F32, BF16 or F16)`)
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
    problems.push(`unexpected tensor ${name} with shape [${files.get(name)!.shape}]`)
  }
  refuse(dir, problems)
  return { config, layout, files, found }
}

/** Where a tensor's chunks go: decoded to float32 into the piece's place in `params` (transposed there for GPT-2's Conv1D
 *  layout); a non-finite value is added to `problems` once per tensor. `was`: the tensor as the header checked before
 *  said, `now`: as the file says while it is read. */
function pieceSink(params: Float32Array, f: Found, was: WeightEntry,
                   now: TensorInfo | undefined, problems: string[]): TensorSink {
  const { spec, piece, name } = f, path = was.path
  // a file replaced since its header was checked is not read as if it were the same
  if (now === undefined || !isFloat(now.dtype) || now.dtype !== was.dtype || now.shape.join(',') !== was.shape.join(',')) {
    throw new InputError(`hf: ${path} changed while being read (tensor ${name} is no longer ${was.dtype} [${was.shape}])`)
  }
  const rows = pieceRows(params, spec, piece)
  if (now.dtype === 'F32' && !piece.transpose) return new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength)   // read in place
  const dtype = now.dtype, size = now.dtype === 'F32' ? 4 : 2
  const cols = spec.shape.length === 1 ? 1 : spec.shape[1]!
  let scratch: Float32Array | null = null, bad = false
  return (chunk, at) => {
    const first = at / size, n = chunk.byteLength / size
    // (rows, cols) in both: the chunk decodes in place; (cols, rows) in the file: through scratch, then scattered
    const out = piece.transpose ? (scratch ??= new Float32Array(n)).subarray(0, n) : rows.subarray(first, first + n)
    decodeFloats(dtype, chunk, out)
    const i = bad ? -1 : firstNonFinite(out)
    if (i >= 0) { bad = true; problems.push(`tensor ${name} holds ${out[i]} at index ${first + i} (weights must be finite)`) }
    if (piece.transpose) scatterTransposed(rows, piece.rows, cols, first, out)
  }
}

/** A piece's (rows, cols) in the flat buffer, a view. */
function pieceRows(params: Float32Array, spec: ParamSpec, piece: HfPiece): Float32Array {
  const cols = spec.shape.length === 1 ? 1 : spec.shape[1]!
  const base = spec.offset + piece.rowStart * cols
  return params.subarray(base, base + piece.rows * cols)
}

// dest: the piece, (rows, cols)   src: elements first.. of the HF tensor, (cols, rows)
function scatterTransposed(dest: Float32Array, rows: number, cols: number, first: number, src: Float32Array): void {
  let c = Math.floor(first / rows), r = first - c * rows
  for (let i = 0; i < src.length; i++) {
    dest[r * cols + c] = src[i]!
    if (++r === rows) { r = 0; c++ }
  }
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

// returns the HF tensor of a piece: (rows, cols), a view of params, or (cols, rows) when piece.transpose, a copy
function copyPieceOut(params: Float32Array, spec: ParamSpec, piece: HfPiece): Float32Array {
  const cols = spec.shape.length === 1 ? 1 : spec.shape[1]!
  const rowsView = pieceRows(params, spec, piece)
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
