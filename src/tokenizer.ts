// GPT-2 byte-level BPE (50,257 tokens, <|endoftext|> = 50256) through gpt-tokenizer's r50k_base encoding
// (pure JS, ids identical to tiktoken's "gpt2"). The literal text "<|endoftext|>" is ordinary text by default;
// allowSpecial turns it into token 50256. findSafeCut lets callers split huge texts without changing the ids.

import bpeRanks from 'gpt-tokenizer/bpeRanks/r50k_base'
import { encode as encodeR50k } from 'gpt-tokenizer/encoding/r50k_base'

// The numbers live in config.ts, which model presets and the HF files read without loading the BPE tables.
import { EOT_TOKEN as EOT, GPT2_VOCAB as VOCAB_SIZE } from './config.js'
export { EOT, VOCAB_SIZE }
export const EOT_TEXT = '<|endoftext|>'
export const TOKENIZER_NAME = 'gpt2 (r50k_base via gpt-tokenizer)'

// Nothing is disallowed and nothing is allowed: every special-token string is encoded as plain text
// (tiktoken's encode_ordinary). The library's default would throw on "<|endoftext|>" in the input.
const ORDINARY = { disallowedSpecial: new Set<string>() }

/** Token ids of `text` (no end-of-text token added). With allowSpecial, "<|endoftext|>" becomes EOT. */
export function encode(text: string, opts: { allowSpecial?: boolean } = {}): number[] {
  if (!opts.allowSpecial || !text.includes(EOT_TEXT)) return encodeR50k(text, ORDINARY)
  // Split on the special token ourselves, as tiktoken does: gpt-tokenizer 4.0.0's allowedSpecial only
  // recognises a special token at the very start of the input (its sticky regex never searches further).
  const out: number[] = []
  const parts = text.split(EOT_TEXT)
  for (let i = 0; i < parts.length; i++) {
    if (i > 0) out.push(EOT)
    const ids = encodeR50k(parts[i]!, ORDINARY)
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

const WHITESPACE = /\s/u

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
