// prepare's file inputs: text files (one document each), JSONL (a string field per line) and Parquet (a
// string column), given as files, directories (recursive) or globs. Everything checkable before tokenizing
// is checked up front: missing paths, directories without usable files, Parquet columns. Empty files are skipped.
// Text and JSONL are read here and sent as text; Parquet files become tasks that worker threads read themselves.

import { statSync } from 'node:fs'
import { basename } from 'node:path'
import { InputError } from '../../util/errors.js'
import { expandPaths } from '../files.js'
import { openParquet, planParquet } from './parquet.js'
import { documentPieces, type Source, type SourceItem } from './source.js'
import { jsonlDocuments, Replacements, textFilePieces } from './text.js'

type InputKind = 'text' | 'jsonl' | 'parquet'

/** Files a directory contributes; an explicitly named file of any other extension is read as text. */
const USABLE_FILES = /\.(txt|text|md|jsonl|ndjson|parquet)$/i

function kindOf(path: string): InputKind {
  if (/\.(jsonl|ndjson)$/i.test(path)) return 'jsonl'
  if (/\.parquet$/i.test(path)) return 'parquet'
  return 'text'
}

interface InputOptions {
  textColumn?: string   // JSONL field / Parquet column holding the text (default "text")
  sliceBytes?: number   // Parquet column bytes per task (default parquetDefaults.sliceBytes; tests make it small)
  note?: (line: string) => void   // told which empty files were skipped, and of bytes that were not UTF-8 (Parquet's: by prepare, once tokenized)
}

/** A Source over files, directories and globs; throws InputError for anything wrong before reading text. */
export async function openInputs(specs: readonly string[], opts: InputOptions = {}): Promise<Source> {
  if (specs.length === 0) throw new InputError('prepare: no inputs (give files, directories or globs, or --corpus NAME)')
  const column = opts.textColumn ?? 'text'
  const found = expandPaths(specs, { what: 'prepare', accept: p => USABLE_FILES.test(p),
    acceptHint: '.txt, .text, .md, .jsonl, .ndjson or .parquet files' })
  const files: string[] = [], sizes: number[] = [], empty: string[] = []
  for (const f of found) {
    const st = statSync(f)
    if (!st.isFile()) throw new InputError(`prepare: ${f} is not a regular file`)
    if (st.size === 0) { empty.push(f); continue }   // an empty placeholder in a crawled folder is no document
    files.push(f)
    sizes.push(st.size)
  }
  const listed = (fs: string[]): string => fs.slice(0, 3).join(', ') + (fs.length > 3 ? `, ... (${fs.length} files)` : '')
  if (files.length === 0) throw new InputError(`prepare: every input file is empty (${listed(empty)})`)
  if (empty.length > 0) opts.note?.(`prepare: skipping ${empty.length} empty file${empty.length > 1 ? 's' : ''}: ${listed(empty)}`)
  for (const f of files) if (kindOf(f) === 'parquet') await (await openParquet(f, column)).close()
  const totalBytes = sizes.reduce((a, b) => a + b, 0)
  let bytes = 0
  const names = files.slice(0, 3).map(f => basename(f)).join(', ') + (files.length > 3 ? `, ... (${files.length} files)` : '')
  return {
    label: `files: ${names}`,
    inputs: files,
    totalBytes,
    bytesRead: () => bytes,
    async *items(): AsyncGenerator<SourceItem> {
      let done = 0
      for (let i = 0; i < files.length; i++) {
        const f = files[i]!
        const onBytes = (n: number): void => { bytes = Math.min(bytes + n, done + sizes[i]!) }
        const replaced = new Replacements()
        yield* fileItems(f, { column, sliceBytes: opts.sliceBytes, replaced }, onBytes)
        if (replaced.count > 0) {   // as crawled corpora are read: kept, but the user may have the wrong encoding
          opts.note?.(`prepare: ${f}: ${replaced.count.toLocaleString('en-US')} invalid UTF-8 sequence${replaced.count > 1 ? 's' : ''} ` +
            `read as U+FFFD, the first at byte ${replaced.first} (is the file in another encoding?)`)
        }
        done += sizes[i]!
        bytes = done
      }
    },
    invalidUtf8(path, rows, first) {   // Parquet: the bytes are the worker's; the text path's note, by row
      opts.note?.(`prepare: ${path}: ${rows.toLocaleString('en-US')} ${rows > 1 ? 'values' : 'value'} of column "${column}" with invalid ` +
        `UTF-8 read as U+FFFD, the first in row ${first} (is the column in another encoding?)`)
    },
  }
}

async function* fileItems(path: string, opts: { column: string; sliceBytes: number | undefined; replaced: Replacements },
                          onBytes: (n: number) => void): AsyncGenerator<SourceItem> {
  const column = opts.column
  switch (kindOf(path)) {
    case 'text':
      yield* textFilePieces(path, onBytes, opts.replaced)
      return
    case 'jsonl':
      for await (const doc of jsonlDocuments(path, column, onBytes, opts.replaced)) yield* documentPieces(doc)
      return
    case 'parquet': {
      const pq = await openParquet(path, column)
      try {
        for await (const task of planParquet(pq, column, opts.sliceBytes === undefined ? {} : { sliceBytes: opts.sliceBytes })) {
          onBytes(task.bytes) // counted when handed out: progress follows submission, as for text
          yield { parquet: task }
        }
      } finally {
        await pq.close()
      }
    }
  }
}
