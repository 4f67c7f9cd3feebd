// The safetensors reader against files built byte by byte from the format's definition (8-byte little-endian
// header length, JSON header, raw little-endian data): values and metadata read back, and headers whose tensor
// spans are impossible (overlapping, wrong size, past the end) refused with an InputError naming the file.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkSafetensorsFile, readSafetensorsInto } from '../../src/io/safetensors.js'
import { parseSafetensors, toFloat32 } from '../helpers/safetensors.js'
import { InputError } from '../../src/util/errors.js'

/** A file with the given header and the f32 values as its data. */
function file(header: Record<string, unknown>, values: number[]): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header))
  const out = new Uint8Array(8 + json.length + 4 * values.length)
  const dv = new DataView(out.buffer)
  dv.setBigUint64(0, BigInt(json.length), true)
  out.set(json, 8)
  values.forEach((v, i) => dv.setFloat32(8 + json.length + 4 * i, v, true))
  return out
}

test('two F32 tensors and the metadata read back', () => {
  const f = parseSafetensors(file({
    __metadata__: { format: 'pt' },
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    b: { dtype: 'F32', shape: [1, 2], data_offsets: [8, 16] },
  }, [1.5, -2, 3.25, 4]), 'x.safetensors')
  assert.deepEqual([...toFloat32(f, 'a')], [1.5, -2])
  assert.deepEqual([...toFloat32(f, 'b')], [3.25, 4])
  assert.deepEqual(f.metadata, { format: 'pt' })
})

test('impossible spans and non-string metadata are refused, naming the file', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, /tensors a and b overlap/],
    [{ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, /tensors a and b overlap/],
    [{ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, /spans 8 bytes, its shape \[3\] F32 needs 12/],
    [{ a: { dtype: 'F32', shape: [4], data_offsets: [4, 20] } }, /past the data/],
    // the tensors must fill the data: no gap before or between them, nothing after them (the reference library's rule)
    [{ a: { dtype: 'F32', shape: [3], data_offsets: [4, 16] } }, /bytes 0\.\.4 of the data, before tensor a, belong to no tensor/],
    [{ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } },
      /bytes 4\.\.8 of the data, before tensor b, belong to no tensor/],
    [{ a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } }, /the tensors end at byte 12 of the data, the file has 4 more/],
    [{ __metadata__: { n: 1 } }, /__metadata__\.n is not a string/],
    [{ __metadata__: ['x'] }, /__metadata__ is not an object/],
  ]
  for (const [header, re] of cases) {
    assert.throws(() => parseSafetensors(file(header, [1, 2, 3, 4]), 'bad.safetensors'),
      (e: unknown) => e instanceof InputError && /bad\.safetensors/.test(e.message) && re.test(e.message), JSON.stringify(header))
  }
})

// each check at its exact boundary: U8 tensors make one-byte overlaps and remainders possible
test('one byte of overlap, one byte after the tensors, a header length one byte past the file: all refused', () => {
  const refused = (buf: Uint8Array, re: RegExp): void => {
    assert.throws(() => parseSafetensors(buf, 'edge.safetensors'),
      (e: unknown) => e instanceof InputError && /edge\.safetensors/.test(e.message) && re.test(e.message))
  }
  refused(file({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [5], data_offsets: [3, 8] } }, [1, 2]),
    /tensors a and b overlap \(bytes 3\.\.4 of the data\)/)
  refused(file({ a: { dtype: 'U8', shape: [7], data_offsets: [0, 7] } }, [1, 2]), /the tensors end at byte 7 of the data, the file has 1 more/)
  const long = file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, [1])
  new DataView(long.buffer).setBigUint64(0, BigInt(long.length - 8 + 1), true)
  refused(long, new RegExp(`header length ${long.length - 7} exceeds the file size ${long.length} `))
})

test('checkSafetensorsFile: the header alone, the same refusals, and the tensors must end at the file\'s end', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llmts-st-'))
  try {
    const header = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }
    const good = join(dir, 'good.safetensors'), padded = join(dir, 'padded.safetensors'), short = join(dir, 'short.safetensors')
    const overlap = join(dir, 'overlap.safetensors')
    writeFileSync(good, file(header, [1, 2, 3, 4]))
    writeFileSync(padded, file(header, [1, 2, 3, 4, 5]))
    writeFileSync(short, file(header, [1, 2, 3]))
    writeFileSync(overlap, file({ ...header, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, [1, 2, 3, 4]))
    assert.equal(checkSafetensorsFile(good), 16)
    assert.throws(() => checkSafetensorsFile(padded), /padded\.safetensors: the tensors end at byte 16 of the data, the file has 4 more \(padded or concatenated\?\)/)
    assert.throws(() => checkSafetensorsFile(short), /tensor b ends at byte 16, past the data \(12 bytes/)
    assert.throws(() => checkSafetensorsFile(overlap), /tensors a and b overlap/)
    const huge = join(dir, 'huge.safetensors')   // a u64 header length above 2^53 is printed exactly, not via a double
    const bytes = Buffer.from(file(header, [1, 2, 3, 4]))
    bytes.writeBigUInt64LE(2n ** 63n + 1n, 0)
    writeFileSync(huge, bytes)
    for (const read of [() => checkSafetensorsFile(huge), () => parseSafetensors(bytes, huge)]) {
      assert.throws(read, /huge\.safetensors: header length 9223372036854775809 exceeds the file size \d+ \(truncated or not safetensors\)/)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('readSafetensorsInto: tensors into the caller\'s bytes (stored out of name order), one not asked for skipped; every byte of the file passes onBytes in order', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llmts-st-into-'))
  try {
    const bytes = file({
      __metadata__: { format: 'pt' },
      b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      c: { dtype: 'F32', shape: [1], data_offsets: [16, 20] },
    }, [1.5, -2, 3.25, 4, 7])
    const path = join(dir, 'x.safetensors')
    writeFileSync(path, bytes)
    const a = new Float32Array(2), b = new Float32Array(2), seen: number[] = []
    readSafetensorsInto(path, (tensors, metadata) => {
      assert.deepEqual([...tensors.keys()].sort(), ['a', 'b', 'c'])
      assert.deepEqual(tensors.get('b'), { dtype: 'F32', shape: [2] })
      assert.deepEqual(metadata, { format: 'pt' })
      return new Map([['a', new Uint8Array(a.buffer)], ['b', new Uint8Array(b.buffer)]])
    }, chunk => seen.push(...chunk))
    assert.deepEqual([...a, ...b], [1.5, -2, 3.25, 4])
    assert.deepEqual(seen, [...bytes])
    writeFileSync(path, bytes.subarray(0, bytes.length - 1))   // one byte short: the header no longer fits the file
    assert.throws(() => readSafetensorsInto(path, () => new Map()), (e: Error) => e instanceof InputError && e.message.includes(path))
  } finally { rmSync(dir, { recursive: true, force: true }) }
})
