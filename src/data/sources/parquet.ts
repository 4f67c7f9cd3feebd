// Parquet documents through hyparquet (+ hyparquet-compressors for zstd, gzip, brotli, lz4): one string
// column. planParquet cuts a file into tasks of about sliceBytes of column data, from the footer alone when
// row groups are small (they are merged) and from page headers when one is large (it is split at page
// boundaries), so a task, decoded on a worker thread by readTask, reads only its own pages: memory stays
// bounded by the task size (or the largest page), never by the row group or the file.

import { open, type FileHandle } from 'node:fs/promises'
import { parquetMetadataAsync, parquetSchema, type AsyncBuffer, type ColumnMetaData, type FileMetaData, type SchemaTree } from 'hyparquet'
import { InputError } from '../../util/errors.js'
import { InvalidUtf8, readPageHeaders, readPart, type ColumnSpec, type ParquetPart } from './parquet-pages.js'

interface ParquetFile {
  path: string
  file: AsyncBuffer
  metadata: FileMetaData
  rows: number
  close(): Promise<void>
}

/** A unit of work: rows of one file, in order, as parts of row groups. Plain data (crosses to a worker). */
export interface ParquetTask {
  path: string
  column: string
  spec: ColumnSpec
  parts: ParquetPart[]
  firstPiece: number             // pieces of the first row's document to skip (resuming inside a cut document)
  bytes: number                  // file bytes this task accounts for (progress)
}

const parquetDefaults = {
  sliceBytes: 2 << 20,           // uncompressed column bytes per task: ~0.5M GPT-2 tokens of English, ~0.2 s of work
}

async function readFully(fh: FileHandle, out: Uint8Array, position: number): Promise<void> {
  let off = 0
  while (off < out.length) {
    const { bytesRead } = await fh.read(out, off, out.length - off, position + off)
    if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${position + off}`)
    off += bytesRead
  }
}

/** An AsyncBuffer over an open file of `size` bytes. */
function fileBuffer(fh: FileHandle, size: number): AsyncBuffer {
  return {
    byteLength: size,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const out = new Uint8Array((end ?? size) - start)
      await readFully(fh, out, start)
      return out.buffer
    },
  }
}

/** Opens a Parquet file, reads its footer and checks that `column` is a top-level string column. */
export async function openParquet(path: string, column: string): Promise<ParquetFile> {
  const fh = await open(path, 'r')
  try {
    const { size } = await fh.stat()
    const file = fileBuffer(fh, size)
    let metadata: FileMetaData
    try {
      metadata = await parquetMetadataAsync(file)
    } catch (e) {
      throw new InputError(`prepare: ${path} is not a readable Parquet file (${(e as Error).message})`)
    }
    columnOf(path, parquetSchema(metadata), column)
    return { path, file, metadata, rows: Number(metadata.num_rows), close: () => fh.close() }
  } catch (e) {
    await fh.close()
    throw e
  }
}

function columnOf(path: string, schema: SchemaTree, column: string): SchemaTree {
  const col = schema.children.find(c => c.element.name === column)
  if (col === undefined) {
    const names = schema.children.map(c => c.element.name).join(', ')
    throw new InputError(`prepare: ${path} has no column "${column}" (columns: ${names}; pick one with --text-column)`)
  }
  if (col.element.type !== 'BYTE_ARRAY' || col.children.length > 0) {
    throw new InputError(`prepare: ${path} column "${column}" holds ${col.element.type ?? 'nested values'}, ` +
      `expected strings (pick another with --text-column)`)
  }
  return col
}

function columnSpec(pq: ParquetFile, column: string): ColumnSpec {
  const schema = parquetSchema(pq.metadata)
  const col = columnOf(pq.path, schema, column)
  let largest = 0
  for (const g of pq.metadata.row_groups) largest = Math.max(largest, Number(chunkMeta(g.columns, column)?.total_uncompressed_size ?? 0))
  const bare = (t: SchemaTree): SchemaTree => ({ element: t.element, children: [], count: t.count, path: t.path })
  return { pathInSchema: [column], schemaPath: [bare(schema), bare(col)], type: 'BYTE_ARRAY', limit: Math.min(largest, 2 ** 31) }
}

function chunkMeta(columns: FileMetaData['row_groups'][number]['columns'], column: string): ColumnMetaData | undefined {
  return columns.find(c => c.meta_data?.path_in_schema.join('.') === column)?.meta_data
}

interface Span { start: number; length: number }

function chunkSpan(md: ColumnMetaData): Span {
  return { start: Number(md.dictionary_page_offset || md.data_page_offset), length: Number(md.total_compressed_size) }
}

/**
 * The tasks of a file, in row order, from row `fromRow` (piece `fromPiece` of its document) on. Row groups
 * under sliceBytes are merged into one task; a larger one is split into tasks of whole pages.
 */
export async function* planParquet(pq: ParquetFile, column: string,
                                   opts: { sliceBytes?: number; fromRow?: number; fromPiece?: number } = {}): AsyncGenerator<ParquetTask> {
  const sliceBytes = opts.sliceBytes ?? parquetDefaults.sliceBytes
  const fromRow = opts.fromRow ?? 0
  const spec = columnSpec(pq, column)
  let task: ParquetTask | undefined
  let taskSize = 0
  let firstPiece = opts.fromPiece ?? 0
  const newTask = (): ParquetTask => {
    const t: ParquetTask = { path: pq.path, column, spec, parts: [], firstPiece, bytes: 0 }
    firstPiece = 0
    return t
  }
  let groupStart = 0
  for (const group of pq.metadata.row_groups) {
    const rows = Number(group.num_rows)
    const groupEnd = groupStart + rows
    const groupBytes = Number(group.total_compressed_size ?? group.total_byte_size)
    if (groupEnd > fromRow && rows > 0) {
      const md = chunkMeta(group.columns, column)
      if (md === undefined) throw new InputError(`prepare: ${pq.path}: row group at row ${groupStart} ` +
        `has no column chunk "${column}" (corrupt footer?)`)
      const size = Number(md.total_uncompressed_size)
      if (!(size > sliceBytes) || rows === 1) {
        const span = chunkSpan(md)
        task ??= newTask()
        task.parts.push({ ranges: [[span.start, span.start + span.length]], firstRow: groupStart,
          rows: [Math.max(groupStart, fromRow), groupEnd], codec: md.codec })
        task.bytes += groupBytes
        taskSize += size
        if (taskSize >= sliceBytes) { yield task; task = undefined; taskSize = 0 }
      } else {
        if (task !== undefined) { yield task; task = undefined; taskSize = 0 }
        for (const { part, fraction } of await splitGroup(pq, spec, md, groupStart, rows, sliceBytes)) {
          if (part.rows[1] <= fromRow) continue
          part.rows[0] = Math.max(part.rows[0], fromRow)
          yield { ...newTask(), parts: [part], bytes: Math.round(groupBytes * fraction) }
        }
      }
    }
    groupStart = groupEnd
  }
  if (task !== undefined) yield task
}

/** Parts of whole pages of about sliceBytes each, covering a large row group's `rows` rows. */
async function splitGroup(pq: ParquetFile, spec: ColumnSpec, md: ColumnMetaData, groupStart: number, rows: number,
                          sliceBytes: number): Promise<{ part: ParquetPart; fraction: number }[]> {
  const span = chunkSpan(md)
  const where = `${pq.path}: rows ${groupStart}..${groupStart + rows - 1}`
  if (!Number.isSafeInteger(span.start) || !Number.isSafeInteger(span.length) || span.start < 0 || span.length < 0 ||
      span.start + span.length > pq.file.byteLength) {
    throw new InputError(`prepare: ${where}: column chunk [${span.start}, +${span.length}) lies outside the file`)
  }
  let pages
  try {
    pages = await readPageHeaders(pq.file, span.start, span.length, spec.limit)
  } catch (e) {
    throw new InputError(`prepare: ${where}: cannot read the page headers (${(e as Error).message})`)
  }
  const dict = pages[0]?.type === 'DICTIONARY_PAGE' ? pages[0] : undefined
  const data = pages.filter(p => p.type !== 'DICTIONARY_PAGE')
  const total = data.reduce((n, p) => n + p.rows, 0)
  if (total !== rows) throw new InputError(`prepare: ${where}: the pages hold ${total} rows, the footer says ${rows} (corrupt file?)`)
  const out: { part: ParquetPart; fraction: number }[] = []
  const perRow = Number(md.total_uncompressed_size) / Math.max(1, rows)
  let first = 0, row = groupStart, count = 0
  for (let i = 0; i < data.length; i++) {
    count += data[i]!.rows
    if (count * perRow < sliceBytes && i < data.length - 1) continue
    const pageRange: [number, number] = [data[first]!.start, data[i]!.end]
    const ranges: [number, number][] = dict === undefined ? [pageRange]
      : dict.end === pageRange[0] ? [[dict.start, pageRange[1]]] : [[dict.start, dict.end], pageRange]
    out.push({ part: { ranges, firstRow: row, rows: [row, row + count], codec: md.codec }, fraction: count / rows })
    row += count
    first = i + 1
    count = 0
  }
  return out
}

/** A document of a Parquet file: its row, its text, and whether its bytes were not UTF-8 (read as U+FFFD). */
interface ParquetDocument { row: number; text: string; invalidUtf8: boolean }

/** The documents of a task's parts, part by part; InputError (naming the file and rows) on anything unreadable. */
export async function* readTask(file: AsyncBuffer, task: ParquetTask): AsyncGenerator<ParquetDocument> {
  for (const part of task.parts) {
    let values: unknown[]
    try {
      values = await readPart(file, task.spec, part)
    } catch (e) {
      throw new InputError(`prepare: ${task.path}: cannot read rows ${part.rows[0]}..${part.rows[1] - 1} (${(e as Error).message})`)
    }
    for (let i = 0; i < values.length; i++) {
      const v = values[i], text = v instanceof InvalidUtf8 ? v.text : v
      if (typeof text !== 'string') {
        const got = text === null || text === undefined ? 'no value' : `a ${typeof text}`
        throw new InputError(`prepare: ${task.path}: row ${part.rows[0] + i} has ${got} in column "${task.column}", expected a string`)
      }
      yield { row: part.rows[0] + i, text, invalidUtf8: v instanceof InvalidUtf8 }
    }
  }
}

/** Opens the task's file, reads its documents, closes it. For worker threads, which get no ParquetFile. */
export async function* readTaskFile(task: ParquetTask): AsyncGenerator<ParquetDocument> {
  const fh = await open(task.path, 'r')
  try {
    yield* readTask(fileBuffer(fh, (await fh.stat()).size), task)
  } finally {
    await fh.close()
  }
}

/** Documents of an opened Parquet file on the calling thread (tests, benchmarks); closes it at the end. */
export async function* parquetDocuments(pq: ParquetFile, column: string, onBytes: (n: number) => void): AsyncGenerator<string> {
  try {
    for await (const task of planParquet(pq, column)) {
      for await (const { text } of readTask(pq.file, task)) yield text
      onBytes(task.bytes)
    }
  } finally {
    await pq.close()
  }
}
