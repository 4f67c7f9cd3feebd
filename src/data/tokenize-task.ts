// One unit of prepare's tokenization, run on a worker thread (or the main thread with --workers 0): a batch of
// text pieces, or a Parquet task that the thread reads and decodes itself, so the thread that hands out work
// never touches the text. Either way the result is one Uint16Array of ids, an end-of-text token in front of
// every document (as llm.c's FineWeb script), and the number of documents begun.

import { EOT, encode } from '../tokenizer.js'
import { readTaskFile, type ParquetTask } from './sources/parquet.js'
import { documentPieces } from './sources/source.js'

export type TokenizeTask =
  | { kind: 'text'; texts: string[]; newDoc: boolean[] }   // pieces in order; newDoc[i]: piece i starts a document
  | { kind: 'parquet'; task: ParquetTask }

export interface TokenizeResult {
  tokens: Uint16Array        // (n) ids
  documents: number          // documents begun (each has EOT in front)
  invalidUtf8?: InvalidRows  // a Parquet task's values whose bytes were not UTF-8 (read as U+FFFD), when it has any
}

/** Rows of one Parquet file whose text was not UTF-8: how many, and the first. */
export interface InvalidRows { path: string; rows: number; first: number }

/** A growing Uint16Array of ids. */
class TokenBuffer {
  private out: Uint16Array
  length = 0

  constructor(capacity: number) { this.out = new Uint16Array(Math.max(1024, capacity)) }

  /** Appends [EOT if newDoc] ++ encode(text). */
  addPiece(text: string, opts: { newDoc: boolean; allowSpecial: boolean }): void {
    const ids = encode(text, { allowSpecial: opts.allowSpecial })
    const need = this.length + ids.length + 1
    if (need > this.out.length) {
      const grown = new Uint16Array(Math.max(need, this.out.length * 2))
      grown.set(this.out.subarray(0, this.length))
      this.out = grown
    }
    const out = this.out
    let n = this.length
    if (opts.newDoc) out[n++] = EOT
    for (let j = 0; j < ids.length; j++) out[n++] = ids[j]!
    this.length = n
  }

  /** The ids in a buffer of their own, so a transfer moves only those. */
  finish(): Uint16Array { return this.out.slice(0, this.length) }
}

/** Tokens of a task; see the file header. Parquet errors are InputErrors naming the file and rows. */
export async function runTokenizeTask(task: TokenizeTask, opts: { allowSpecial: boolean }): Promise<TokenizeResult> {
  const { allowSpecial } = opts
  if (task.kind === 'text') {
    const buf = new TokenBuffer(task.texts.reduce((n, t) => n + (t.length >> 2) + 1, 0))
    let documents = 0
    for (let i = 0; i < task.texts.length; i++) {
      const newDoc = task.newDoc[i]!
      buf.addPiece(task.texts[i]!, { newDoc, allowSpecial })
      if (newDoc) documents++
    }
    return { tokens: buf.finish(), documents }
  }
  return tokenizeParquet(task.task, opts)
}

async function tokenizeParquet(task: ParquetTask, opts: { allowSpecial: boolean }): Promise<TokenizeResult> {
  const buf = new TokenBuffer(task.parts.reduce((n, p) => n + p.rows[1] - p.rows[0], 0) * 512)
  let documents = 0
  let skip = task.firstPiece // pieces of the first document already in earlier shards
  let invalid: InvalidRows | undefined
  for await (const { row, text, invalidUtf8 } of readTaskFile(task)) {
    if (invalidUtf8) { invalid ??= { path: task.path, rows: 0, first: row }; invalid.rows++ }
    for (const piece of documentPieces(text)) {
      if (skip > 0) { skip--; continue }
      buf.addPiece(piece.text, { newDoc: piece.newDoc, allowSpecial: opts.allowSpecial })
      if (piece.newDoc) documents++
    }
    skip = 0
  }
  return { tokens: buf.finish(), documents, ...(invalid !== undefined ? { invalidUtf8: invalid } : {}) }
}
