// `llmts export --format hf` through the CLI: a checkpoint and a seeded preset exported and read back must give
// the same weights (f32 exactly, bf16 within rounding), with config, generation config and tokenizer files
// beside them; configs Hugging Face cannot express exit 2 naming the reason.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { configFromJson } from '../../src/config.js'
import { loadHfDir } from '../../src/io/hf.js'
import { initParams, ParamLayout } from '../../src/model/params.js'
import { checkpointName, writeCheckpoint } from '../../src/train/checkpoint.js'
import { Rng } from '../../src/util/rng.js'

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'llmts-export-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

function llmts(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

const HF_FILES = ['config.json', 'generation_config.json', 'merges.txt', 'model.safetensors', 'special_tokens_map.json',
  'tokenizer.json', 'tokenizer_config.json', 'vocab.json']

test('a run directory exports as GPT2LMHeadModel (f32) and imports back to the same weights', () => {
  const config = configFromJson({ preset: 'tiny-gpt2', layers: 1, channels: 32, heads: 4, kvHeads: 4, mlpHidden: 128, contextLength: 16 }, 'test')
  const layout = new ParamLayout(config)
  const rng = new Rng(11)
  const params = Float32Array.from({ length: layout.total }, () => rng.normal())
  const run = join(root, 'run')
  writeCheckpoint(join(run, 'checkpoints', checkpointName(4)), {
    modelConfig: config, trainConfig: null, params, optimizer: null,
    progress: { step: 4, loader: null, rng: new Rng(1).state(), valLoss: null, bestValLoss: null },
  })
  const out = join(root, 'gpt2-out')
  const r = llmts('export', '--model', run, '--format', 'hf', '--out', out, '--dtype', 'fp32', '--json')   // fp32: --precision's spelling of f32
  assert.equal(r.code, 0, r.stderr)
  const res = JSON.parse(r.stdout)
  assert.deepEqual({ ...res, files: [...res.files].sort() }, { out, format: 'hf', architecture: 'GPT2LMHeadModel', dtype: 'f32',
    files: HF_FILES, model: join(run, 'checkpoints', checkpointName(4)) })   // model: the checkpoint the run resolved to
  for (const f of HF_FILES) assert.ok(existsSync(join(out, f)), f)
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))
  assert.deepEqual([cfg.architectures, cfg.model_type, cfg.n_embd, cfg.n_layer, cfg.vocab_size, cfg.eos_token_id, cfg.torch_dtype],
    [['GPT2LMHeadModel'], 'gpt2', 32, 1, 50257, 50256, 'float32'])
  // the tokenizer's limit is the model's context (16 here), as in the hub's gpt2 (1024 both)
  const tok = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8'))
  assert.deepEqual([cfg.n_positions, tok.model_max_length], [16, 16])
  const back = loadHfDir(out)
  assert.deepEqual(back.config, config)
  // padded vocabulary rows never leave the model: they come back as zeros, everything else bit-exact
  const wte = layout.get('wte')
  const expected = params.slice()
  expected.fill(0, wte.offset + config.vocabSize * config.channels, wte.offset + wte.size)
  assert.ok(Buffer.from(back.params.buffer).equals(Buffer.from(expected.buffer)), 'weights after export and import')
})

test('a config without weights exports as LlamaForCausalLM in bf16 (the default), initialized from --seed', () => {
  const out = join(root, 'variant-out')
  const file = join(root, 'variant.json')
  const obj = { preset: 'tiny-variant', layers: 2, channels: 64, heads: 4, kvHeads: 2, mlpHidden: 192, tiedEmbeddings: false }
  writeFileSync(file, JSON.stringify(obj))
  const r = llmts('export', '--model', file, '--out', out, '--seed', '3')
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, /no weights; exporting a random initialization \(seed 3\)/)
  assert.match(r.stdout, /wrote LlamaForCausalLM \(bf16\)/)
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))
  assert.deepEqual([cfg.model_type, cfg.num_key_value_heads, cfg.intermediate_size, cfg.tie_word_embeddings, cfg.torch_dtype],
    ['llama', 2, 192, false, 'bfloat16'])
  const config = configFromJson(obj, 'test')
  const layout = new ParamLayout(config)
  const want = new Float32Array(layout.total)
  initParams(layout, want, 3)
  const got = loadHfDir(out).params
  let worst = 0
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) - 2 ** -8 * Math.abs(want[i]!))
  assert.ok(worst <= 0, `a weight moved by more than bf16 rounding (excess ${worst})`)
})

test('what Hugging Face cannot express, and missing flags, exit 2 with one line', () => {
  const mixed = join(root, 'mixed.json')
  writeFileSync(mixed, JSON.stringify({ preset: 'tiny-gpt2', positions: 'rope' }))
  const gqa = join(root, 'gqa.json')
  writeFileSync(gqa, JSON.stringify({ preset: 'tiny-gpt2', kvHeads: 2 }))
  const small = join(root, 'small-vocab.json')   // refused before the "exporting a random initialization" line
  writeFileSync(small, JSON.stringify({ preset: 'tiny-gpt2', layers: 1, vocabSize: 1000 }))
  const oneShort = join(root, 'vocab-one-short.json')   // the boundary: one token fewer than the tokenizer files hold
  writeFileSync(oneShort, JSON.stringify({ preset: 'tiny-gpt2', layers: 1, vocabSize: 50256 }))
  const cases: [string[], RegExp][] = [
    [['--model', mixed, '--out', join(root, 'x')], /cannot export .*positions=rope.*neither Llama/],
    [['--model', small, '--out', join(root, 'x')], /vocabulary of 1000 tokens is smaller than GPT-2's 50257/],
    [['--model', oneShort, '--out', join(root, 'x')], /vocabulary of 50256 tokens is smaller than GPT-2's 50257/],
    [['--model', gqa, '--out', join(root, 'x')], /GPT2LMHeadModel has no grouped-query attention/],
    [['--model', 'tiny-gpt2'], /--out is required/],
    [['--out', join(root, 'x')], /--model is required/],
    [['--model', 'tiny-gpt2', '--out', join(root, 'x'), '--format', 'onnx'], /--format expects one of hf/],
    [['--model', 'tiny-gpt2', '--out', join(root, 'x'), '--seed', String(2 ** 32)], /--seed expects a value <= 4294967295/],
  ]
  for (const [args, re] of cases) {
    const r = llmts('export', ...args)
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, re)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  }
  assert.ok(!existsSync(join(root, 'x')), 'nothing is written when the export is refused')
})

test('an --out that is a run or checkpoint directory is refused (its files stay as they were); a file there is exit 2', () => {
  const config = configFromJson({ preset: 'tiny-gpt2', layers: 1, channels: 32, heads: 4, kvHeads: 4, mlpHidden: 128, contextLength: 16 }, 'test')
  const params = new Float32Array(new ParamLayout(config).total).fill(0.5)
  const run = join(root, 'guarded-run'), step = join(run, 'checkpoints', checkpointName(2))
  writeCheckpoint(step, {
    modelConfig: config, trainConfig: null, params, optimizer: null,
    progress: { step: 2, loader: null, rng: new Rng(1).state(), valLoss: null, bestValLoss: null },
  })
  writeFileSync(join(run, 'config.json'), '{"train": {}}\n')
  const before = [readFileSync(join(step, 'model.safetensors')), readFileSync(join(run, 'config.json'))]
  for (const out of [run, step, join(run, 'checkpoints')]) {
    const r = llmts('export', '--model', run, '--out', out)
    assert.equal(r.code, 2, `${out}: ${r.stderr}`)
    assert.match(r.stderr, /is a training run or checkpoint directory/)
  }
  assert.deepEqual([readFileSync(join(step, 'model.safetensors')), readFileSync(join(run, 'config.json'))], before)
  // a new folder inside the run is fine
  assert.equal(llmts('export', '--model', run, '--out', join(run, 'hf')).code, 0)
  // a file where the output folder should be: refused before any work, in one line
  const r = llmts('export', '--model', run, '--out', join(run, 'config.json'))
  assert.equal(r.code, 2, r.stderr)
  assert.match(r.stderr, /^llmts export: .*config\.json is not a directory \(--out expects a directory to write to\)/)
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
})
