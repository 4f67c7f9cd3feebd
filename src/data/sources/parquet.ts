// Parquet documents through hyparquet (+ hyparquet-compressors for zstd, gzip, brotli, lz4): one string
// column, read one row group at a time so memory stays bounded by the largest row group. The column is
// checked against the schema before anything is read.

import { open, type FileHandle } from 'node:fs/promises'
import { parquetMetadataAsync, parquetRead, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
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

/** Documents of an opened Parquet file, row group by row group. */
export async function* parquetDocuments(pq: ParquetFile, column: string, onBytes: (n: number) => void): AsyncGenerator<string> {
  let rowStart = 0
  try {
    for (const group of pq.metadata.row_groups) {
      const rowEnd = rowStart + Number(group.num_rows)
      let rows: unknown[][] = []
      try {
        await parquetRead({ file: pq.file, metadata: pq.metadata, columns: [column], rowStart, rowEnd, compressors, onComplete: r => { rows = r } })
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
