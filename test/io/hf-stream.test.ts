// A Hugging Face import streams each file a chunk at a time into the weights (src/io/hf.ts, loadHfDir): the weights
// must be those the whole-file loader made before (their SHA-256, recorded from it on each fixture), whatever the
// chunk size (a chunk that splits rows, columns and elements' neighbours), and no read may exceed the chunk: that is
// what lets files over 2 GiB (a Buffer read's limit) load; too big to test here.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fs, { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { exportHf, loadHfDir } from '../../src/io/hf.js'
import { floatToBf16 } from '../../src/io/safetensors.js'

const fixture = (name: string): string => resolve(process.cwd(), 'test/fixtures', name)
const sha = (a: Float32Array): string => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex')

// loadHfDir(fixture).params of the loader that read each file whole (commit 3748957)
const BEFORE: Record<string, string> = {
  'hf-gpt2': '72cfae8d0aaf31e6869e7e1d3102240eedab866cfc0cd53aa9793f7fc8fd832e',        // f32, Conv1D transposes
  'hf-llama': '68fe551dfafee4c606a9f2665b8b9240380924dec1a0a5557b5f1fdd9d12e32c',       // f32
  'hf-llama-bf16': '5ca253f8a2aa44980c8da99db2c616845c013c9fd899379a4bd2acbe2cc29aec',  // bf16
}

/** Runs `fn` with every fs.readSync recorded (the ESM bindings the code under test imported follow the patch). */
function withReads<T>(fn: () => T): { result: T; reads: { length: number; position: number }[] } {
  const reads: { length: number; position: number }[] = []
  const readSync = fs.readSync
  fs.readSync = ((fd: number, buf: NodeJS.ArrayBufferView, off: number, length: number, position: number) => {
    reads.push({ length, position })
    return readSync(fd, buf, off, length, position)
  }) as typeof fs.readSync
  syncBuiltinESMExports()
  try { return { result: fn(), reads } } finally { fs.readSync = readSync; syncBuiltinESMExports() }
}

test('the streamed import gives the whole-file loader\'s weights on every fixture, at any chunk size', () => {
  for (const [name, want] of Object.entries(BEFORE)) {
    for (const chunkBytes of [undefined, 8, 24, 4096]) {
      assert.equal(sha(loadHfDir(fixture(name), { chunkBytes }).params), want, `${name}, chunk ${chunkBytes ?? 'default'}`)
    }
  }
})

test('no read of a tensor\'s data is larger than the chunk', () => {
  const path = join(fixture('hf-gpt2'), 'model.safetensors')
  const dataStart = 8 + Number(readFileSync(path).readBigUInt64LE(0))
  const { result, reads } = withReads(() => loadHfDir(fixture('hf-gpt2'), { chunkBytes: 64 }))
  assert.equal(sha(result.params), BEFORE['hf-gpt2'])
  const data = reads.filter(r => r.position >= dataStart)
  assert.ok(data.length > 100, `${data.length} reads of the data`)   // wte alone is 16 KiB: hundreds of 64-byte chunks
  assert.deepEqual(data.filter(r => r.length > 64), [])
})

test('a bf16 GPT-2 directory (decoded and transposed chunk by chunk) loads as its f32 weights rounded to bf16', t => {
  const d = mkdtempSync(join(tmpdir(), 'llmts-hf-stream-'))
  t.after(() => rmSync(d, { recursive: true, force: true }))
  const { config, params } = loadHfDir(fixture('hf-gpt2'))
  exportHf(d, config, params, { dtype: 'bf16', tokenizer: 'none' })
  // bf16 is float32's high half: the expected weights are the rounded bits shifted back up
  const want = new Float32Array(new Uint32Array(Array.from(floatToBf16(params), h => h << 16)).buffer)
  for (const chunkBytes of [undefined, 8, 24]) assert.equal(sha(loadHfDir(d, { chunkBytes }).params), sha(want), `chunk ${chunkBytes}`)
})
