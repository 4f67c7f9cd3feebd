// Test fixtures for Parquet: varied seeded documents (makeDocs), and files with version-1 data pages
// (DATA_PAGE), as pyarrow writes by default (FineWeb's files) and hyparquet-writer never does (parquetV1).
// A file is written by hyparquet-writer with v2 pages, then each page
// of the text column is re-framed as v1: for a required column the bytes after the header are the same; for an
// optional, uncompressed one the definition levels get v1's 4-byte length prefix. The footer is rewritten.

import type { FileMetaData } from 'hyparquet'
import { parquetMetadata } from 'hyparquet'
import { parquetHeader } from 'hyparquet/src/column.js'
import { parquetWriteBuffer, ByteWriter } from 'hyparquet-writer'
import { writePageHeader } from 'hyparquet-writer/src/datapage.js'
import { writeMetadata } from 'hyparquet-writer/src/metadata.js'
import { Rng } from '../../src/util/rng.js'

const WORDS = ['the', 'whale', 'sea', 'Ahab', 'ship', 'ocean', 'é', '中文', '🎉', 'of', 'and', '\n', '  ', 'Queequeg', '1851', ',', '.']

/** `n` documents of varied length (some empty, some long), seeded. */
export function makeDocs(n: number, seed: number): string[] {
  const rng = new Rng(seed)
  return Array.from({ length: n }, (_, i) => {
    const len = i % 17 === 0 ? 0 : rng.int(i % 23 === 0 ? 3000 : 120)
    return Array.from({ length: len }, () => WORDS[rng.int(WORDS.length)]).join(' ')
  })
}

export interface V1Options {
  rowGroupSize: number
  pageSize: number
  nullable: boolean            // true: optional column, written uncompressed (levels must be re-framed)
}

/** Bytes of a Parquet file holding `docs` (strings, or null where nullable) in column "text", with v1 pages. */
export function parquetV1(docs: (string | null)[], opts: V1Options): Uint8Array {
  const v2 = new Uint8Array(parquetWriteBuffer({
    columnData: [{ name: 'text', data: docs, type: 'STRING', nullable: opts.nullable, encoding: 'PLAIN', offsetIndex: false }],
    codec: opts.nullable ? 'UNCOMPRESSED' : 'SNAPPY', rowGroupSize: opts.rowGroupSize, pageSize: opts.pageSize, statistics: false,
  }))
  const md: FileMetaData = parquetMetadata(v2.buffer)
  const out = new ByteWriter()
  out.appendUint32(0x31524150) // PAR1
  for (const group of md.row_groups) {
    const chunk = group.columns[0]!
    const meta = chunk.meta_data!
    const start = Number(meta.dictionary_page_offset || meta.data_page_offset)
    const end = start + Number(meta.total_compressed_size)
    const chunkStart = out.offset
    let uncompressed = 0
    meta.dictionary_page_offset = undefined
    const reader = { view: new DataView(v2.buffer, v2.byteOffset, v2.byteLength), offset: start }
    while (reader.offset < end) {
      const h = parquetHeader(reader)
      let body = v2.subarray(reader.offset, reader.offset + h.compressed_page_size)
      reader.offset += h.compressed_page_size
      const pageStart = out.offset
      if (h.type === 'DATA_PAGE_V2') {
        const d = h.data_page_header_v2!
        if (d.repetition_levels_byte_length !== 0) throw new Error('parquetV1: repeated columns are not supported')
        const defs = d.definition_levels_byte_length
        if (defs > 0) {
          const framed = new Uint8Array(body.length + 4)
          new DataView(framed.buffer).setUint32(0, defs, true)
          framed.set(body, 4)
          body = framed
        }
        const size = h.uncompressed_page_size - h.compressed_page_size + body.length // levels never compressed in v2
        h.type = 'DATA_PAGE'
        h.data_page_header = { num_values: d.num_values, encoding: d.encoding, definition_level_encoding: 'RLE', repetition_level_encoding: 'RLE' }
        h.data_page_header_v2 = undefined
        h.uncompressed_page_size = size
        h.compressed_page_size = body.length
      } else if (h.type === 'DICTIONARY_PAGE') {
        meta.dictionary_page_offset = BigInt(pageStart)
      }
      writePageHeader(out, h)
      uncompressed += out.offset - pageStart + h.uncompressed_page_size
      out.appendBytes(body)
    }
    meta.data_page_offset = BigInt(firstDataPage(out, chunkStart))
    meta.total_compressed_size = BigInt(out.offset - chunkStart)
    meta.total_uncompressed_size = BigInt(uncompressed)
    meta.encoding_stats = undefined
    chunk.file_offset = BigInt(chunkStart)
    group.total_byte_size = BigInt(uncompressed)
    group.total_compressed_size = BigInt(out.offset - chunkStart)
    group.file_offset = BigInt(chunkStart)
  }
  const footer = out.offset
  writeMetadata(out, md)
  out.appendUint32(out.offset - footer)
  out.appendUint32(0x31524150)
  return new Uint8Array(out.getBuffer())
}

/** Offset of the first data page of the chunk written at `chunkStart`. */
function firstDataPage(out: ByteWriter, chunkStart: number): number {
  const bytes = new Uint8Array(out.getBuffer())
  const reader = { view: new DataView(bytes.buffer), offset: chunkStart }
  for (;;) {
    const at = reader.offset
    const h = parquetHeader(reader)
    if (h.type === 'DATA_PAGE') return at
    reader.offset += h.compressed_page_size
  }
}
