// ModelConfig: every architectural switch of GPT-2 and the variant, the presets, and validation.
// The variant is GPT-2 with RMSNorm, RoPE, grouped-query attention, SwiGLU and no biases; each switch is
// independent so any mix can be trained (HF export later names what Hugging Face cannot express).

import { InputError, shown } from './util/errors.js'
import { camelCase, snakeCase } from './util/json.js'

export interface ModelConfig {
  vocabSize: number           // V: real vocabulary (50,257 for GPT-2's BPE)
  paddedVocabSize: number     // Vp: V rounded up to a multiple of 128; padded rows never get probability mass
  contextLength: number       // maxT: longest sequence (learned positions table size; RoPE has no table)
  layers: number              // L
  channels: number            // C: model width d
  heads: number               // NH: query heads; head size HS = C / NH
  kvHeads: number             // KVH: key/value heads; query head h uses K/V head floor(h / (NH / KVH))
  norm: 'layernorm' | 'rmsnorm'
  normEps: number
  positions: 'learned' | 'rope'
  ropeTheta: number
  mlp: 'gelu' | 'swiglu'
  mlpHidden: number           // H: 4C for GELU; 2/3·4C rounded up to a multiple of 128 for SwiGLU
  attnBias: boolean           // biases on the qkv and output projections
  mlpBias: boolean            // biases on the MLP projections
  tiedEmbeddings: boolean     // output layer reuses the token embedding (wte)
}

export const GPT2_VOCAB = 50_257
export const EOT_TOKEN = 50_256

export function padVocab(v: number): number {
  return Math.ceil(v / 128) * 128
}

/** SwiGLU hidden size of the report: 2/3 · 4C rounded up to a multiple of 128. */
export function swigluHidden(channels: number): number {
  return Math.ceil((2 / 3) * 4 * channels / 128) * 128
}

function gpt2(layers: number, channels: number, heads: number): ModelConfig {
  return {
    vocabSize: GPT2_VOCAB, paddedVocabSize: padVocab(GPT2_VOCAB), contextLength: 1024,
    layers, channels, heads, kvHeads: heads,
    norm: 'layernorm', normEps: 1e-5, positions: 'learned', ropeTheta: 10_000,
    mlp: 'gelu', mlpHidden: 4 * channels, attnBias: true, mlpBias: true, tiedEmbeddings: true,
  }
}

function variant(layers: number, channels: number, heads: number, mlpHidden: number): ModelConfig {
  return {
    ...gpt2(layers, channels, heads), kvHeads: heads / 2,
    norm: 'rmsnorm', normEps: 1e-5, positions: 'rope', mlp: 'swiglu', mlpHidden,
    attnBias: false, mlpBias: false,
  }
}

export const presets: Record<string, ModelConfig> = {
  'gpt2-124m': gpt2(12, 768, 12),
  'gpt2-350m': gpt2(24, 1024, 16),
  'variant-124m': variant(12, 768, 12, 2048),
  'variant-350m': variant(24, 1024, 16, 2816),
  'tiny-gpt2': gpt2(4, 256, 8),
  'tiny-variant': { ...variant(4, 256, 8, 768), kvHeads: 4 },
}

export const presetDescriptions: Record<string, string> = {
  'gpt2-124m': 'GPT-2 small: LayerNorm, learned positions, GELU MLP, biases',
  'gpt2-350m': 'GPT-2 medium',
  'variant-124m': 'GPT-2 variant, Llama-style: RMSNorm, RoPE, GQA (6 K/V heads), SwiGLU 2048, no biases',
  'variant-350m': 'the variant at 350M: 16 heads, 8 K/V heads, SwiGLU 2816',
  'tiny-gpt2': 'CPU-sized GPT-2: 4 layers, 256 wide, 8 heads',
  'tiny-variant': 'CPU-sized variant: 4 layers, 256 wide, 8 heads, 4 K/V heads, SwiGLU 768',
}

/** Looks up a preset by name; InputError listing the presets otherwise. */
export function presetConfig(name: string): ModelConfig {
  const c = presets[name]
  if (c === undefined) {
    throw new InputError(`config: unknown model preset "${name}" (expected one of ${Object.keys(presets).join(', ')})`)
  }
  return { ...c }
}

/** Checks a (possibly user-written) config; `where` names its origin in the message. */
export function validateConfig(c: ModelConfig, where = 'model config'): ModelConfig {
  const bad = (what: string): never => { throw new InputError(`config: ${where}: ${what}`) }
  const posInt = (k: keyof ModelConfig): void => {
    const v = c[k]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) bad(`${k} must be a positive integer, got ${shown(v)}`)
  }
  for (const k of ['vocabSize', 'paddedVocabSize', 'contextLength', 'layers', 'channels', 'heads', 'kvHeads', 'mlpHidden'] as const) posInt(k)
  if (c.layers > 1024) bad(`layers must be at most 1024, got ${c.layers}`)   // the parameter table has entries per layer
  if (c.paddedVocabSize < c.vocabSize) bad(`paddedVocabSize ${c.paddedVocabSize} is below vocabSize ${c.vocabSize}`)
  if (c.channels % c.heads !== 0) bad(`heads (${c.heads}) must divide channels (${c.channels})`)
  if (c.heads % c.kvHeads !== 0) bad(`kvHeads (${c.kvHeads}) must divide heads (${c.heads})`)
  if (c.norm !== 'layernorm' && c.norm !== 'rmsnorm') bad(`norm must be layernorm or rmsnorm, got ${shown(c.norm)}`)
  if (c.positions !== 'learned' && c.positions !== 'rope') bad(`positions must be learned or rope, got ${shown(c.positions)}`)
  if (c.mlp !== 'gelu' && c.mlp !== 'swiglu') bad(`mlp must be gelu or swiglu, got ${shown(c.mlp)}`)
  if (typeof c.normEps !== 'number' || !(c.normEps > 0)) bad(`normEps must be a positive number, got ${shown(c.normEps)}`)
  if (typeof c.ropeTheta !== 'number' || !(c.ropeTheta > 0)) bad(`ropeTheta must be a positive number, got ${shown(c.ropeTheta)}`)
  if (c.positions === 'rope' && (c.channels / c.heads) % 2 !== 0) bad(`RoPE needs an even head size, got ${c.channels / c.heads}`)
  for (const k of ['attnBias', 'mlpBias', 'tiedEmbeddings'] as const) {
    if (typeof c[k] !== 'boolean') bad(`${k} must be true or false, got ${shown(c[k])}`)
  }
  return c
}

/** Keys of a `llmts model --json` entry that describe a model rather than set it: a config file may carry them
 *  (the entry saved as a file is a config); "parameters" must then match the count (checked by the loader). */
const describingKeys: readonly string[] = ['name', 'parameters', 'description', 'tokenizer']

/** Builds a config from a partial JSON object on top of a base (a preset or GPT-2 124M). */
export function configFromJson(obj: unknown, where: string): ModelConfig {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new InputError(`config: ${where} must be a JSON object`)
  }
  const raw = obj as Record<string, unknown>
  if (raw['preset'] !== undefined && (typeof raw['preset'] !== 'string' || !Object.hasOwn(presets, raw['preset']))) {
    throw new InputError(`config: ${where}: unknown model preset ${shown(raw['preset'])} (expected one of ${Object.keys(presets).join(', ')})`)
  }
  const base = presetConfig(typeof raw['preset'] === 'string' ? raw['preset'] : 'gpt2-124m')
  const known = new Set<string>([...Object.keys(base), 'preset'])
  const o: Record<string, unknown> = {}, spelled = new Map<string, string>()
  for (const [k, v] of Object.entries(raw)) {
    if (describingKeys.includes(k)) continue   // a `llmts model --json` entry; load.ts checks its "parameters"
    const key = known.has(k) ? k : camelCase(k)   // kv_heads, as `llmts model --json` prints it
    if (!known.has(key)) {
      const keys = [...known, ...describingKeys].map(snakeCase)
      throw new InputError(`config: ${where} has unknown key "${k}" (expected one of ${keys.join(', ')}; camelCase works too)`)
    }
    if (spelled.has(key)) throw new InputError(`config: ${where} gives ${key} twice ("${spelled.get(key)}" and "${k}"); keep one`)
    spelled.set(key, k)
    o[key] = v
  }
  const c = { ...base, ...o } as ModelConfig & { preset?: string }
  delete c.preset
  if (o['vocabSize'] !== undefined && o['paddedVocabSize'] === undefined) c.paddedVocabSize = padVocab(c.vocabSize)
  // Derived sizes follow the keys they derive from unless given: K/V heads keep the base's grouping ratio,
  // the MLP width follows the width and MLP type.
  if (o['heads'] !== undefined && o['kvHeads'] === undefined) c.kvHeads = Math.max(1, Math.round(c.heads * base.kvHeads / base.heads))
  if ((o['mlp'] !== undefined || o['channels'] !== undefined) && o['mlpHidden'] === undefined) {
    c.mlpHidden = c.mlp === 'swiglu' ? swigluHidden(c.channels) : 4 * c.channels
  }
  return validateConfig(c, where)
}

export function headSize(c: ModelConfig): number {
  return c.channels / c.heads
}
