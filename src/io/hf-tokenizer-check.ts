// Which tokenizer a Hugging Face directory's model reads, told from the directory's own tokenizer files. llm.ts
// encodes and decodes with GPT-2's BPE only (src/tokenizer.ts), so text commands refuse a directory whose tokenizer
// is another. Key decision: "GPT-2's" is exact: tokenizer.json's model.vocab (else vocab.json) holds GPT-2's 50,257
// entries, compared by a SHA-256 of the tokens in id order. A directory without tokenizer files says nothing: its
// vocab_size decides, as for our own checkpoints (GPT-2 ids when it is 50257).

import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { GPT2_VOCAB } from '../config.js'
import { fsReason, InputError } from '../util/errors.js'
import { gpt2VocabTokens } from './hf-tokenizer.js'

export interface HfTokenizer {
  gpt2: boolean
  what: string   // for messages: "tokenizer.json: Unigram, 32,000 tokens, LlamaTokenizer"
}

/** The tokenizer of `dir`, whose config.json says vocab_size `vocabSize`; null when it has no tokenizer files. */
export function readHfTokenizer(dir: string, vocabSize: number): HfTokenizer | null {
  for (const file of ['tokenizer.json', 'vocab.json']) {
    const path = join(dir, file)
    if (!existsSync(path)) continue
    const vocab = vocabOf(path, file === 'tokenizer.json')
    if (vocab.gpt2) return { gpt2: true, what: `${file}: GPT-2's ${GPT2_VOCAB.toLocaleString('en-US')} tokens` }
    return { gpt2: false, what: withClass(dir, `${file}: ${vocab.what}`) }
  }
  if (existsSync(join(dir, 'tokenizer.model'))) return { gpt2: false, what: withClass(dir, 'tokenizer.model (SentencePiece)') }
  const cls = tokenizerClass(dir)   // tokenizer_config.json alone: its class is all there is to go by
  if (cls !== null && !/^GPT2Tokenizer(Fast)?$/.test(cls)) return { gpt2: false, what: `${cls}, vocab_size ${vocabSize}` }
  return null
}

/** A vocabulary file's verdict: GPT-2's exactly, or what it is ("BPE, 32,000 tokens"). */
function vocabOf(path: string, isTokenizerJson: boolean): { gpt2: boolean; what: string } {
  const obj = readJson(path)
  let vocab: unknown = obj, type = ''
  if (isTokenizerJson) {
    const model = (obj as { model?: unknown }).model
    if (typeof model !== 'object' || model === null) throw new InputError(`hf: ${path} has no "model" object (not a tokenizers file?)`)
    vocab = (model as { vocab?: unknown }).vocab
    type = `${String((model as { type?: unknown }).type ?? 'unknown type')}, `
  }
  // Unigram's vocab is an array of [piece, score]; BPE's, WordPiece's and vocab.json's an object token -> id
  const size = Array.isArray(vocab) ? vocab.length : typeof vocab === 'object' && vocab !== null ? Object.keys(vocab).length : 0
  const what = `${type}${size.toLocaleString('en-US')} tokens`
  const bpe = !Array.isArray(vocab) && (type === '' || type === 'BPE, ')
  if (size !== GPT2_VOCAB || !bpe) return { gpt2: false, what }
  return { gpt2: vocabHash(vocab as Record<string, unknown>) === gpt2Hash(), what: `${what}, not GPT-2's` }
}

/** SHA-256 of the tokens in id order (JSON), or null when the ids are not 0..n-1 each once. */
function vocabHash(vocab: Record<string, unknown>): string | null {
  const entries = Object.entries(vocab), byId: string[] = new Array(entries.length)
  for (const [token, id] of entries) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= entries.length || byId[id] !== undefined) return null
    byId[id] = token
  }
  return sha256(byId)
}

let gpt2Sha: string | undefined
function gpt2Hash(): string {
  gpt2Sha ??= sha256(gpt2VocabTokens())
  return gpt2Sha
}

function sha256(tokens: readonly string[]): string {
  return createHash('sha256').update(JSON.stringify(tokens)).digest('hex')
}

/** `what`, with tokenizer_config.json's tokenizer_class when it names one. */
function withClass(dir: string, what: string): string {
  const cls = tokenizerClass(dir)
  return cls === null ? what : `${what}, ${cls}`
}

function tokenizerClass(dir: string): string | null {
  const path = join(dir, 'tokenizer_config.json')
  if (!existsSync(path)) return null
  const cls = (readJson(path) as { tokenizer_class?: unknown }).tokenizer_class
  return typeof cls === 'string' ? cls : null
}

function readJson(path: string): object {
  let obj: unknown
  try { obj = JSON.parse(readFileSync(path, 'utf8')) } catch (e) {
    const why = e instanceof SyntaxError ? `is not valid JSON: ${e.message}` : `cannot be read: ${fsReason(e)}`
    throw new InputError(`hf: ${path} ${why}`)
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new InputError(`hf: ${path} is not a JSON object`)
  return obj
}
