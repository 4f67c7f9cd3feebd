// GPT-2 byte-level BPE (50,257 tokens, <|endoftext|> = 50256): gpt-tokenizer's r50k_base ranks and BPE core with
// GPT-2's own pre-tokenizer pattern, so the ids equal tiktoken's "gpt2" and OpenAI's encoder.py. The literal text
// "<|endoftext|>" is ordinary text by default; allowSpecial turns it into token 50256. findSafeCut lets callers
// split huge texts without changing the ids.

import { BytePairEncodingCore } from 'gpt-tokenizer/BytePairEncodingCore'
import bpeRanks from 'gpt-tokenizer/bpeRanks/r50k_base'

// The numbers live in config.ts, which model presets and the HF files read without loading the BPE tables.
import { EOT_TOKEN as EOT, GPT2_VOCAB as VOCAB_SIZE } from './config.js'
export { EOT, VOCAB_SIZE }
export const EOT_TEXT = '<|endoftext|>'
export const TOKENIZER_NAME = 'gpt2 (r50k_base via gpt-tokenizer)'

/** GPT-2's pre-tokenizer pattern with its `\s` spelled as Unicode White_Space, as Python's regex module (encoder.py)
 *  and tiktoken's Rust regex read it. JavaScript's `\s` differs in two code points: it counts U+FEFF as space and
 *  not U+0085, so gpt-tokenizer's own copy of the pattern gives other ids for text holding them. */
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu

let core: BytePairEncodingCore | undefined
const NONE = new Set<string>()   // no special token is recognised: "<|endoftext|>" is text (tiktoken's encode_ordinary)

function bpe(): BytePairEncodingCore {
  core ??= new BytePairEncodingCore({
    bytePairRankDecoder: bpeRanks, tokenSplitRegex: GPT2_SPLIT, specialTokensEncoder: new Map([[EOT_TEXT, EOT]]),
  })
  return core
}

/** Token ids of `text` (no end-of-text token added). With allowSpecial, "<|endoftext|>" becomes EOT. */
export function encode(text: string, opts: { allowSpecial?: boolean } = {}): number[] {
  if (!opts.allowSpecial || !text.includes(EOT_TEXT)) return bpe().encodeNative(text, NONE)
  // Split on the special token ourselves, as tiktoken does.
  const out: number[] = []
  const parts = text.split(EOT_TEXT)
  for (let i = 0; i < parts.length; i++) {
    if (i > 0) out.push(EOT)
    const ids = bpe().encodeNative(parts[i]!, NONE)
    for (let j = 0; j < ids.length; j++) out.push(ids[j]!)
  }
  return out
}

/** Text of `ids`; EOT decodes to "<|endoftext|>". Throws a RangeError on an id outside the vocabulary. Bytes
 *  that end mid-character decode to U+FFFD. Each call stands alone: gpt-tokenizer 4.0.0's own decode shares one
 *  streaming TextDecoder between calls, so it holds such trailing bytes back and prepends them to the next call's
 *  text, and drops a U+FEFF that reaches its decoder first. */
export function decode(ids: ArrayLike<number>): string {
  const t = tokenBytes()
  let n = 0
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!
    if (!Number.isInteger(id) || id < 0 || id >= VOCAB_SIZE) {
      throw new RangeError(`tokenizer: id ${id} at position ${i} is outside the vocabulary 0..${VOCAB_SIZE - 1}`)
    }
    n += t.start[id + 1]! - t.start[id]!
  }
  const out = new Uint8Array(n)
  for (let i = 0, o = 0; i < ids.length; i++) {
    const id = ids[i]!
    out.set(t.bytes.subarray(t.start[id]!, t.start[id + 1]!), o)
    o += t.start[id + 1]! - t.start[id]!
  }
  return UTF8.decode(out)
}

/** The bytes of token `id` (a view; EOT's are "<|endoftext|>"), for code that works on bytes (the HF export). */
export function tokenBytesOf(id: number): Uint8Array {
  const t = tokenBytes()
  return t.bytes.subarray(t.start[id]!, t.start[id + 1]!)
}

const UTF8 = new TextDecoder('utf-8', { ignoreBOM: true })
let table: { bytes: Uint8Array; start: Int32Array } | undefined

/** Every token's bytes, back to back: token i is bytes[start[i], start[i+1]); EOT is "<|endoftext|>". */
function tokenBytes(): { bytes: Uint8Array; start: Int32Array } {
  if (table !== undefined) return table
  const enc = new TextEncoder()
  const parts = [...(bpeRanks as (string | number[])[]).map(r => typeof r === 'string' ? enc.encode(r) : Uint8Array.from(r)), enc.encode(EOT_TEXT)]
  if (parts.length !== VOCAB_SIZE) throw new Error(`tokenizer: r50k_base has ${parts.length - 1} ranks, expected ${VOCAB_SIZE - 1}`)
  const start = new Int32Array(VOCAB_SIZE + 1)
  parts.forEach((p, i) => { start[i + 1] = start[i]! + p.length })
  const bytes = new Uint8Array(start[VOCAB_SIZE]!)
  parts.forEach((p, i) => bytes.set(p, start[i]!))
  table = { bytes, start }
  return table
}

const WHITESPACE = /\p{White_Space}/u   // GPT2_SPLIT's whitespace

/**
 * An index i in (0, maxChars] where text may be cut so that encode(a) ++ encode(b) == encode(a + b), or -1.
 * A cut is safe just before a whitespace character that follows a non-whitespace one: no piece of GPT-2's
 * pre-tokenizer regex contains non-whitespace followed by whitespace, and the regex has no look-behind,
 * so the pieces on both sides are the same as in the uncut text. Searches backwards from maxChars.
 */
export function findSafeCut(text: string, maxChars: number): number {
  for (let i = Math.min(maxChars, text.length - 1); i > 0; i--) {
    if (WHITESPACE.test(text[i]!) && !WHITESPACE.test(text[i - 1]!)) return i
  }
  return -1
}
