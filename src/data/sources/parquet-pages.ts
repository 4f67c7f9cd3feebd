// Page-level Parquet reading for one string column, on whichever thread runs the task: read a part's byte
// ranges (whole pages), check every page header before hyparquet's readColumn decodes it (hyparquet loops
// forever on a v2 header missing a field), and decompress through codecs that refuse a page larger than the
// column's largest chunk, so a corrupt file is an error, never a hang. Uses hyparquet's readColumn directly
// (typed, but not in its index): that is what lets a task decode a slice of a row group without the footer.

import { isUtf8 } from 'node:buffer'
import { compressors } from 'hyparquet-compressors'
import { readColumn, parquetHeader } from 'hyparquet/src/column.js'
import { DEFAULT_PARSERS } from 'hyparquet/src/convert.js'
import type { AsyncBuffer, CompressionCodec, Compressors, PageHeader, ParquetType, SchemaTree } from 'hyparquet'

/** What readColumn needs besides the bytes; plain data, so it crosses to a worker thread. */
export interface ColumnSpec {
  pathInSchema: string[]
  schemaPath: SchemaTree[]       // the root and the column, their children dropped
  type: ParquetType
  limit: number                  // largest uncompressed page accepted: the column's largest chunk
}

/** File rows [rows[0], rows[1]) of one row group, decoded from whole pages. */
export interface ParquetPart {
  ranges: [number, number][]     // byte ranges [start, end), concatenated: the dictionary page if any, then data pages
  firstRow: number               // file row of the first data page in `ranges`
  rows: [number, number]
  codec: CompressionCodec
}

interface PageInfo {
  start: number; end: number     // bytes of header + page
  type: PageHeader['type']
  rows: number                   // rows of a data page (0 for a dictionary page)
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0

/** Throws unless hyparquet can decode the page of header `h` safely; returns the rows it holds. */
function checkHeader(h: PageHeader, limit: number, room: number): number {
  const v1 = h.data_page_header, v2 = h.data_page_header_v2, dict = h.dictionary_page_header
  const ok = h.type !== undefined && isCount(h.compressed_page_size) && isCount(h.uncompressed_page_size) &&
    h.uncompressed_page_size <= limit && h.compressed_page_size <= room &&
    (h.type !== 'DATA_PAGE' || (v1 !== undefined && isCount(v1.num_values) && v1.encoding !== undefined)) &&
    (h.type !== 'DICTIONARY_PAGE' || (dict !== undefined && isCount(dict.num_values) && dict.encoding !== undefined)) &&
    (h.type !== 'DATA_PAGE_V2' || (v2 !== undefined && isCount(v2.num_values) && isCount(v2.num_nulls) && v2.num_nulls <= v2.num_values &&
      isCount(v2.num_rows) && v2.encoding !== undefined && isCount(v2.definition_levels_byte_length) &&
      isCount(v2.repetition_levels_byte_length) &&
      v2.definition_levels_byte_length + v2.repetition_levels_byte_length <= h.compressed_page_size))
  if (!ok) throw new Error('bad page header')
  if (h.type === 'DATA_PAGE') return v1!.num_values // a flat column: one value (or null) per row
  if (h.type === 'DATA_PAGE_V2') return v2!.num_rows
  if (h.type === 'DICTIONARY_PAGE') return 0
  throw new Error(`unsupported page type ${h.type}`)
}

/** Checks every page header in `view` (whole pages back to back). */
function checkPages(view: DataView, limit: number, at: (offset: number) => number): void {
  const reader = { view, offset: 0 }
  while (reader.offset < view.byteLength) {
    const start = reader.offset
    try {
      const h = parquetHeader(reader)
      checkHeader(h, limit, view.byteLength - reader.offset)
      reader.offset += h.compressed_page_size
    } catch (e) {
      throw new Error(`${(e as Error).message} at byte ${at(start)}`)
    }
  }
}

/**
 * The pages of the column chunk at [start, start + length): headers read one at a time (a small read each,
 * never the whole chunk), each checked. For splitting a large row group at page boundaries.
 */
export async function readPageHeaders(file: AsyncBuffer, start: number, length: number, limit: number): Promise<PageInfo[]> {
  const pages: PageInfo[] = []
  const end = start + length
  for (let offset = start; offset < end;) {
    let info: PageInfo | undefined
    for (let window = 16 << 10; info === undefined; window *= 16) {
      const bytes = await file.slice(offset, Math.min(end, offset + window))
      const reader = { view: new DataView(bytes), offset: 0 }
      try {
        const h = parquetHeader(reader)
        const rows = checkHeader(h, limit, end - offset - reader.offset)
        info = { start: offset, end: offset + reader.offset + h.compressed_page_size, type: h.type, rows }
      } catch (e) {
        const truncated = e instanceof RangeError && offset + window < end && window < 16 << 20
        if (!truncated) throw new Error(`${e instanceof RangeError ? 'bad page header' : (e as Error).message} at byte ${offset}`)
      }
    }
    pages.push(info)
    offset = info.end
  }
  return pages
}

/** The decompressors, each refusing a page that claims more uncompressed bytes than `limit` (and, for Snappy,
 *  a page whose stream announces another length). */
function guardedCompressors(limit: number): Compressors {
  const out: Compressors = {}
  for (const [codec, decompress] of Object.entries(compressors) as [keyof Compressors, NonNullable<Compressors[keyof Compressors]>][]) {
    out[codec] = (input, outputLength) => {
      if (!(outputLength >= 0 && outputLength <= limit)) throw new Error(
        `a ${codec} page claims ${outputLength} bytes, more than its column chunk (${limit})`)
      if (codec === 'SNAPPY' && snappyLength(input) !== outputLength) throw new Error(
        `a SNAPPY page's length ${outputLength} disagrees with its stream`)
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

/** The bytes of `ranges`, concatenated; throws if one lies outside the file. */
async function readRanges(file: AsyncBuffer, ranges: [number, number][]): Promise<Uint8Array> {
  let total = 0
  for (const [s, e] of ranges) {
    if (!isCount(s) || !isCount(e) || e < s || e > file.byteLength) throw new Error(
      `byte range [${s}, ${e}) lies outside the file (${file.byteLength} bytes)`)
    total += e - s
  }
  if (ranges.length === 1) return new Uint8Array(await file.slice(ranges[0]![0], ranges[0]![1]))
  const out = new Uint8Array(total)
  let off = 0
  for (const [s, e] of ranges) {
    out.set(new Uint8Array(await file.slice(s, e)), off)
    off += e - s
  }
  return out
}

/** A value whose bytes are not UTF-8: its text as hyparquet decodes it (U+FFFD for the bad bytes), marked so that the
 *  row can be counted; a flag on a string would not survive, and hyparquet hides the bytes once decoded. */
export class InvalidUtf8 {
  constructor(readonly text: string) {}
}

const utf8 = new TextDecoder()   // hyparquet's own: a BOM dropped, bad bytes U+FFFD
// hyparquet's parsers with the string one checked (it also decodes a dictionary's values, which rows then share)
const parsers = {
  ...DEFAULT_PARSERS,
  stringFromBytes(bytes: Uint8Array | undefined): string | InvalidUtf8 | undefined {
    if (bytes === undefined) return undefined
    const text = utf8.decode(bytes)
    return !text.includes('\ufffd') || isUtf8(bytes) ? text : new InvalidUtf8(text)   // a U+FFFD the bytes spell is text
  },
}

/** The values of the part's rows, in order (strings when the file is sound, InvalidUtf8 for bytes that are not
 *  UTF-8; callers check). */
export async function readPart(file: AsyncBuffer, spec: ColumnSpec, part: ParquetPart): Promise<unknown[]> {
  const bytes = await readRanges(file, part.ranges)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  checkPages(view, spec.limit, offset => fileOffset(part.ranges, offset))
  const [a, b] = part.rows
  const decoder = {
    pathInSchema: spec.pathInSchema, schemaPath: spec.schemaPath, type: spec.type, element: spec.schemaPath.at(-1)!.element,
    codec: part.codec, parsers, compressors: guardedCompressors(spec.limit), utf8: true,
  }
  const select = { groupStart: part.firstRow, selectStart: a - part.firstRow, selectEnd: b - part.firstRow, groupRows: b - part.firstRow }
  const { data, skipped } = readColumn({ view, offset: 0 }, select, decoder)
  const values: unknown[] = []
  let row = part.firstRow + skipped // file row of data[0][0]
  for (const chunk of data) {
    for (let i = Math.max(0, a - row); i < chunk.length && row + i < b; i++) values.push(chunk[i])
    row += chunk.length
  }
  if (values.length !== b - a) throw new Error(`the pages hold ${values.length} of the ${b - a} rows`)
  return values
}

/** The file offset of byte `offset` of the concatenation of `ranges`. */
function fileOffset(ranges: [number, number][], offset: number): number {
  let rest = offset
  for (const [s, e] of ranges) {
    if (rest < e - s) return s + rest
    rest -= e - s
  }
  return ranges.at(-1)?.[1] ?? 0
}
