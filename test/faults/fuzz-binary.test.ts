// Seeded fuzz of the binary readers, in-process: token shards (readShard and the DataLoader over them),
// safetensors (bytes and header JSON), checkpoints (state.json, both tensor files, a missing file; every
// changed tensor byte must fail its checksum), a Hugging Face directory's weights, and Parquet (hyparquet).
// Each case must return or throw a one-line InputError naming the file, within the time bound.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parquetWriteBuffer } from 'hyparquet-writer'
import { configFromJson } from '../../src/config.js'
import { DataLoader } from '../../src/data/loader.js'
import { readShard, writeShard } from '../../src/data/shards.js'
import { openParquet, parquetDocuments } from '../../src/data/sources/parquet.js'
import { loadHfDir } from '../../src/io/hf.js'
import { parseSafetensors, toFloat32, toInt32, writeSafetensors } from '../helpers/safetensors.js'
import { ParamLayout } from '../../src/model/params.js'
import { readCheckpoint, writeCheckpoint } from '../../src/train/checkpoint.js'
import { trainDefaults } from '../../src/train/config.js'
import { restoreLoader } from '../../src/train/resume.js'
import { Rng } from '../../src/util/rng.js'
import { makeToyRun } from '../train/helpers.js'
import { fuzz, mutateBytes, mutateJson, type FuzzStats } from './fuzz.js'
import { tempRoot } from './helpers.js'

const root = tempRoot('fuzzbin')
const toy = makeToyRun(root)
const report = (t: { diagnostic(m: string): void }, name: string, s: FuzzStats): void =>
  t.diagnostic(`${name}: ${s.cases} cases, ${s.inputErrors} InputErrors, ${s.returned} read as valid, slowest ${s.maxMs.toFixed(1)} ms`)

test('fuzz: token shards (readShard, then the DataLoader over the shard)', { timeout: 120_000 }, async t => {
  const good = join(root, 'good.bin'), path = join(root, 'fuzz_train_000001.bin')
  const rng0 = new Rng(1)
  writeShard(good, Array.from({ length: 3000 }, () => rng0.int(96)))
  const bytes = readFileSync(good)
  const s = await fuzz({
    name: 'shards', cases: 2500, seed: 101, path,
    make: rng => { const m = mutateBytes(bytes, rng, [0, 16]); writeFileSync(path, m.bytes); return { input: m.bytes, how: m.how } },
    run: mutated => {
      readShard(path, { vocabSize: 96 })
      const loader = new DataLoader({ files: [path], B: 4, T: 16, vocabSize: 96 })
      for (let i = 0; i < 50; i++) loader.next()
      if (mutated.length !== bytes.length) throw new Error('a shard of another length was read as valid')
    },
  })
  report(t, 'shards', s)
})

/** A safetensors file as its header object and data bytes, and back. */
function splitSafetensors(buf: Uint8Array): { header: unknown; data: Uint8Array } {
  const n = Number(Buffer.from(buf).readBigUInt64LE(0))
  return { header: JSON.parse(Buffer.from(buf.subarray(8, 8 + n)).toString('utf8')), data: buf.subarray(8 + n) }
}
function joinSafetensors(header: unknown, data: Uint8Array): Uint8Array {
  const json = Buffer.from(JSON.stringify(header) ?? 'null', 'utf8')
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(json.length))
  return Buffer.concat([len, json, data])
}

test('fuzz: safetensors (bytes and header JSON), reading every tensor', { timeout: 120_000 }, async t => {
  const path = join(root, 'w.safetensors')
  writeSafetensors(path, [
    { name: 'f', dtype: 'F32', shape: [3, 4], data: new Float32Array(12).fill(0.25) },
    { name: 'b', dtype: 'BF16', shape: [4], data: new Uint16Array(4).fill(0x3f80) },
    { name: 'h', dtype: 'F16', shape: [2, 2], data: new Uint16Array(4).fill(0x3c00) },
    { name: 'i', dtype: 'I64', shape: [3], data: new BigInt64Array([1n, -2n, 3n]) },
    { name: 'u', dtype: 'U8', shape: [5], data: new Uint8Array(5) },
  ], { format: 'pt' })
  const good = readFileSync(path)
  const { header, data } = splitSafetensors(good)
  const headerEnd = good.length - data.length
  const s = await fuzz({
    name: 'safetensors', cases: 3000, seed: 202, path,
    make: rng => {
      if (rng.uniform() < 0.5) { const m = mutateBytes(good, rng, [0, headerEnd]); return { input: m.bytes, how: m.how } }
      const m = mutateJson(header, rng)
      return { input: joinSafetensors(m.value, data), how: m.how }
    },
    run: buf => {
      const st = parseSafetensors(buf, path)
      for (const [name, e] of st.tensors) ['F32', 'BF16', 'F16'].includes(e.dtype) ? toFloat32(st, name) : toInt32(st, name)
    },
  })
  report(t, 'safetensors', s)
})

test('fuzz: checkpoints (state.json bytes and JSON, tensor files, a missing file); changed tensors never pass', { timeout: 120_000 }, async t => {
  const config = configFromJson({ preset: 'tiny-variant', vocabSize: 96, contextLength: 32, layers: 1, channels: 32, heads: 4,
    kvHeads: 2, mlpHidden: 64 }, 'test')
  const total = new ParamLayout(config).total
  const rng0 = new Rng(3)
  const arr = (): Float32Array => Float32Array.from({ length: total }, () => rng0.normal())
  const good = join(root, 'ck-good'), dir = join(root, 'ck')
  writeCheckpoint(good, {
    modelConfig: config, trainConfig: { ...trainDefaults, data: toy.data, batchSize: 4, seqLen: 16 }, params: arr(),
    optimizer: { m: arr(), v: arr().map(Math.abs), step: 9 },
    progress: { step: 9, loader: { shard: 1, pos: 576 }, rng: new Rng(4).state(), valLoss: 3.5, bestValLoss: 3.25,
      guard: { loss: [4, 3.9], gradNorm: [1, 0.9] } },
  })
  const files = ['state.json', 'model.safetensors', 'optimizer.safetensors']
  const orig = new Map(files.map(f => [f, readFileSync(join(good, f))]))
  cpSync(good, dir, { recursive: true })
  let touched = files[0]!   // the file the previous case changed, restored before the next
  const loader = new DataLoader({ files: [join(toy.data, 'toy_train_000000.bin'), join(toy.data, 'toy_train_000001.bin')],
    B: 4, T: 16, vocabSize: 96 })
  const s = await fuzz({
    name: 'checkpoints', cases: 2000, seed: 303, path: dir,
    make: rng => {
      writeFileSync(join(dir, touched), orig.get(touched)!)
      const r = rng.uniform()
      if (r < 0.05) { touched = files[rng.int(3)]!; rmSync(join(dir, touched)); return { input: { mustFail: true }, how: `delete ${touched}` } }
      if (r < 0.5) {
        touched = 'state.json'
        const m = mutateJson(JSON.parse(orig.get('state.json')!.toString('utf8')), rng)
        writeFileSync(join(dir, 'state.json'), JSON.stringify(m.value) ?? '')
        return { input: { mustFail: false }, how: `state.json: ${m.how}` }
      }
      const f = touched = files[r < 0.65 ? 0 : r < 0.85 ? 1 : 2]!
      const m = mutateBytes(orig.get(f)!, rng, [0, 200])
      writeFileSync(join(dir, f), m.bytes)
      return { input: { mustFail: f !== 'state.json' && !Buffer.from(m.bytes).equals(orig.get(f)!) }, how: `${f}: ${m.how}` }
    },
    run: ({ mustFail }) => {
      const ck = readCheckpoint(dir, { withOptimizer: true })
      restoreLoader(loader, ck.progress.loader, dir)   // what --resume does next
      new Rng(ck.progress.rng).nextU32()
      if (mustFail) throw new Error('a changed or missing tensor file passed verification')
    },
  })
  assert.ok(s.inputErrors > s.cases / 2)
  report(t, 'checkpoints', s)
})

test('fuzz: a Hugging Face directory\'s model.safetensors (bytes and header JSON) through the importer', { timeout: 120_000 }, async t => {
  const dir = join(root, 'hf')
  mkdirSync(dir)
  const src = join(process.cwd(), 'test', 'fixtures', 'hf-llama')
  writeFileSync(join(dir, 'config.json'), readFileSync(join(src, 'config.json')))
  const good = readFileSync(join(src, 'model.safetensors'))
  const { header, data } = splitSafetensors(good)
  const path = join(dir, 'model.safetensors')
  const s = await fuzz({
    name: 'hf-weights', cases: 1000, seed: 404, path: dir,   // errors name the file or, for a missing tensor, the directory
    make: rng => {
      const m = rng.uniform() < 0.5 ? mutateBytes(good, rng, [0, good.length - data.length]) : (() => {
        const j = mutateJson(header, rng)
        return { bytes: joinSafetensors(j.value, data), how: j.how }
      })()
      writeFileSync(path, m.bytes)
      return { input: null, how: m.how }
    },
    run: () => loadHfDir(dir),
  })
  report(t, 'hf-weights', s)
})

test('fuzz: Parquet (footer and pages) through openParquet and parquetDocuments', { timeout: 120_000 }, async t => {
  const docs = Array.from({ length: 40 }, (_, i) => `document ${i}: ${'lorem ipsum '.repeat(i % 7)}é`)
  const good = new Uint8Array(parquetWriteBuffer({
    columnData: [{ name: 'text', data: docs, type: 'STRING' }, { name: 'id', data: docs.map((_, i) => i), type: 'INT32' }],
    rowGroupSize: 10,
  }))
  const path = join(root, 'p.parquet')
  const s = await fuzz({
    name: 'parquet', cases: 2000, seed: 505, path,
    make: rng => {
      const m = mutateBytes(good, rng, rng.uniform() < 0.6 ? [good.length - 400, good.length] : [0, 200])
      writeFileSync(path, m.bytes)
      return { input: null, how: m.how }
    },
    run: async () => {
      const pq = await openParquet(path, 'text')
      for await (const d of parquetDocuments(pq, 'text', () => {})) if (typeof d !== 'string') throw new Error('not a string')
    },
  })
  report(t, 'parquet', s)
})
