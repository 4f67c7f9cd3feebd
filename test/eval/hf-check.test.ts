// The GPU session's transformers load check, the parts that run here: scripts/gpu/hf-logits.mjs dumps what our
// own forward pass gives for exported directories (checked against a fresh forward of the original weights and
// against our loss), reference/hf_load_check.py --dry-run passes on real exports and names a broken config.json,
// and its transformers path runs on a stand-in module (test/fixtures/fake-transformers) that replays our
// logits, passing when they agree and failing on perturbed logits or different token ids.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { GPT2_VOCAB, padVocab, type ModelConfig } from '../../src/config.js'
import { GPT } from '../../src/model/gpt.js'
import { initParams, ParamLayout } from '../../src/model/params.js'
import { resolveModel } from '../../src/model/load.js'
import { encode } from '../../src/tokenizer.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-hfcheck-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const dist = fileURLToPath(new URL('../../', import.meta.url))          // the build these tests were compiled into
const main = join(dist, 'src/cli/main.js')
const script = resolve(process.cwd(), 'scripts/gpu/hf-logits.mjs')
const checker = resolve(process.cwd(), 'reference/hf_load_check.py')
const SEED = 7

const gpt2: ModelConfig = {
  vocabSize: GPT2_VOCAB, paddedVocabSize: padVocab(GPT2_VOCAB), contextLength: 64, layers: 1, channels: 32, heads: 4, kvHeads: 4,
  norm: 'layernorm', normEps: 1e-5, positions: 'learned', ropeTheta: 10_000, mlp: 'gelu', mlpHidden: 128,
  attnBias: true, mlpBias: true, tiedEmbeddings: true,
}
const llama: ModelConfig = { ...gpt2, kvHeads: 2, norm: 'rmsnorm', positions: 'rope', mlp: 'swiglu', mlpHidden: 128, attnBias: false,
  mlpBias: false, tiedEmbeddings: false }

interface Manifest { text: string; ids: number[];
  models: { dir: string; architecture: string; shape: [number, number]; logits: string; argmaxLast: number }[] }

/** Exports the two configs (f32, and the variant in bf16 too) with the CLI, then runs hf-logits.mjs on them. */
function setup(): { dirs: Record<string, string>; manifestPath: string; manifest: Manifest } {
  const dirs: Record<string, string> = {}
  for (const [name, cfg, dtype] of [['gpt2-f32', gpt2, 'f32'], ['llama-f32', llama, 'f32'], ['llama-bf16', llama, 'bf16']] as const) {
    const cfgPath = join(root, `${name}.json`)
    writeFileSync(cfgPath, JSON.stringify(cfg))
    dirs[name] = join(root, name)
    const r = spawnSync(process.execPath,
      [main, 'export', '--model', cfgPath, '--seed', String(SEED), '--dtype', dtype, '--out', dirs[name]!], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
  }
  const manifestPath = join(root, 'logits', 'ours.json')
  const r = spawnSync(process.execPath, [script, '--dist', dist, '--out', manifestPath, ...Object.values(dirs)], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  return { dirs, manifestPath, manifest: JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest }
}
const { dirs, manifestPath, manifest } = setup()

function readLogits(file: string): Float32Array {
  const b = readFileSync(join(root, 'logits', file))
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))
}

/** Mean cross-entropy of next-token prediction from (T, V) logits, in float64. */
function lossFromLogits(logits: Float32Array, ids: number[], V: number): number {
  let sum = 0
  for (let t = 0; t < ids.length - 1; t++) {
    const row = logits.subarray(t * V, (t + 1) * V)
    let max = -Infinity
    for (const x of row) max = Math.max(max, x)
    let z = 0
    for (const x of row) z += Math.exp(x - max)
    sum += Math.log(z) + max - row[ids[t + 1]!]!
  }
  return sum / (ids.length - 1)
}

test('hf-logits.mjs: our ids of the text, logits equal to a fresh forward of the original weights and to our loss', () => {
  assert.deepEqual(manifest.ids, encode(manifest.text))
  assert.ok(manifest.text.includes('   ') && manifest.text.includes('\n') && !manifest.text.includes('<|endoftext|>'))
  assert.deepEqual(manifest.models.map(m => m.architecture), ['GPT2LMHeadModel', 'LlamaForCausalLM', 'LlamaForCausalLM'])
  const T = manifest.ids.length, V = GPT2_VOCAB
  for (const [i, cfg] of [[0, gpt2], [1, llama]] as const) {
    // the f32 exports hold exactly initParams(seed): their logits are the original model's
    const layout = new ParamLayout(cfg)
    const params = new Float32Array(layout.total)
    initParams(layout, params, SEED)
    const model = new GPT(new CpuBackend(), cfg, { maxBatch: 1, maxSeqLen: T })
    model.setParams(params)
    model.forward(Int32Array.from(manifest.ids), null, 1, T)
    const want = model.lastLogits()
    const got = readLogits(manifest.models[i]!.logits)
    assert.equal(got.length, T * V)
    let worst = 0
    for (let j = 0; j < want.length; j++) worst = Math.max(worst, Math.abs(got[j]! - want[j]!))
    assert.ok(worst <= 1e-6, `${manifest.models[i]!.architecture}: logits differ from the original weights' by ${worst}`)
  }
  for (const [i, m] of manifest.models.entries()) {
    // every dump (the bf16 one included) gives the loss our own evaluation of the loaded directory gives
    const { config, params } = resolveModel(m.dir)
    const model = new GPT(new CpuBackend(), config, { maxBatch: 1, maxSeqLen: T - 1 })
    model.setParams(params!)
    const loss = model.forward(Int32Array.from(manifest.ids.slice(0, -1)), Int32Array.from(manifest.ids.slice(1)), 1, T - 1)
    const fromDump = lossFromLogits(readLogits(m.logits), manifest.ids, V)
    assert.ok(Math.abs(fromDump - loss) < 1e-5, `model ${i}: loss ${fromDump} from the dump, ${loss} from our eval`)
  }
})

function python(candidates: string[], probe: string): string | undefined {
  return candidates.find(p => spawnSync(p, ['-c', probe]).status === 0)
}

test('hf_load_check.py --dry-run: real exports pass; a wrong config.json value fails with its name', t => {
  const py = python(['python3', '/usr/bin/python3'], 'import json, struct')
  if (py === undefined) { t.skip('no python3'); return }
  const run = (): { status: number | null; lines: { dir: string; ok: boolean; errors: string[] }[] } => {
    const r = spawnSync(py, [checker, '--logits', manifestPath, '--dry-run'], { encoding: 'utf8' })
    return { status: r.status, lines: r.stdout.trim().split('\n').filter(Boolean).map(l => JSON.parse(l)) }
  }
  const good = run()
  assert.equal(good.status, 0, JSON.stringify(good.lines))
  assert.deepEqual(good.lines.map(l => l.ok), [true, true, true])
  const cfgPath = join(dirs['llama-f32']!, 'config.json')
  const saved = readFileSync(cfgPath, 'utf8')
  writeFileSync(cfgPath, saved.replace('"num_key_value_heads": 2', '"num_key_value_heads": 4'))
  try {
    const bad = run()
    assert.equal(bad.status, 1)
    assert.deepEqual(bad.lines.map(l => l.ok), [true, false, true])
    assert.match(bad.lines[1]!.errors.join('; '), /num_key_value_heads is 4, expected 2/)
  } finally {
    writeFileSync(cfgPath, saved)
  }
})

test('hf_load_check.py transformers path (stand-in module): passes on our logits, fails on 1e-3 drift or other ids', t => {
  const py = python(['/usr/bin/python3', 'python3'], 'import numpy, torch')
  if (py === undefined) { t.skip('no python3 with numpy and torch'); return }
  const run = (env: Record<string, string>): { status: number | null; out: string } => {
    const r = spawnSync(py, [checker, '--logits', manifestPath, dirs['gpt2-f32']!, dirs['llama-bf16']!], {
      encoding: 'utf8',
      env: { ...process.env, PYTHONPATH: resolve(process.cwd(), 'test/fixtures/fake-transformers'), FAKE_HF_MANIFEST: manifestPath, ...env },
    })
    return { status: r.status, out: r.stdout + r.stderr }
  }
  const good = run({})
  assert.equal(good.status, 0, good.out)
  const lines = good.out.trim().split('\n').map(l => JSON.parse(l) as { class: string; generate: number[]; logits: { rel: number } })
  assert.deepEqual(lines.map(l => l.class), ['GPT2LMHeadModel', 'LlamaForCausalLM'])
  assert.equal(lines[0]!.generate[0], manifest.models[0]!.argmaxLast)
  const drift = run({ FAKE_HF_PERTURB: '1e-3' })
  assert.equal(drift.status, 1)
  assert.match(drift.out, /logits: position \d+ token \d+ is .* in transformers/)
  const ids = run({ FAKE_HF_TOKEN: '42' })
  assert.equal(ids.status, 1)
  assert.match(ids.out, /tokenizer: tok\(text\) differs from ours at token \d+/)
})

test('hf_load_check.py with the real transformers (LLMTS_HF_PYTHON, or a python3 that has it): every export loads and matches', t => {
  const env = process.env['LLMTS_HF_PYTHON']
  const py = python(env !== undefined && env !== '' ? [env] : ['python3', '/usr/bin/python3'], 'import transformers, torch, numpy')
  if (py === undefined) {
    t.skip('no python with transformers, torch and numpy (set LLMTS_HF_PYTHON; the GPU machine runs it as the hf stage)'); return
  }
  const r = spawnSync(py, [checker, '--logits', manifestPath, '--device', 'cpu'], { encoding: 'utf8', env: { ...process.env, PYTHONPATH: '' } })
  assert.equal(r.status, 0, r.stdout + r.stderr)
  const lines = r.stdout.trim().split('\n').map(l => JSON.parse(l) as { class: string; ok: boolean; transformers: string; logits: { rel: number } })
  assert.deepEqual(lines.map(l => l.class).sort(), ['GPT2LMHeadModel', 'LlamaForCausalLM', 'LlamaForCausalLM'])
  for (const l of lines) assert.ok(l.ok && l.logits.rel <= 1e-4, JSON.stringify(l))
})
