// safetensors reader and writer (the format Hugging Face uses for weights): an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__: {string: string}}, then raw
// little-endian tensor bytes. The reader validates every offset against the file; readSafetensorsInto streams a
// file of any size into arrays the caller owns (no copy of the file in memory); the writer is atomic.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { fsReason, InputError, shown } from '../util/errors.js'
import type { AtomicWriter } from '../util/atomic.js'

export type Dtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'U16' | 'U8'

const BYTES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, U16: 2, U8: 1 }

/** Checks a safetensors file from its header alone (the header, and that its tensors end exactly at the file's
 *  end), without reading the data: for files too large to read only to check them. Returns the data's size. */
export function checkSafetensorsFile(path: string): number {
  const fd = openSync(path, 'r')
  try {
    const size = fstatSync(fd).size
    return size - readHeader(fd, size, path).prefix.byteLength
  } finally {
    closeSync(fd)
  }
}

/** A tensor as the header describes it (its bytes not read). */
export interface TensorInfo { dtype: Dtype; shape: number[] }

/** A safetensors file's validated header alone (the data not read); every problem, fs errors included, is an
 *  InputError naming the file. */
export function readSafetensorsHeader(path: string): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  let fd: number
  try { fd = openSync(path, 'r') } catch (e) { throw new InputError(`safetensors: cannot read ${path}: ${fsReason(e)}`) }
  try {
    const { spans, metadata } = readHeader(fd, fstatSync(fd).size, path)
    return { tensors: new Map(spans.map(t => [t.name, { dtype: t.dtype, shape: t.shape }])), metadata }
  } catch (e) {
    throw e instanceof InputError ? e : new InputError(`safetensors: cannot read ${path}: ${fsReason(e)}`)
  } finally {
    closeSync(fd)
  }
}

const CHUNK = 16 * 2 ** 20          // bytes per read while streaming: large reads, while the chunk is still warm to hash
const MAX_HEADER = 100_000_000      // the reference library's limit: a larger stated length is damage, not a header to allocate

/** Reads the 8-byte length and the JSON header of an open file of `size` bytes and validates them. */
function readHeader(fd: number, size: number, path: string): { prefix: Buffer; spans: Span[]; metadata: Record<string, string> } {
  const head = Buffer.alloc(Math.min(size, 8))
  readFully(fd, head, 0, path)
  const stated = size < 8 ? 0 : Number(head.readBigUInt64LE(0))
  if (stated > MAX_HEADER && stated <= size - 8) {
    throw new InputError(`safetensors: ${path}: header length ${stated} exceeds the format's ${MAX_HEADER} bytes (corrupt or not safetensors)`)
  }
  const prefix = Buffer.alloc(Math.min(size, 8 + stated))
  readFully(fd, prefix, 0, path)
  return { prefix, ...parseHeader(prefix, size, path) }
}

/** Where `readSafetensorsInto` puts a tensor: bytes of its exact size, or a function given each chunk of it (whole
 *  elements) with the chunk's byte offset in the tensor, for a caller that converts as it goes (valid during the call). */
export type TensorSink = Uint8Array | ((chunk: Uint8Array, at: number) => void)

/** Reads a safetensors file straight into memory the caller owns, for files too large to hold twice or to read in one
 *  call (a Buffer read stops at 2 GiB): `place` gets every tensor's validated description and returns, per name, where
 *  it goes (a tensor not named is skipped, or read and dropped when `onBytes` is given). Every byte of the file goes to
 *  `onBytes` in file order (a checksum). No read is larger than the header or opts.chunkBytes (a multiple of 8, so a
 *  chunk holds whole elements; default 16 MiB). Header problems are InputErrors naming the file; fs errors are thrown
 *  as is. */
export function readSafetensorsInto(path: string, place: (tensors: Map<string, TensorInfo>, metadata: Record<string, string>) => Map<string, TensorSink>,
                                    onBytes?: (chunk: Uint8Array) => void, opts: { chunkBytes?: number } = {}): void {
  const chunk = opts.chunkBytes ?? CHUNK
  if (!(Number.isSafeInteger(chunk) && chunk > 0 && chunk % 8 === 0)) throw new Error(`safetensors: chunkBytes ${chunk} is not a positive multiple of 8`)
  const fd = openSync(path, 'r')
  try {
    const { prefix, spans, metadata } = readHeader(fd, fstatSync(fd).size, path)
    const into = place(new Map(spans.map(t => [t.name, { dtype: t.dtype, shape: t.shape }])), metadata)
    onBytes?.(prefix)
    let scratch: Uint8Array | null = null
    for (const t of spans.sort((a, b) => a.begin - b.begin)) {   // parseHeader checked: no gaps, no overlap, to the end
      const dest = into.get(t.name)
      if (dest === undefined && onBytes === undefined) continue
      if (dest instanceof Uint8Array && dest.byteLength !== t.end - t.begin) {
        throw new Error(`safetensors: ${t.name} needs ${t.end - t.begin} bytes, given ${dest.byteLength}`)
      }
      for (let at = 0; at < t.end - t.begin; at += chunk) {
        const n = Math.min(chunk, t.end - t.begin - at)
        const view = dest instanceof Uint8Array ? dest.subarray(at, at + n) : (scratch ??= new Uint8Array(chunk)).subarray(0, n)
        readFully(fd, view, prefix.byteLength + t.begin + at, path)
        onBytes?.(view)
        if (typeof dest === 'function') dest(view, at)
      }
    }
  } finally {
    closeSync(fd)
  }
}

/** Fills `buf` from `position`; a file that ends first (shortened while being read) is an InputError. */
function readFully(fd: number, buf: Uint8Array, position: number, path: string): void {
  for (let off = 0; off < buf.byteLength;) {
    const n = readSync(fd, buf, off, buf.byteLength - off, position + off)
    if (n === 0) throw new InputError(`safetensors: ${path} ended at byte ${position + off} while being read (truncated meanwhile?)`)
    off += n
  }
}

interface Span { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }   // byte offsets in the data

/** Validates the header (`prefix`: the length and the JSON) of a file of `fileBytes` bytes; every problem is an
 *  InputError naming the file. Tensor spans are checked against their dtype and shape, the data and each other. */
function parseHeader(prefix: Uint8Array, fileBytes: number, path: string): { spans: Span[]; metadata: Record<string, string> } {
  const bad = (what: string): never => { throw new InputError(`safetensors: ${path}: ${what}`) }
  if (fileBytes < 8) bad(`file is ${fileBytes} bytes, too short for a header (truncated?)`)
  const stated = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true)   // a u64: shown exactly
  if (stated > BigInt(fileBytes - 8)) bad(`header length ${stated} exceeds the file size ${fileBytes} (truncated or not safetensors)`)
  const headerLen = Number(stated)
  let header: unknown
  try { header = JSON.parse(Buffer.from(prefix.buffer, prefix.byteOffset + 8, headerLen).toString('utf8')) } catch {
    bad('header is not valid JSON (corrupt or not a safetensors file)')
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('header is not a JSON object')
  const dataLen = fileBytes - 8 - headerLen
  const spans: Span[] = []
  let metadata: Record<string, string> = {}
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('__metadata__ is not an object')
      metadata = {}
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') bad(`__metadata__.${k} is not a string`)
        metadata[k] = v as string
      }
      continue
    }
    const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown }
    if (typeof t !== 'object' || t === null) bad(`tensor ${name} has no description`)
    if (typeof t.dtype !== 'string' || !(t.dtype in BYTES)) bad(`tensor ${name} has unsupported dtype ${shown(t.dtype)} ` +
      `(expected one of ${Object.keys(BYTES).join(', ')})`)
    const dtype = t.dtype as Dtype
    if (!Array.isArray(t.shape) || !t.shape.every(d => Number.isSafeInteger(d) && d >= 0)) bad(`tensor ${name} has an invalid shape`)
    const shape = t.shape as number[]
    const off = t.data_offsets
    if (!Array.isArray(off) || off.length !== 2 || !off.every(d => Number.isSafeInteger(d) && d >= 0)) bad(`tensor ${name} has invalid data_offsets`)
    const [begin, end] = off as [number, number]
    const want = shape.reduce((a, b) => a * b, 1) * BYTES[dtype]
    if (end < begin || end - begin !== want) bad(`tensor ${name} spans ${end - begin} bytes, its shape [${shape}] ${dtype} needs ${want}`)
    if (end > dataLen) bad(`tensor ${name} ends at byte ${end}, past the data (${dataLen} bytes; truncated?)`)
    spans.push({ name, dtype, shape, begin, end })
  }
  // as the reference library requires: the tensors fill the data exactly, with no overlap (a corrupt or hand-edited
  // header), gap or bytes after the last (a file concatenated or written over by another tool)
  const sorted = spans.filter(t => t.end > t.begin).sort((a, b) => a.begin - b.begin)
  let at = 0
  for (const [i, t] of sorted.entries()) {
    if (t.begin < at) bad(`tensors ${sorted[i - 1]!.name} and ${t.name} overlap (bytes ${t.begin}..${at} of the data)`)
    if (t.begin > at) bad(`bytes ${at}..${t.begin} of the data, before tensor ${t.name}, belong to no tensor`)
    at = t.end
  }
  if (at < dataLen) bad(`the tensors end at byte ${at} of the data, the file has ${dataLen - at} more (padded or concatenated?)`)
  return { spans, metadata }
}

export function isFloat(dtype: Dtype): dtype is 'F32' | 'BF16' | 'F16' { return dtype === 'F32' || dtype === 'BF16' || dtype === 'F16' }

/** Decodes whole elements of a float tensor's little-endian bytes into out[0 .. bytes / element size). */
export function decodeFloats(dtype: 'F32' | 'BF16' | 'F16', bytes: Uint8Array, out: Float32Array): void {
  const n = bytes.byteLength / BYTES[dtype], dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  switch (dtype) {
    case 'F32':
      if (bytes.byteOffset % 4 === 0) out.set(new Float32Array(bytes.buffer, bytes.byteOffset, n))
      else for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true)
      break
    case 'BF16': {
      const u = new Uint32Array(out.buffer, out.byteOffset, n)
      for (let i = 0; i < n; i++) u[i] = dv.getUint16(2 * i, true) << 16
      break
    }
    case 'F16': for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true)); break
  }
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1
  const e = (h >> 10) & 0x1f
  const f = h & 0x3ff
  if (e === 0) return s * f * 2 ** -24
  if (e === 31) return f ? NaN : s * Infinity
  return s * (1 + f / 1024) * 2 ** (e - 15)
}

/** float32 -> bfloat16 bits, round to nearest even (NaN stays NaN). */
export function floatToBf16(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length)
  const out = new Uint16Array(x.length)
  for (let i = 0; i < x.length; i++) {
    const v = u[i]!
    if ((v & 0x7fffffff) > 0x7f800000) { out[i] = (v >>> 16) | 0x40; continue }
    out[i] = (v + 0x7fff + ((v >>> 16) & 1)) >>> 16
  }
  return out
}

/** `data` may be a function that makes the bytes when the writer reaches the tensor: a writer of converted tensors
 *  (transposed, bf16) then holds one at a time, not a converted copy of the whole model. */
export interface WriteTensor { name: string; dtype: Dtype; shape: number[]; data: ArrayBufferView | (() => ArrayBufferView) }

/** The safetensors file of `tensors` into an atomic writer (its owner commits it). */
export function writeSafetensorsTo(w: Pick<AtomicWriter, 'write'>, tensors: WriteTensor[], metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = {}
  if (Object.keys(metadata).length > 0) header['__metadata__'] = metadata
  let offset = 0
  for (const t of tensors) {
    if (t.name === '__metadata__') throw new Error('safetensors: a tensor cannot be named __metadata__ (the header\'s metadata key)')
    if (t.name in header) throw new Error(`safetensors: two tensors are named ${t.name} (a file holds one tensor per name)`)
    const want = t.shape.reduce((a, b) => a * b, 1) * BYTES[t.dtype]
    if (typeof t.data !== 'function') checkBytes(t, t.data, want)
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + want] }
    offset += want
  }
  let json = JSON.stringify(header)
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8) // align data to 8 bytes
  const jsonBytes = Buffer.from(json, 'utf8')
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(jsonBytes.byteLength))
  w.write(len)
  w.write(jsonBytes)
  for (const t of tensors) {
    const data = typeof t.data === 'function' ? checkBytes(t, t.data(), t.shape.reduce((a, b) => a * b, 1) * BYTES[t.dtype]) : t.data
    w.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
  }
}

function checkBytes(t: WriteTensor, data: ArrayBufferView, want: number): ArrayBufferView {
  if (data.byteLength !== want) throw new Error(`safetensors: ${t.name} has ${data.byteLength} bytes, shape [${t.shape}] ${t.dtype} needs ${want}`)
  return data
}
