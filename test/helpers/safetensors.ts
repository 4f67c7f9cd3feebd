// Whole-file safetensors reading and writing for the tests (golden fixtures, round trips, refusals, fuzzing). It is built on
// src's streaming reader, readSafetensorsInto, so every test here runs the header checks that loading weights runs;
// src itself never holds a whole file (weights are streamed into their place), so this API lives with the tests.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeFloats, isFloat, readSafetensorsInto, writeSafetensorsTo, type Dtype, type WriteTensor } from '../../src/io/safetensors.js'
import { writeFilesAtomic } from '../../src/util/atomic.js'
import { fsReason, InputError } from '../../src/util/errors.js'

interface TensorEntry { dtype: Dtype; shape: number[]; bytes: Uint8Array }

export interface SafetensorsFile {
  path: string
  tensors: Map<string, TensorEntry>   // in the header's order
  metadata: Record<string, string>
}

const BYTES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, U16: 2, U8: 1 }

/** Reads and validates a safetensors file; every problem is an InputError naming the file. */
export function readSafetensors(path: string): SafetensorsFile {
  const tensors = new Map<string, TensorEntry>()
  let metadata: Record<string, string> = {}
  try {
    readSafetensorsInto(path, (infos, meta) => {
      metadata = meta
      for (const [name, t] of infos) tensors.set(name, { ...t, bytes: new Uint8Array(t.shape.reduce((a, b) => a * b, 1) * BYTES[t.dtype]) })
      return new Map([...tensors].map(([name, t]) => [name, t.bytes]))
    })
  } catch (e) {
    if (e instanceof InputError || (e as NodeJS.ErrnoException).code === undefined) throw e
    throw new InputError(`safetensors: cannot read ${path}: ${fsReason(e)}`)
  }
  return { path, tensors, metadata }
}

let scratch: string | undefined

/** Reads the bytes of a safetensors file as readSafetensors reads the file (through a temp file); errors name `path`. */
export function parseSafetensors(buf: Uint8Array, path: string): SafetensorsFile {
  if (scratch === undefined) {
    const dir = scratch = mkdtempSync(join(tmpdir(), 'llmts-st-parse-'))
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  }
  const tmp = join(scratch, 'parse.safetensors')
  writeFileSync(tmp, buf)
  try { return { ...readSafetensors(tmp), path } } catch (e) {
    throw e instanceof InputError ? new InputError(e.message.replaceAll(tmp, path)) : e
  }
}

/** A tensor's entry and element count; InputError when the file has no such tensor. */
function entry(file: SafetensorsFile, name: string): { t: TensorEntry; n: number } {
  const t = file.tensors.get(name)
  if (t === undefined) throw new InputError(`safetensors: ${file.path} has no tensor ${name}`)
  return { t, n: t.bytes.byteLength / BYTES[t.dtype] }
}

/** A tensor's values as float32 (F32, BF16 and F16 converted by src's decodeFloats). */
export function toFloat32(file: SafetensorsFile, name: string): Float32Array {
  const { t, n } = entry(file, name)
  if (!isFloat(t.dtype)) throw new InputError(`safetensors: ${file.path}: tensor ${name} is ${t.dtype}, expected a float type`)
  const out = new Float32Array(n)
  decodeFloats(t.dtype, t.bytes, out)
  return out
}

/** A tensor's values as int32 (I32, I64 within range, U16, U8). */
export function toInt32(file: SafetensorsFile, name: string): Int32Array {
  const { t, n } = entry(file, name)
  const dv = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength)
  const out = new Int32Array(n)
  for (let i = 0; i < n; i++) {
    switch (t.dtype) {
      case 'I32': out[i] = dv.getInt32(4 * i, true); break
      case 'I64': out[i] = Number(dv.getBigInt64(8 * i, true)); break
      case 'U16': out[i] = dv.getUint16(2 * i, true); break
      case 'U8': out[i] = dv.getUint8(i); break
      default: throw new InputError(`safetensors: ${file.path}: tensor ${name} is ${t.dtype}, expected an integer type`)
    }
  }
  return out
}

/** Writes tensors (in the given order) and string metadata to `path` atomically, as checkpoints and exports do. */
export function writeSafetensors(path: string, tensors: WriteTensor[], metadata: Record<string, string> = {}): void {
  writeFilesAtomic([{ path, write: w => writeSafetensorsTo(w, tensors, metadata) }])
}
