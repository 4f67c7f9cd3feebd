// safetensors against the format's reference implementation: a file written by the `safetensors` package
// (reference/safetensors_fixtures.py: F16 of every class, BF16, I64, U16, U8, I32, non-ASCII names and metadata)
// reads back as torch reads it; floatToBf16 matches torch's float32 -> bfloat16 on special bit patterns; our
// writer keeps the data 8-byte aligned whatever the header's length, counts the header in UTF-8 bytes, and
// refuses data that does not match a tensor's shape.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { floatToBf16 } from '../../src/io/safetensors.js'
import { parseSafetensors, readSafetensors, toFloat32, toInt32, writeSafetensors } from '../helpers/safetensors.js'
import { InputError } from '../../src/util/errors.js'

const fixtures = new URL('../../../test/fixtures/safetensors/', import.meta.url)
const expected = JSON.parse(readFileSync(new URL('expected.json', fixtures), 'utf8')) as {
  metadata: Record<string, string>; shapes: Record<string, number[]>
  f16: (number | string)[]; bf16: number[]; unicode: number[]
  i64: number[]; u16: number[]; u8: number[]; i32: number[]
  floatToBf16: { in: number[]; out: number[] }
}
const special = (v: number | string): number => v === 'nan' ? NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v as number

test('a file written by the safetensors package: every dtype, shape and the non-ASCII metadata read as torch reads them', () => {
  const st = readSafetensors(new URL('dtypes.safetensors', fixtures).pathname)
  assert.deepEqual(st.metadata, expected.metadata)
  for (const [name, shape] of Object.entries(expected.shapes)) assert.deepEqual(st.tensors.get(name)?.shape, shape, name)
  // Object.is: -0 stays -0 and NaN equals NaN
  const f16 = [...toFloat32(st, 'f16')]
  expected.f16.forEach((v, i) => assert.ok(Object.is(f16[i], special(v)), `f16[${i}]: ${f16[i]} vs ${v}`))
  assert.deepEqual([...toFloat32(st, 'bf16')], expected.bf16)
  assert.deepEqual([...toFloat32(st, 'ünïcode—名前')], expected.unicode)
  assert.deepEqual([...toInt32(st, 'i64')], expected.i64)
  assert.deepEqual([...toInt32(st, 'u16')], expected.u16)
  assert.deepEqual([...toInt32(st, 'u8')], expected.u8)
  assert.deepEqual([...toInt32(st, 'i32')], expected.i32)
})

test('floatToBf16 rounds special bit patterns as torch does (ties to even, overflow to infinity; NaN stays NaN)', () => {
  const bits = Uint32Array.from(expected.floatToBf16.in)
  const got = floatToBf16(new Float32Array(bits.buffer))
  const isNaN16 = (b: number): boolean => (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0
  expected.floatToBf16.out.forEach((want, i) => {
    const what = `0x${bits[i]!.toString(16)}: got 0x${got[i]!.toString(16)}, torch 0x${want.toString(16)}`
    if (isNaN16(want)) assert.ok(isNaN16(got[i]!), what)   // torch returns one canonical NaN, we keep the sign
    else assert.equal(got[i], want, what)
  })
})

test('our writer: data 8-byte aligned for every header length, header length in UTF-8 bytes, shapes checked', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llmts-st-ref-'))
  try {
    const data = new Float32Array([1.5, -2])
    for (let n = 1; n <= 8; n++) {   // names of 1..8 characters: 8 header lengths, every residue mod 8
      const path = join(dir, `n${n}.safetensors`)
      writeSafetensors(path, [{ name: 'w'.repeat(n), dtype: 'F32', shape: [2], data }])
      const buf = readFileSync(path)
      assert.equal((8 + Number(buf.readBigUInt64LE(0))) % 8, 0, `name of ${n}: data offset not a multiple of 8`)
      assert.deepEqual(toFloat32(readSafetensors(path), 'w'.repeat(n)), data)
    }
    const path = join(dir, 'unicode.safetensors')
    writeSafetensors(path, [{ name: 'ünïcode—名前', dtype: 'F32', shape: [2], data }], { note: expected.metadata['note']! })
    const header = readFileSync(path)
    const len = Number(header.readBigUInt64LE(0))
    assert.equal(header.length, 8 + len + 8)
    assert.deepEqual(Object.keys(JSON.parse(header.subarray(8, 8 + len).toString('utf8'))).sort(), ['__metadata__', 'ünïcode—名前'])
    assert.deepEqual(toFloat32(readSafetensors(path), 'ünïcode—名前'), data)

    for (const values of [new Float32Array(3), new Float32Array(1)]) {
      const bad = join(dir, 'bad.safetensors')
      assert.throws(() => writeSafetensors(bad, [{ name: 'w', dtype: 'F32', shape: [2], data: values }]),
        new RegExp(`safetensors: w has ${values.byteLength} bytes, shape \\[2\\] F32 needs 8`))
      assert.ok(!existsSync(bad))
    }
    const twice = join(dir, 'twice.safetensors')   // JSON keeps one of two equal keys: the other tensor would be lost
    assert.throws(() => writeSafetensors(twice, [{ name: 'w', dtype: 'F32', shape: [2], data }, { name: 'w', dtype: 'F32', shape: [2], data }]),
      /two tensors are named w/)
    assert.ok(!existsSync(twice))
    assert.throws(() => writeSafetensors(twice, [{ name: '__metadata__', dtype: 'F32', shape: [2], data }]), /a tensor cannot be named __metadata__/)
    assert.deepEqual(readdirSync(dir).filter(n => n.startsWith('.')), [], 'no temp file left')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('overlapping spans are found whatever the header order', () => {
  const header = { b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] }, c: { dtype: 'F32', shape: [1], data_offsets: [12, 16] },
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }
  const json = Buffer.from(JSON.stringify(header))
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(json.length))
  const buf = Buffer.concat([len, json, Buffer.alloc(16)])
  assert.throws(() => parseSafetensors(buf, 'rev.safetensors'), (e: Error) => e instanceof InputError && /tensors a and b overlap/.test(e.message))
})
