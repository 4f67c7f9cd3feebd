// `llmts model CK` shows a checkpoint's or a Hugging Face directory's config and counts, none of it from the weights'
// values: it reads state.json / config.json and the weights' headers only. Shown here by damage a full read finds
// and a header read cannot see (a byte of the data changed, a NaN weight): the description is printed all the same,
// the same as for the intact files; damage to the header or the file's length is still refused, in one line.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { presetConfig } from '../../src/config.js'
import { loadHfDir } from '../../src/io/hf.js'
import { resolveModel } from '../../src/model/load.js'
import { initParams, ParamLayout } from '../../src/model/params.js'
import { writeCheckpoint } from '../../src/train/checkpoint.js'
import { InputError } from '../../src/util/errors.js'

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const llmts = (...args: string[]) => spawnSync(process.execPath, [main, 'model', ...args], { encoding: 'utf8' })
const root = mkdtempSync(join(tmpdir(), 'llmts-model-header-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

/** Changes one byte `back` bytes before the end of `path` (inside the last tensor's data). */
function flipByte(path: string, back: number): void {
  const bytes = readFileSync(path)
  bytes[bytes.length - back]! ^= 0xff
  writeFileSync(path, bytes)
}

test('a checkpoint is described from state.json and the header: a changed data byte is not read, a cut file is refused', () => {
  const config = presetConfig('tiny-gpt2'), ck = join(root, 'run', 'checkpoints', 'step_000003')
  const layout = new ParamLayout(config), params = new Float32Array(layout.total)
  initParams(layout, params, 1)
  writeCheckpoint(ck, { modelConfig: config, trainConfig: null, params, optimizer: null,
    progress: { step: 3, loader: null, rng: [1, 2, 3, 4], valLoss: null, bestValLoss: null } })
  const count = layout.countReal().toLocaleString('en-US')
  const want = `model${' '.repeat(Math.max(14, ck.length + 2) - 5)}${'params'.padStart(14)}  description\n` +
    `${ck.padEnd(Math.max(14, ck.length + 2))}${count.padStart(14)}  checkpoint ${ck} (step 3)\n`
  const intact = llmts(ck), json = llmts(ck, '--json').stdout
  assert.equal(intact.stdout, want, intact.stderr)
  const run = join(root, 'run'), w = Math.max(14, run.length + 2)   // a run: its newest checkpoint, named
  assert.equal(llmts(run).stdout, `model${' '.repeat(w - 5)}${'params'.padStart(14)}  description\n` +
    `${run.padEnd(w)}${count.padStart(14)}  checkpoint ${ck} (step 3)\n`)
  flipByte(join(ck, 'model.safetensors'), 1)
  // a full read fails the checksum; the description is the intact one's
  assert.throws(() => resolveModel(ck), (e: Error) => e instanceof InputError && /fails its checksum/.test(e.message))
  const flipped = llmts(ck)
  assert.deepEqual([flipped.status, flipped.stdout, llmts(ck, '--json').stdout], [0, want, json], flipped.stderr)
  truncateSync(join(ck, 'model.safetensors'), readFileSync(join(ck, 'model.safetensors')).length - 4)
  const cut = llmts(ck)
  assert.equal(cut.status, 2)
  assert.match(cut.stderr, /^llmts model: safetensors: .*model\.safetensors: tensor \S+ ends at byte \d+, past the data \(\d+ bytes; truncated\?\)\n$/)
})

test('a Hugging Face directory is described from its headers: a NaN weight is not read, a mis-shaped tensor is refused', () => {
  const dir = join(root, 'hf')
  cpSync(resolve(process.cwd(), 'test/fixtures/hf-gpt2'), dir, { recursive: true })
  const before = llmts(dir, '--json').stdout
  const path = join(dir, 'model.safetensors')
  const bytes = readFileSync(path)
  bytes.writeFloatLE(NaN, bytes.length - 4)   // the last float of the last tensor
  writeFileSync(path, bytes)
  assert.throws(() => loadHfDir(dir), /holds NaN at index/)
  const r = llmts(dir, '--json')
  assert.deepEqual([r.status, r.stdout], [0, before], r.stderr)
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, n_embd: 2 * (config['n_embd'] as number) }))
  const wrong = llmts(dir)
  assert.equal(wrong.status, 2)
  assert.match(wrong.stderr, /^llmts model: hf: .*: tensor \S+ has shape \[\d+(,\d+)*\], config\.json implies \[\d+(,\d+)*\].*\n$/)
})
