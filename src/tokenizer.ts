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
  if (!opts.allowSpecial || !text.includes(EOT_TEXT)) return encodeOrdinary(text)
  // Split on the special token ourselves, as tiktoken does.
  const out: number[] = []
  const parts = text.split(EOT_TEXT)
  for (let i = 0; i < parts.length; i++) {
    if (i > 0) out.push(EOT)
    const ids = encodeOrdinary(parts[i]!)
    for (let j = 0; j < ids.length; j++) out.push(ids[j]!)
  }
  return out
}

// gpt-tokenizer merges a piece as tiktoken does, rescanning every pair after each merge: quadratic in the piece's
// length (a 200,000-letter run took 76 s). Pieces of at least LONG_PIECE characters go to mergeLong instead, which
// makes the same merges in O(n log n); text without such a piece (almost all) goes to the library whole.
const LONG_PIECE = 256
const MAY_HOLD_LONG = new RegExp(`\\P{White_Space}{${LONG_PIECE - 1},}|\\p{White_Space}{${LONG_PIECE},}`, 'u')

function encodeOrdinary(text: string): number[] {
  if (!MAY_HOLD_LONG.test(text)) return bpe().encodeNative(text, NONE)
  // The short pieces between long ones go to the library as one text, cut at piece boundaries: its split of them is
  // the same, but for a whitespace piece just before a long one. That piece may be the last character of a run (the
  // pattern leaves it to the next piece, here a non-space one that cannot take it), and the run cut off there
  // would be one piece alone; so it is encoded on its own.
  const out: number[] = []
  const add = (part: string): void => { if (part !== '') for (const id of bpe().encodeNative(part, NONE)) out.push(id) }
  let from = 0, last = { index: 0, text: '' }
  for (const m of text.matchAll(GPT2_SPLIT)) {
    if (m[0].length >= LONG_PIECE) {
      const ws = last.text !== '' && last.index >= from && !/\P{White_Space}/u.test(last.text)
      add(text.slice(from, ws ? last.index : m.index))
      if (ws) add(last.text)
      for (const id of mergeLong(UTF8_ENCODER.encode(m[0]))) out.push(id)
      from = m.index + m[0].length
    }
    last = { index: m.index, text: m[0] }
  }
  add(text.slice(from))
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

const UTF8_ENCODER = new TextEncoder()
let rankOfBytes: Map<string, number> | undefined

/** The rank (token id) of `piece`'s bytes [s, e), or Infinity when they are no token. */
function rankOf(piece: Uint8Array, s: number, e: number): number {
  if (rankOfBytes === undefined) {
    const t = tokenBytes()
    rankOfBytes = new Map()
    for (let id = 0; id < VOCAB_SIZE - 1; id++) rankOfBytes.set(String.fromCharCode(...t.bytes.subarray(t.start[id]!, t.start[id + 1]!)), id)
  }
  return rankOfBytes.get(String.fromCharCode(...piece.subarray(s, e))) ?? Infinity
}

/**
 * Byte-pair merges of one piece, in the library's order: always the pair of lowest rank, the leftmost of equal
 * ones. The parts are a linked list over byte offsets (next[s]: the start of the part after the one at s), and
 * the candidate pairs a heap keyed rank·2^32 + start; an entry is stale once its left part is merged away or
 * its pair no longer ends where it did (part boundaries only disappear, so a stale entry never becomes current).
 */
function mergeLong(piece: Uint8Array): number[] {
  const n = piece.length
  const next = Int32Array.from({ length: n + 1 }, (_, i) => i + 1), prev = Int32Array.from({ length: n + 1 }, (_, i) => i - 1)
  const heap = new PairHeap()
  const pairEnd = (s: number): number => next[s]! < n ? next[next[s]!]! : -1
  const offer = (s: number): void => {
    const e = pairEnd(s)
    if (e < 0) return
    const rank = rankOf(piece, s, e)
    if (rank !== Infinity) heap.push(rank * 2 ** 32 + s, e)
  }
  for (let s = 0; s < n - 1; s++) offer(s)
  while (heap.size > 0) {
    const { key, end } = heap.pop()
    const s = key % 2 ** 32
    if (prev[s] === -2 || pairEnd(s) !== end) continue   // stale
    const mid = next[s]!
    prev[mid] = -2   // merged into s
    next[s] = end
    if (end < n) prev[end] = s
    if (prev[s]! >= 0) offer(prev[s]!)
    offer(s)
  }
  const ids: number[] = []
  for (let s = 0; s < n; s = next[s]!) ids.push(rankOf(piece, s, next[s]!))
  return ids
}

/** A binary min-heap of (key, end) pairs. */
class PairHeap {
  private keys: number[] = []
  private ends: number[] = []
  get size(): number { return this.keys.length }

  push(key: number, end: number): void {
    const { keys, ends } = this
    let i = keys.length
    keys.push(key); ends.push(end)
    while (i > 0) {
      const up = (i - 1) >> 1
      if (keys[up]! <= key) break
      keys[i] = keys[up]!; ends[i] = ends[up]!
      i = up
    }
    keys[i] = key; ends[i] = end
  }

  pop(): { key: number; end: number } {
    const { keys, ends } = this
    const top = { key: keys[0]!, end: ends[0]! }
    const key = keys.pop()!, end = ends.pop()!
    if (keys.length === 0) return top
    let i = 0
    for (;;) {
      const l = 2 * i + 1, r = l + 1
      let m = l
      if (l >= keys.length) break
      if (r < keys.length && keys[r]! < keys[l]!) m = r
      if (keys[m]! >= key) break
      keys[i] = keys[m]!; ends[i] = ends[m]!
      i = m
    }
    keys[i] = key; ends[i] = end
    return top
  }
}

const WHITESPACE = /\p{White_Space}/u   // GPT2_SPLIT's whitespace

/**
 * An index i in [minChars, maxChars] (minChars >= 1) where text may be cut so that encode(a) ++ encode(b) ==
 * encode(a + b), or -1. A cut is safe just before a whitespace character that follows a non-whitespace one: no
 * piece of GPT-2's pre-tokenizer regex contains non-whitespace followed by whitespace, and the regex has no
 * look-behind, so the pieces on both sides are the same as in the uncut text. Searches backwards from maxChars.
 */
export function findSafeCut(text: string, maxChars: number, minChars = 1): number {
  for (let i = Math.min(maxChars, text.length - 1); i >= Math.max(1, minChars); i--) {
    if (WHITESPACE.test(text[i]!) && !WHITESPACE.test(text[i - 1]!)) return i
  }
  return -1
}
