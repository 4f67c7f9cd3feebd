// safetensors: round trip of every dtype we write, bf16 rounding, and a seeded fuzz of truncated and
// bit-flipped files that must each give an InputError naming the file (never a crash or a hang).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { floatToBf16 } from '../../src/io/safetensors.js'
import { parseSafetensors, readSafetensors, toFloat32, toInt32, writeSafetensors } from '../helpers/safetensors.js'
import { InputError } from '../../src/util/errors.js'
import { Rng } from '../../src/util/rng.js'

const dir = mkdtempSync(join(tmpdir(), 'llmts-st-'))

test('round trip F32, BF16, I32 with metadata; no temp file left behind', () => {
  const path = join(dir, 'a.safetensors')
  const f = new Float32Array([1.5, -2, 3.25, 0, 1e-3, 7])
  const i = new Int32Array([1, -2, 50256])
  const bf = floatToBf16(new Float32Array([1, -0.5, 3.140625]))
  writeSafetensors(path, [
    { name: 'w', dtype: 'F32', shape: [2, 3], data: f },
    { name: 'ids', dtype: 'I32', shape: [3], data: i },
    { name: 'b', dtype: 'BF16', shape: [3], data: bf },
  ], { config: '{"a":1}' })
  const st = readSafetensors(path)
  assert.deepEqual(toFloat32(st, 'w'), f)
  assert.deepEqual(toInt32(st, 'ids'), i)
  assert.deepEqual(toFloat32(st, 'b'), new Float32Array([1, -0.5, 3.140625]))
  assert.deepEqual(st.tensors.get('w')!.shape, [2, 3])
  assert.equal(st.metadata['config'], '{"a":1}')
  assert.deepEqual(readdirSync(dir).filter(n => n.includes('.tmp')), [])
  // the header length is a multiple of 8 past the 8-byte prefix, so data is aligned
  const buf = readFileSync(path)
  assert.equal(Number(buf.readBigUInt64LE(0)) % 8, 0)
})

test('bf16 rounds to nearest even', () => {
  // 1 + 2^-8 is exactly halfway between bf16 1 and 1 + 2^-7: ties to even (1).
  const x = new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -9)])
  const back = toFloat32(parseSafetensors(headerOnly('BF16', floatToBf16(x)), 'mem'), 't')
  assert.deepEqual(back, new Float32Array([1, 1 + 2 ** -6, -1]))
})

function headerOnly(dtype: 'BF16', data: Uint16Array): Uint8Array {
  const json = JSON.stringify({ t: { dtype, shape: [data.length], data_offsets: [0, data.byteLength] } })
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(json.length))
  return Buffer.concat([len, Buffer.from(json), Buffer.from(data.buffer)])
}

test('fuzz: 2000 truncated or bit-flipped files give InputErrors naming the file', () => {
  const path = join(dir, 'fuzz.safetensors')
  writeSafetensors(path, [
    { name: 'x', dtype: 'F32', shape: [4, 4], data: new Float32Array(16).fill(0.5) },
    { name: 'y', dtype: 'I32', shape: [5], data: new Int32Array(5) },
  ], { k: 'v' })
  const good = readFileSync(path)
  const rng = new Rng(11)
  let errors = 0
  for (let c = 0; c < 2000; c++) {
    const b = Buffer.from(good)
    let bytes: Uint8Array = b
    if (c % 2 === 0) bytes = b.subarray(0, rng.int(b.length))
    else for (let k = 0; k <= rng.int(4); k++) b[rng.int(b.length)] ^= 1 << rng.int(8)
    try {
      const st = parseSafetensors(bytes, 'fuzz.safetensors')
      for (const [name, t] of st.tensors) {
        if (t.dtype === 'F32' || t.dtype === 'BF16' || t.dtype === 'F16') toFloat32(st, name)
        else if (t.dtype !== 'U8' || name) try { toInt32(st, name) } catch (e) { if (!(e instanceof InputError)) throw e }
      }
    } catch (e) {
      assert.ok(e instanceof InputError, `case ${c}: ${String(e)}`)
      assert.match((e as Error).message, /fuzz\.safetensors/)
      assert.ok(!(e as Error).message.includes('\n'))
      errors++
    }
  }
  assert.ok(errors > 1000, `only ${errors} of 2000 corrupt files were rejected`)
})
