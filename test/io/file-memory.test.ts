// Checkpoint I/O and export hold no whole file in memory: a checkpoint write hashes its bytes on their way to the
// disk (no read back), a read streams each file into the final arrays while hashing it, an export converts one
// tensor at a time. Measured in a child process (its peak RSS is its own) on a ~14M-parameter model (56 MB of
// weights, a 112 MB optimizer file): a whole-file buffer or a converted copy of the model would show as that much.
// The arrays read back and the checksums are compared with the arrays written and the files' bytes. A Hugging Face
// import streams each tensor into its place in the weights: no whole-file buffer, no read over the 16 MiB chunk.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ParamLayout } from '../../src/model/params.js'
import { loadHfDir } from '../../src/io/hf.js'
import { memoryConfig } from './file-memory-child.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-file-mem-'))
const floatMiB = new ParamLayout(memoryConfig).total * 4 / 2 ** 20   // one array: params, m or v (~54 MiB)
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const child = fileURLToPath(new URL('./file-memory-child.js', import.meta.url))

interface Stage { extraMiB: number; sha256: string[]; maxRead: number }
function stage(name: 'write' | 'read' | 'export-bf16' | 'export-f32' | 'import', dir: string): Stage {
  return JSON.parse(execFileSync(process.execPath, [child, name, dir], { encoding: 'utf8' })) as Stage
}

test('a checkpoint is written and read without a whole-file buffer, bit-exact, with the files\' true checksums', () => {
  const dir = join(root, 'step_000003')
  const written = stage('write', dir)
  // reading optimizer.safetensors (2 arrays) back to hash it would add 2 × floatMiB
  assert.ok(written.extraMiB < floatMiB / 2, `writeCheckpoint raised the peak RSS by ${written.extraMiB.toFixed(0)} MiB ` +
    `(limit ${(floatMiB / 2).toFixed(0)}; the optimizer file is ${(2 * floatMiB).toFixed(0)} MiB)`)
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { files: Record<string, { sha256: string; bytes: number }> }
  for (const [file, sum] of Object.entries(state.files)) {
    const bytes = readFileSync(join(dir, file))
    assert.deepEqual(sum, { sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.byteLength }, file)
  }
  const read = stage('read', dir)
  assert.deepEqual(read.sha256, written.sha256)   // params, m, v
  // the three arrays themselves, and a margin; a whole-file buffer of the optimizer file is 2 × floatMiB more
  assert.ok(read.extraMiB < 3 * floatMiB + floatMiB / 2, `readCheckpoint raised the peak RSS by ${read.extraMiB.toFixed(0)} MiB ` +
    `(limit ${(3.5 * floatMiB).toFixed(0)}: the arrays are ${(3 * floatMiB).toFixed(0)} MiB)`)
})

test('an export converts one tensor at a time: no converted copy of the model beside the weights, the same weights read back', () => {
  for (const dtype of ['f32', 'bf16'] as const) {
    const dir = join(root, `hf-${dtype}`)
    const { extraMiB, sha256 } = stage(`export-${dtype}`, dir)
    // before: every tensor converted first, floatMiB (f32 copies) and floatMiB / 2 more for bf16 (no tokenizer files:
    // their ~25 MB of JSON text is made whole, whatever the model's size)
    // after: one tensor at a time, the largest wte's bf16 copy (floatMiB / 2; f32 writes it as a view of the weights)
    const limit = dtype === 'f32' ? floatMiB / 2 : 1.25 * floatMiB   // bf16: room for a collection that comes late
    assert.ok(extraMiB < limit, `exportHf (${dtype}) raised the peak RSS by ${extraMiB.toFixed(0)} MiB (limit ${limit.toFixed(0)})`)
    if (dtype === 'f32') {
      const back = loadHfDir(dir).params
      assert.equal(createHash('sha256').update(new Uint8Array(back.buffer)).digest('hex'), sha256[0])
    }
  }
})

test('a Hugging Face import streams the file into the weights: no whole-file buffer, no read over 16 MiB, the exported weights back', () => {
  const dir = join(root, 'hf-import')
  const exported = stage('export-f32', dir)
  const fileMiB = statSync(join(dir, 'model.safetensors')).size / 2 ** 20
  const { extraMiB, sha256, maxRead } = stage('import', dir)
  // the weights' array itself and a margin; before, readFileSync held the whole file beside it (fileMiB more) and
  // read it in one call, refused past 2 GiB
  const limit = floatMiB + fileMiB / 2
  assert.ok(extraMiB < limit, `loadHfDir raised the peak RSS by ${extraMiB.toFixed(0)} MiB (limit ${limit.toFixed(0)}; the file is ` +
    `${fileMiB.toFixed(0)} MiB)`)
  assert.ok(maxRead <= 16 * 2 ** 20, `loadHfDir made a read of ${maxRead} bytes, over the 16 MiB chunk (the file is ${fileMiB.toFixed(0)} MiB)`)
  assert.deepEqual(sha256, exported.sha256)
})
