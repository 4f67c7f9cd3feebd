// Hugging Face directories whose tokenizer is not GPT-2's, through the binary: sample and eval hellaswag refuse them
// with one line naming the tokenizer (before reading the weights); eval loss and train read GPT-2 shards with them,
// refusing ids beyond their vocabulary and noting the other tokenizer; GPT-2's own files (as llmts export writes
// them) are recognized, and a vocabulary with one entry changed is not.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { configFromJson } from '../../src/config.js'
import { writeShard } from '../../src/data/shards.js'
import { exportHf } from '../../src/io/hf.js'
import { initParams, ParamLayout } from '../../src/model/params.js'

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'llmts-hf-tokenizer-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const hellaswag = resolve(process.cwd(), 'test/fixtures/hellaswag/val.jsonl')

function llmts(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** A tiny Llama with a 32,000-token vocabulary and a hand-made tokenizer.json of its own (not GPT-2's). */
function llamaDir(): string {
  const config = configFromJson({ preset: 'tiny-variant', vocabSize: 32_000, contextLength: 16, layers: 1, channels: 16,
    heads: 2, kvHeads: 1, mlpHidden: 32 }, 'test')
  const dir = join(root, 'llama32k')
  const layout = new ParamLayout(config), params = new Float32Array(layout.total)
  initParams(layout, params, 1)
  exportHf(dir, config, params, { dtype: 'f32', tokenizer: 'none' })
  const vocab = Object.fromEntries(Array.from({ length: 32_000 }, (_, i) => [i < 3 ? ['<unk>', '<s>', '</s>'][i]! : `▁t${i}`, i]))
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ version: '1.0', model: { type: 'BPE', vocab, merges: [] } }))
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ tokenizer_class: 'LlamaTokenizerFast' }))
  return dir
}
const llama = llamaDir()
const refusal = (cmd: string, dir: string): string => `llmts ${cmd}: Hugging Face directory ${dir} has a tokenizer other than ` +
  `GPT-2's (tokenizer.json: BPE, 32,000 tokens, LlamaTokenizerFast); llm.ts tokenizes with GPT-2's BPE only, and this ` +
  `model's token ids mean other text\n`

test('sample and eval hellaswag refuse a directory with its own tokenizer in one line, before reading its weights', () => {
  const s = llmts('sample', '--model', llama, '--max-tokens', '2')
  assert.deepEqual([s.code, s.stderr, s.stdout], [2, refusal('sample', llama), ''])
  for (const form of [['--model', llama], ['--init-from', llama]]) {
    const h = llmts('eval', 'hellaswag', ...form, '--data', hellaswag, '--limit', '1')
    assert.deepEqual([h.code, h.stderr, h.stdout], [2, refusal('eval hellaswag', llama), ''], form.join(' '))
  }
  // eval hellaswag, like sample, now also needs GPT-2's vocabulary (GPT-2 ids beyond a small one read past its embedding)
  const toy = join(root, 'toy96.json')
  writeFileSync(toy, JSON.stringify({ preset: 'tiny-gpt2', vocab_size: 96, layers: 1, channels: 16, heads: 2, context_length: 16 }))
  const v = llmts('eval', 'hellaswag', '--model', toy, '--data', hellaswag, '--limit', '1')
  assert.deepEqual([v.code, v.stderr], [2, `llmts eval hellaswag: config file ${toy} has a 96-token vocabulary; ` +
    `HellaSwag's texts need GPT-2's 50257\n`])
  // the refusal comes from config.json and the tokenizer files: without the weights it is the same
  const noWeights = join(root, 'llama-no-weights')
  cpSync(llama, noWeights, { recursive: true })
  rmSync(join(noWeights, 'model.safetensors'))
  assert.equal(llmts('sample', '--model', noWeights).stderr, refusal('sample', noWeights))
})

test('eval loss and train: GPT-2 ids beyond its vocabulary are refused; ids it holds are read, with a note', () => {
  const gpt2Ids = join(root, 'gpt2ids.bin'), small = join(root, 'small.bin')
  writeShard(gpt2Ids, Array.from({ length: 40 }, (_, i) => i === 5 ? 40_000 : i))
  writeShard(small, Array.from({ length: 40 }, (_, i) => i))
  const args = ['--batch-size', '1', '--seq-len', '8', '--steps', '1']
  const bad = llmts('eval', 'loss', '--init-from', llama, '--data', gpt2Ids, ...args)
  assert.equal(bad.code, 2, bad.stderr)
  assert.match(bad.stderr, /has token id 40000 at position 5, outside the vocabulary of 32000 /)
  const note = `note: Hugging Face directory ${llama} has a tokenizer other than GPT-2's (tokenizer.json: BPE, 32,000 tokens, ` +
    'LlamaTokenizerFast); the shards hold GPT-2 ids (llmts prepare), which are not the tokens this model was trained on'
  const ok = llmts('eval', 'loss', '--init-from', llama, '--data', small, ...args)
  assert.equal(ok.code, 0, ok.stderr)
  assert.ok(ok.stderr.includes(`llmts eval loss: ${note}\n`), ok.stderr)
  const t = llmts('train', '--init-from', llama, '--data', small, '--out', join(root, 'run'), '--steps', '1', '--batch-size', '1',
    '--seq-len', '8', '--total-batch-size', '8', '--warmup-steps', '0', '--val-every', '0', '--sample-every', '0', '--device', 'cpu')
  assert.equal(t.code, 0, t.stderr)
  assert.ok(t.stderr.includes(`llmts train: ${note}; samples are decoded as GPT-2 ids, as the shards are\n`), t.stderr)
})

// GPT-2's vocabulary, a model small enough to export in a test
const gpt2Config = join(root, 'gpt2-small.json')
writeFileSync(gpt2Config, JSON.stringify({ preset: 'tiny-gpt2', layers: 1, channels: 16, heads: 2, context_length: 16 }))
const exported = join(root, 'exported')
const exportRun = llmts('export', '--model', gpt2Config, '--out', exported, '--seed', '3')

test('llmts export writes GPT-2 tokenizer files that sample recognizes (round trip export -> sample --model)', () => {
  assert.equal(exportRun.code, 0, exportRun.stderr)
  const fromExport = llmts('sample', '--model', exported, '--max-tokens', '3', '--temperature', '0', '--json')
  const fromConfig = llmts('sample', '--model', gpt2Config, '--seed', '3', '--max-tokens', '3', '--temperature', '0', '--json')
  assert.equal(fromExport.code, 0, fromExport.stderr)
  assert.deepEqual(JSON.parse(fromExport.stdout).ids, JSON.parse(fromConfig.stdout).ids, 'the same weights, the same ids')
})

test('a GPT-2 vocabulary with one entry changed is refused (tokenizer.json, or vocab.json alone), by export too; no tokenizer files is GPT-2', () => {
  const variant = (name: string, edit: (dir: string) => void): string => {
    const dir = join(root, name)
    cpSync(exported, dir, { recursive: true })
    edit(dir)
    return dir
  }
  const renamed = (vocab: Record<string, number>): void => { delete vocab['Ġthe']; vocab['Ġthe!'] = 262 }
  const tokJson = variant('tok-json-changed', dir => {
    const t = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'))
    renamed(t.model.vocab)
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(t))
  })
  const vocabJson = variant('vocab-json-changed', dir => {
    rmSync(join(dir, 'tokenizer.json'))
    const v = JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8'))
    renamed(v)
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify(v))
  })
  for (const [dir, file] of [[tokJson, 'tokenizer.json: BPE, 50,257'], [vocabJson, 'vocab.json: 50,257']] as const) {
    const r = llmts('sample', '--model', dir, '--max-tokens', '1')
    assert.equal(r.code, 2, r.stderr)
    assert.equal(r.stderr, `llmts sample: Hugging Face directory ${dir} has a tokenizer other than GPT-2's ` +
      `(${file} tokens, not GPT-2's, GPT2Tokenizer); llm.ts tokenizes with GPT-2's BPE only, and this model's token ids mean other text\n`)
  }
  const shard = join(root, 'few.bin')
  writeShard(shard, Array.from({ length: 40 }, (_, i) => i))
  const t = llmts('train', '--init-from', tokJson, '--data', shard, '--out', join(root, 'run-hs'), '--steps', '1', '--batch-size', '4',
    '--seq-len', '8', '--total-batch-size', '32', '--warmup-steps', '0', '--hellaswag-every', '1', '--hellaswag-data', hellaswag, '--device', 'cpu')
  assert.deepEqual([t.code, t.stderr], [2, `llmts train: Hugging Face directory ${tokJson} has a tokenizer other than GPT-2's ` +
    `(tokenizer.json: BPE, 50,257 tokens, not GPT-2's, GPT2Tokenizer); llm.ts tokenizes with GPT-2's BPE only, and this model's ` +
    'token ids mean other text\n'])
  // export would put GPT-2's tokenizer files beside a model read with another tokenizer
  for (const [dir, what] of [[tokJson, "tokenizer.json: BPE, 50,257 tokens, not GPT-2's, GPT2Tokenizer"],
    [llama, 'tokenizer.json: BPE, 32,000 tokens, LlamaTokenizerFast']] as const) {
    const e = llmts('export', '--model', dir, '--out', join(root, 'not-written'))
    assert.deepEqual([e.code, e.stderr], [2, `llmts export: Hugging Face directory ${dir} has a tokenizer other than GPT-2's ` +
      `(${what}); llmts export writes GPT-2's tokenizer files beside the weights, which would not match them\n`])
    assert.ok(!existsSync(join(root, 'not-written', 'config.json')))
  }
  const bare = variant('no-tokenizer-files', dir => {
    for (const f of ['tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json']) rmSync(join(dir, f))
  })
  const r = llmts('sample', '--model', bare, '--max-tokens', '1')
  assert.equal(r.code, 0, r.stderr)
})
