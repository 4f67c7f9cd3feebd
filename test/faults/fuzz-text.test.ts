// Seeded fuzz of the JSON and text readers, in-process: our model config JSON (resolveModel, then the
// parameter table it implies), Hugging Face config.json (llama and gpt2), prepare's JSONL, HellaSwag JSONL,
// a run's log.jsonl (read on --resume) and `llmts train --config` JSON. Byte mutations and JSON-aware ones
// (a value of another type anywhere, a key dropped or added). Each case returns or throws a one-line
// InputError naming the file, within the time bound.

import { test } from 'node:test'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { presetConfig } from '../../src/config.js'
import { jsonlDocuments } from '../../src/data/sources/text.js'
import { parseHellaswagJsonl } from '../../src/eval/hellaswag-data.js'
import { readHfConfig } from '../../src/io/hf.js'
import { resolveModel } from '../../src/model/load.js'
import { ParamLayout } from '../../src/model/params.js'
import { trainConfigFromJson } from '../../src/train/config.js'
import { readLog } from '../../src/train/log.js'
import type { Rng } from '../../src/util/rng.js'
import { fuzz, mutateBytes, mutateJson, type FuzzStats } from './fuzz.js'
import { tempRoot } from './helpers.js'

const root = tempRoot('fuzztext')
const report = (t: { diagnostic(m: string): void }, name: string, s: FuzzStats): void =>
  t.diagnostic(`${name}: ${s.cases} cases, ${s.inputErrors} InputErrors, ${s.returned} read as valid, slowest ${s.maxMs.toFixed(1)} ms`)
const utf8 = (x: unknown): Uint8Array => Buffer.from(JSON.stringify(x, null, 1) ?? '', 'utf8')

/** Half byte mutations of the serialized document, half JSON mutations of one of its values. */
function mutateDoc(doc: unknown, rng: Rng): { bytes: Uint8Array; how: string } {
  if (rng.uniform() < 0.5) return mutateBytes(utf8(doc), rng, [0, 1 << 30])
  const m = mutateJson(doc, rng)
  return { bytes: utf8(m.value), how: m.how }
}

/** JSONL: a byte mutation of the whole file, or a JSON mutation of one line. */
function mutateLines(lines: unknown[], rng: Rng): { bytes: Uint8Array; how: string } {
  const text = lines.map(l => JSON.stringify(l)).join('\n') + '\n'
  if (rng.uniform() < 0.5) return mutateBytes(Buffer.from(text, 'utf8'), rng, [0, 1 << 30])
  const i = rng.int(lines.length), m = mutateJson(lines[i], rng)
  const out = lines.map((l, k) => k === i ? JSON.stringify(m.value) ?? '' : JSON.stringify(l)).join('\n') + '\n'
  return { bytes: Buffer.from(out, 'utf8'), how: `line ${i + 1}: ${m.how}` }
}

test('fuzz: model config JSON (ours) through resolveModel and the parameter table', { timeout: 120_000 }, async t => {
  const path = join(root, 'model.json')
  const bases = [
    { preset: 'tiny-variant', vocabSize: 96, contextLength: 32, layers: 2, channels: 32, heads: 4, kvHeads: 2, mlpHidden: 64 },
    { ...presetConfig('tiny-gpt2'), layers: 2 },
  ]
  const s = await fuzz({
    name: 'config.json (ours)', cases: 2000, seed: 606, path,
    make: (rng, i) => { const m = mutateDoc(bases[i % 2], rng); writeFileSync(path, m.bytes); return { input: null, how: m.how } },
    run: () => new ParamLayout(resolveModel(path).config).total,
  })
  report(t, 'config.json (ours)', s)
})

test('fuzz: Hugging Face config.json (LlamaForCausalLM and GPT2LMHeadModel)', { timeout: 120_000 }, async t => {
  const dir = join(root, 'hf')
  mkdirSync(dir)
  const path = join(dir, 'config.json')
  const bases = ['hf-llama', 'hf-gpt2'].map(d =>
    JSON.parse(readFileSync(join(process.cwd(), 'test', 'fixtures', d, 'config.json'), 'utf8')) as unknown)
  const s = await fuzz({
    name: 'config.json (HF)', cases: 2000, seed: 707, path,
    make: (rng, i) => { const m = mutateDoc(bases[i % 2], rng); writeFileSync(path, m.bytes); return { input: null, how: m.how } },
    run: () => new ParamLayout(readHfConfig(dir).config).total,
  })
  report(t, 'config.json (HF)', s)
})

test('fuzz: prepare\'s JSONL (every document of the file)', { timeout: 120_000 }, async t => {
  const path = join(root, 'docs.jsonl')
  const lines = Array.from({ length: 25 }, (_, i) =>
    ({ text: `document ${i}: ${'the whale '.repeat(i % 5)}\u00e9\u{1F40B}`, id: i, meta: { url: `u${i}` } }))
  const s = await fuzz({
    name: 'JSONL (prepare)', cases: 2000, seed: 808, path,
    make: rng => { const m = mutateLines(lines, rng); writeFileSync(path, m.bytes); return { input: null, how: m.how } },
    run: async () => { for await (const d of jsonlDocuments(path, 'text', () => {})) if (typeof d !== 'string') throw new Error('not a string') },
  })
  report(t, 'JSONL (prepare)', s)
})

test('fuzz: HellaSwag JSONL', { timeout: 120_000 }, async t => {
  const path = join(root, 'hellaswag_val.jsonl')
  const lines = readFileSync(join(process.cwd(), 'test', 'fixtures', 'hellaswag', 'val.jsonl'), 'utf8').trim().split('\n')
    .map(l => JSON.parse(l) as unknown)
  const s = await fuzz({
    name: 'JSONL (HellaSwag)', cases: 2000, seed: 909, path,
    make: rng => { const m = mutateLines(lines, rng); return { input: Buffer.from(m.bytes).toString('utf8'), how: m.how } },
    run: text => parseHellaswagJsonl(text, path),
  })
  report(t, 'JSONL (HellaSwag)', s)
})

test('fuzz: a run\'s log.jsonl (read when resuming)', { timeout: 120_000 }, async t => {
  const path = join(root, 'log.jsonl')
  const lines = Array.from({ length: 20 }, (_, i) => i % 5 === 0 ? { step: i, val_loss: 4 - i / 10 }
    : { step: i, loss: 4 - i / 9, lr: 1e-3, grad_norm: 0.5, tokens_per_s: 900, ms: 70 })
  const s = await fuzz({
    name: 'log.jsonl', cases: 1000, seed: 1010, path,
    make: rng => { const m = mutateLines(lines, rng); writeFileSync(path, m.bytes); return { input: null, how: m.how } },
    run: () => readLog(path),
  })
  report(t, 'log.jsonl', s)
})

test('fuzz: llmts train --config JSON', { timeout: 120_000 }, async t => {
  const path = join(root, 'train.json')
  const base = { 'batch-size': 4, seqLen: 64, 'total-batch-size': 512, steps: 10, lr: 3e-3, device: 'cpu', data: 'x', 'on-nan': 'skip',
    'skip-spikes': 4 }
  const s = await fuzz({
    name: 'train --config', cases: 1000, seed: 1111, path,
    make: rng => { const m = mutateJson(base, rng); return { input: m.value, how: m.how } },
    run: obj => trainConfigFromJson(obj, path),
  })
  report(t, 'train --config', s)
})
