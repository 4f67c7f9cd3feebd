// Parquet documents through hyparquet (+ hyparquet-compressors for zstd, gzip, brotli, lz4): one string
// column, read one row group at a time so memory stays bounded by the largest row group. The column is
// checked against the schema before anything is read. Before hyparquet decodes a column chunk its page headers
// are checked (checkPages: hyparquet loops forever on a v2 header missing a field) and the decompressors refuse
// a page larger than its chunk (guardedCompressors), so a corrupt file is an error, never a hang.

import { open, type FileHandle } from 'node:fs/promises'
import {
  parquetMetadataAsync, parquetRead, parquetSchema, type AsyncBuffer, type ColumnChunk, type Compressors, type FileMetaData,
} from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
import { parquetHeader } from 'hyparquet/src/column.js'
import { InputError } from '../../util/errors.js'

export interface ParquetFile {
  path: string
  file: AsyncBuffer
  metadata: FileMetaData
  rows: number
  close(): Promise<void>
}

async function readFully(fh: FileHandle, out: Uint8Array, position: number): Promise<void> {
  let off = 0
  while (off < out.length) {
    const { bytesRead } = await fh.read(out, off, out.length - off, position + off)
    if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${position + off}`)
    off += bytesRead
  }
}

/** Opens a Parquet file, reads its footer and checks that `column` is a top-level string column. */
export async function openParquet(path: string, column: string): Promise<ParquetFile> {
  const fh = await open(path, 'r')
  try {
    const { size } = await fh.stat()
    const file: AsyncBuffer = {
      byteLength: size,
      async slice(start: number, end?: number): Promise<ArrayBuffer> {
        const out = new Uint8Array((end ?? size) - start)
        await readFully(fh, out, start)
        return out.buffer
      },
    }
    let metadata: FileMetaData
    try {
      metadata = await parquetMetadataAsync(file)
    } catch (e) {
      throw new InputError(`prepare: ${path} is not a readable Parquet file (${(e as Error).message})`)
    }
    const columns = parquetSchema(metadata).children
    const col = columns.find(c => c.element.name === column)
    if (col === undefined) {
      const names = columns.map(c => c.element.name).join(', ')
      throw new InputError(`prepare: ${path} has no column "${column}" (columns: ${names}; pick one with --text-column)`)
    }
    if (col.element.type !== 'BYTE_ARRAY' || col.children.length > 0) {
      throw new InputError(`prepare: ${path} column "${column}" holds ${col.element.type ?? 'nested values'}, expected strings (pick another with --text-column)`)
    }
    return { path, file, metadata, rows: Number(metadata.num_rows), close: () => fh.close() }
  } catch (e) {
    await fh.close()
    throw e
  }
}

/** The decompressors, each refusing a page that claims more uncompressed bytes than `limit` (and, for Snappy,
 *  a page whose stream announces another length). */
function guardedCompressors(limit: number): Compressors {
  const out: Compressors = {}
  for (const [codec, decompress] of Object.entries(compressors) as [keyof Compressors, NonNullable<Compressors[keyof Compressors]>][]) {
    out[codec] = (input, outputLength) => {
      if (!(outputLength >= 0 && outputLength <= limit)) throw new Error(`a ${codec} page claims ${outputLength} bytes, more than its column chunk (${limit})`)
      if (codec === 'SNAPPY' && snappyLength(input) !== outputLength) throw new Error(`a SNAPPY page's length ${outputLength} disagrees with its stream`)
      return decompress(input, outputLength)
    }
  }
  return out
}

/** The uncompressed length a Snappy stream starts with (a varint), or -1. */
function snappyLength(input: Uint8Array): number {
  let n = 0
  for (let i = 0, shift = 1; i < Math.min(5, input.length); i++, shift *= 128) {
    n += (input[i]! & 0x7f) * shift
    if (input[i]! < 0x80) return n
  }
  return -1
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0

/** Walks the page headers of a column chunk; throws at the first that hyparquet could not decode safely. */
async function checkPages(file: AsyncBuffer, chunk: ColumnChunk | undefined, limit: number): Promise<void> {
  const md = chunk?.meta_data
  if (md === undefined) throw new Error('column chunk without metadata')
  const start = Number(md.dictionary_page_offset ?? md.data_page_offset), length = Number(md.total_compressed_size)
  if (!isCount(start) || !isCount(length) || start + length > file.byteLength) throw new Error(`column chunk [${start}, +${length}) lies outside the file`)
  const view = new DataView(await file.slice(start, start + length))
  const reader = { view, offset: 0 }
  while (reader.offset < length) {
    const h = parquetHeader(reader)
    const v1 = h.data_page_header, v2 = h.data_page_header_v2, dict = h.dictionary_page_header
    const ok = h.type !== undefined && isCount(h.compressed_page_size) && isCount(h.uncompressed_page_size) &&
      h.uncompressed_page_size <= limit && reader.offset + h.compressed_page_size <= length &&
      (h.type !== 'DATA_PAGE' || (v1 !== undefined && isCount(v1.num_values) && v1.encoding !== undefined)) &&
      (h.type !== 'DICTIONARY_PAGE' || (dict !== undefined && isCount(dict.num_values) && dict.encoding !== undefined)) &&
      (h.type !== 'DATA_PAGE_V2' || (v2 !== undefined && isCount(v2.num_values) && isCount(v2.num_nulls) && v2.num_nulls <= v2.num_values &&
        isCount(v2.num_rows) && v2.encoding !== undefined && isCount(v2.definition_levels_byte_length) &&
        isCount(v2.repetition_levels_byte_length) &&
        v2.definition_levels_byte_length + v2.repetition_levels_byte_length <= h.compressed_page_size))
    if (!ok) throw new Error(`bad page header at byte ${start + reader.offset}`)
    reader.offset += h.compressed_page_size
  }
}

/** Documents of an opened Parquet file, row group by row group. */
export async function* parquetDocuments(pq: ParquetFile, column: string, onBytes: (n: number) => void): AsyncGenerator<string> {
  let rowStart = 0
  let largest = 0
  for (const g of pq.metadata.row_groups) for (const c of g.columns) largest = Math.max(largest, Number(c.meta_data?.total_uncompressed_size ?? 0))
  const limit = Math.min(largest, 2 ** 31)
  const guarded = guardedCompressors(limit)
  try {
    for (const group of pq.metadata.row_groups) {
      const rowEnd = rowStart + Number(group.num_rows)
      let rows: unknown[][] = []
      try {
        const chunk = group.columns.find(c => c.meta_data?.path_in_schema.join('.') === column)
        await checkPages(pq.file, chunk, limit)
        await parquetRead({ file: pq.file, metadata: pq.metadata, columns: [column], rowStart, rowEnd, compressors: guarded, onComplete: r => { rows = r } })
      } catch (e) {
        throw new InputError(`prepare: ${pq.path}: cannot read rows ${rowStart}..${rowEnd - 1} (${(e as Error).message})`)
      }
      for (let i = 0; i < rows.length; i++) {
        const text = rows[i]![0]
        if (typeof text !== 'string') {
          throw new InputError(`prepare: ${pq.path}: row ${rowStart + i} has ${text === null || text === undefined ? 'no value' : `a ${typeof text}`} in column "${column}", expected a string`)
        }
        yield text
      }
      onBytes(Number(group.total_compressed_size ?? group.total_byte_size))
      rowStart = rowEnd
    }
  } finally {
    await pq.close()
  }
}
