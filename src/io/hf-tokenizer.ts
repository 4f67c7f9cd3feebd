// GPT-2 tokenizer files for a Hugging Face export (vocab.json, merges.txt, tokenizer.json, tokenizer_config.json,
// special_tokens_map.json), generated from the r50k_base (= GPT-2) ranks in the gpt-tokenizer package.
// Key decision: the merges are recovered from the ranks alone — token r is what BPE makes of its own bytes
// using only merges ranked below r, which splits it into exactly the two parts of merge number r - 256.

import { EOT_TOKEN, GPT2_VOCAB } from '../config.js'
import { EOT_TEXT, tokenBytesOf } from '../tokenizer.js'

/** GPT-2's reversible byte -> printable character map (bytes_to_unicode in openai/gpt-2 encoder.py). */
function bytesToUnicode(): string[] {
  const table: string[] = new Array(256)
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)
  let n = 0
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable(b) ? b : 256 + n++)
  return table
}

interface Gpt2Vocab {
  tokens: string[]   // (V): id -> byte-level string, EOT_TEXT last
  merges: string[]   // (V - 257): "left right", merge i makes token 256 + i
}

let cached: Gpt2Vocab | undefined
let cachedTokens: string[] | undefined

/** GPT-2's 50,257 tokens as vocab.json spells them (byte-level strings), in id order, EOT_TEXT last. Cheap beside
 *  the merges: readers that only compare vocabularies (src/io/hf-tokenizer-check.ts) need this alone. */
export function gpt2VocabTokens(): readonly string[] {
  if (cachedTokens !== undefined) return cachedTokens
  const byteChar = bytesToUnicode()
  const tokens = Array.from({ length: GPT2_VOCAB - 1 }, (_, id) => {   // the ranks; EOT is added last
    let s = ''
    for (const b of tokenBytesOf(id)) s += byteChar[b]!
    return s
  })
  tokens.push(EOT_TEXT)
  cachedTokens = tokens
  return tokens
}

/** The GPT-2 vocabulary (50,257 byte-level strings) and its 50,000 merges, in rank order. */
function gpt2Vocab(): Gpt2Vocab {
  if (cached !== undefined) return cached
  const tokens = [...gpt2VocabTokens()]
  const rank = new Map<string, number>()
  tokens.forEach((t, i) => { if (i < tokens.length - 1) rank.set(t, i) })   // the ranks, EOT aside
  const merges: string[] = []
  for (let r = 256; r < tokens.length - 1; r++) {   // EOT (last) is no merge
    const parts = bpeBelow(tokens[r]!, rank, r)
    if (parts.length !== 2) throw new Error(`hf-tokenizer: token ${r} splits into ${parts.length} parts below its rank, expected 2`)
    merges.push(`${parts[0]} ${parts[1]}`)
  }
  cached = { tokens, merges }
  return cached
}

/** Byte-level BPE of `word` (a token string) using only ranks below maxRank; returns the parts. */
function bpeBelow(word: string, rank: Map<string, number>, maxRank: number): string[] {
  const parts = [...word]
  for (;;) {
    let best = -1, bestRank = maxRank
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = rank.get(parts[i]! + parts[i + 1]!)
      if (r !== undefined && r < bestRank) { bestRank = r; best = i }
    }
    if (best < 0) return parts
    parts.splice(best, 2, parts[best]! + parts[best + 1]!)
  }
}

/** A JSON object written in the given key order (JS objects would move integer-like keys like "0" first). */
function orderedJsonObject(entries: [string, number][], indent: string): string {
  return `{\n${entries.map(([k, v]) => `${indent}${JSON.stringify(k)}: ${v}`).join(',\n')}\n${indent.slice(2)}}`
}

const eotAddedToken = { content: EOT_TEXT, lstrip: false, normalized: true, rstrip: false, single_word: false, special: true }

/** tokenizer.json in the format of the `tokenizers` library: ByteLevel pre-tokenizer and decoder, BPE model. */
function tokenizerJson(v: Gpt2Vocab): string {
  const byteLevel = (o: { addPrefixSpace: boolean; trimOffsets: boolean }): object =>
    ({ type: 'ByteLevel', add_prefix_space: o.addPrefixSpace, trim_offsets: o.trimOffsets, use_regex: true })
  const head = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [{ id: EOT_TOKEN, ...eotAddedToken }],
    normalizer: null,
    pre_tokenizer: byteLevel({ addPrefixSpace: false, trimOffsets: true }),
    post_processor: byteLevel({ addPrefixSpace: true, trimOffsets: false }),
    decoder: byteLevel({ addPrefixSpace: true, trimOffsets: true }),
  }
  const model = {
    type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
    fuse_unk: false, byte_fallback: false, ignore_merges: false,
  }
  const vocab = orderedJsonObject(v.tokens.map((t, i) => [t, i]), '      ')
  const merges = `[\n${v.merges.map(m => `      ${JSON.stringify(m)}`).join(',\n')}\n    ]`
  // vocab keeps id order (see orderedJsonObject): stringify with placeholders, then splice the two in
  const text = JSON.stringify({ ...head, model: { ...model, vocab: '@VOCAB@', merges: '@MERGES@' } }, null, 2)
  return text.replace('"@VOCAB@"', () => vocab).replace('"@MERGES@"', () => merges) + '\n'
}

/** File name -> contents of the GPT-2 tokenizer files transformers' AutoTokenizer reads. */
export function gpt2TokenizerFiles(opts: { modelMaxLength: number }): Record<string, string> {
  const v = gpt2Vocab()
  const special = { bos_token: EOT_TEXT, eos_token: EOT_TEXT, unk_token: EOT_TEXT }
  const config = {
    add_bos_token: false, add_prefix_space: false,
    added_tokens_decoder: { [String(EOT_TOKEN)]: eotAddedToken },
    ...special, clean_up_tokenization_spaces: false, errors: 'replace',
    model_max_length: opts.modelMaxLength, pad_token: null, tokenizer_class: 'GPT2Tokenizer',
  }
  return {
    'vocab.json': orderedJsonObject(v.tokens.map((t, i) => [t, i]), '  ') + '\n',
    'merges.txt': `#version: 0.2\n${v.merges.join('\n')}\n`,
    'tokenizer.json': tokenizerJson(v),
    'tokenizer_config.json': JSON.stringify(config, null, 2) + '\n',
    'special_tokens_map.json': JSON.stringify(special, null, 2) + '\n',
  }
}
