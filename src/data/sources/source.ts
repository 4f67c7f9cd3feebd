// What prepare reads: a Source is an async stream of items, each a text piece or a Parquet task (rows that a
// worker thread reads and decodes itself). A document is one piece with newDoc set, optionally followed by
// continuation pieces (huge documents are cut at token-safe points so they stream and spread over workers
// without changing a single id). Sources count the input bytes they consumed for the ETA.

import { findSafeCut } from '../../tokenizer.js'
import type { ParquetTask } from './parquet.js'

export interface TextPiece {
  text: string
  newDoc: boolean        // true: this piece starts a document (prepare puts the end-of-text token before it)
}

/** Rows of a Parquet file, read, decoded and tokenized by whichever thread takes the task. */
interface ParquetItem {
  parquet: ParquetTask
}

export type SourceItem = TextPiece | ParquetItem

export interface Source {
  label: string          // one line describing the input, recorded in NAME.json
  inputs: string[]       // files or corpus names
  totalBytes?: number    // input size when known (progress ETA)
  bytesRead(): number    // input bytes consumed so far
  items(): AsyncIterable<SourceItem>
  /** Told, once tokenized, of each Parquet file's rows whose text was not UTF-8 (worker threads decode them). */
  invalidUtf8?(path: string, rows: number, first: number): void
}

/** A Source of text alone (built-in corpora, in-memory documents). */
export interface TextSource extends Source {
  pieces(): AsyncIterable<TextPiece>
}

/** Longest piece handed to the tokenizer; longer documents are cut at safe points. */
export const MAX_PIECE_CHARS = 1 << 18

/** Pieces of one in-memory document: cut into <= maxChars pieces where the cut cannot change the ids. */
export function* documentPieces(text: string, maxChars = MAX_PIECE_CHARS): Generator<TextPiece> {
  let newDoc = true
  let rest = text
  while (rest.length > maxChars) {
    const cut = findSafeCut(rest, maxChars)
    if (cut < 0) break // no whitespace after non-whitespace: keep it whole
    yield { text: rest.slice(0, cut), newDoc }
    newDoc = false
    rest = rest.slice(cut)
  }
  yield { text: rest, newDoc }
}

/** A Source over in-memory documents (built-in corpora, tests). */
export function documentsSource(label: string, inputs: string[], docs: () => Iterable<string> | AsyncIterable<string>): TextSource {
  let bytes = 0
  async function* pieces(): AsyncGenerator<TextPiece> {
    for await (const doc of docs()) {
      yield* documentPieces(doc)
      bytes += Buffer.byteLength(doc)
    }
  }
  return { label, inputs, bytesRead: () => bytes, pieces, items: pieces }
}
