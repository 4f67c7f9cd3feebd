// `llmts tokenize FILE` a piece at a time: bytes are read in chunks, checked as UTF-8 at character boundaries, and
// the text is encoded and printed in pieces cut where findSafeCut allows, so the ids are the whole file's and
// `tokenize big.txt | head` stops at once with little memory. A regular file is checked whole before the first id
// is printed (a bad byte is one line and no output, as before); stdin can only be checked as it comes.

import { createReadStream } from 'node:fs'
import { isUtf8 } from 'node:buffer'
import { encode, findSafeCut } from '../tokenizer.js'
import { MAX_PIECE_CHARS } from '../data/sources/source.js'
import { SHARD_MAGIC } from '../data/shards.js'
import { InputError } from '../util/errors.js'
import { characterEnd, firstInvalidUtf8 } from '../util/utf8.js'
import { printJson } from './output.js'

const READ_BYTES = 1 << 18

/** Prints the ids of FILE's text (stdin for '-'), space-separated with one newline, or as {"tokens", "ids"}. */
export async function printFileIds(file: string, o: { allowSpecial: boolean; json: boolean }): Promise<void> {
  if (file !== '-') for await (const _ of textParts(file)) { /* checked before anything is printed */ }
  const pieces = idPieces(textParts(file), o.allowSpecial)
  if (o.json) {
    const ids: number[] = []
    for await (const piece of pieces) for (const id of piece) ids.push(id)
    printJson({ tokens: ids.length, ids })
    return
  }
  let sep = ''
  for await (const piece of pieces) {
    if (process.stdout.errored !== null) return   // `| head`: main's stdout handler ends the process
    await write(sep + piece.join(' '))
    sep = ' '
  }
  await write('\n')
}

/** Writes to stdout, waiting while its buffer is full (the reader is slower than the tokenizer). */
function write(s: string): Promise<void> {
  if (process.stdout.write(s)) return Promise.resolve()
  return new Promise(resolve => process.stdout.once('drain', resolve))
}

/** Ids of the text parts, encoded a piece of at least MAX_PIECE_CHARS characters at a time (the last one shorter),
 *  cut only at the safe points of findSafeCut; text without one is held until it comes (or the end). */
async function* idPieces(parts: AsyncIterable<string>, allowSpecial: boolean): AsyncGenerator<number[]> {
  let text = ''
  let checked = 1   // cuts at [1, checked) are known unsafe: each depends only on the two characters around it
  for await (const part of parts) {
    text += part
    if (text.length < MAX_PIECE_CHARS) continue
    const cut = findSafeCut(text, text.length - 1, checked)
    if (cut > 0) {
      yield encode(text.slice(0, cut), { allowSpecial })
      text = text.slice(cut)
    }
    checked = Math.max(1, text.length)
  }
  if (text !== '') yield encode(text, { allowSpecial })
}

/** FILE's text in parts that end on character boundaries; an InputError for a token shard or for bytes that are not
 *  UTF-8, naming the offset of the first bad byte (or of the lead byte of a sequence cut short) in the whole input. */
async function* textParts(file: string): AsyncGenerator<string> {
  const where = file === '-' ? 'stdin' : file
  const input = file === '-' ? process.stdin : createReadStream(file, { highWaterMark: READ_BYTES })
  let carry: Buffer = Buffer.alloc(0), offset = 0, first = true
  for await (const chunk of input as AsyncIterable<Buffer>) {
    carry = carry.length === 0 ? chunk : Buffer.concat([carry, chunk])
    if (first && carry.length < 4) continue
    if (first) { refuseShard(file, carry); first = false }
    const end = characterEnd(carry)
    yield textOf(carry.subarray(0, end), offset, where)
    offset += end
    carry = Buffer.from(carry.subarray(end))   // at most 3 bytes: not a view keeping the chunk alive
  }
  if (first) refuseShard(file, carry)
  if (carry.length > 0) yield textOf(carry, offset, where)   // the end: an unfinished character is refused here
}

function refuseShard(file: string, head: Buffer): void {
  if (head.length >= 4 && head.readInt32LE(0) === SHARD_MAGIC) {
    throw new InputError(`llmts tokenize: ${file === '-' ? 'stdin' : file} is a token shard, not text (its text: llmts tokenize --decode ${file})`)
  }
}

/** `part` (starting on a character boundary, `offset` bytes into the input) as text; a BOM stays text. */
function textOf(part: Buffer, offset: number, where: string): string {
  if (isUtf8(part)) return part.toString('utf8')   // one byte per character where it can: the tokenizer runs faster
  const bad = offset + firstInvalidUtf8(part)
  throw new InputError(`llmts tokenize: ${where} is not UTF-8 text (invalid byte 0x${part[bad - offset]!.toString(16)} at offset ${bad})`)
}
