// `llmts model`: the preset table, checked against GPT-2's published parameter counts (Hugging Face's gpt2 and
// gpt2-medium, tied embeddings: 124,439,808 and 354,823,168), its refusal of stray arguments, its --json
// entries read back as `--model` config files, and the tokenizer a Hugging Face directory's files say.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { configFromJson, presetConfig } from '../../src/config.js'
import { exportHf } from '../../src/io/hf.js'
import { resolveModel } from '../../src/model/load.js'
import { initParams, ParamLayout } from '../../src/model/params.js'

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const run = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' })
const llmts = (...args: string[]) => run('model', ...args)
const root = mkdtempSync(join(tmpdir(), 'llmts-model-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

test('--json lists the presets; the GPT-2 sizes match the published counts', () => {
  const r = llmts('--json')
  assert.equal(r.status, 0, r.stderr)
  const lines = r.stdout.trimEnd().split('\n')   // JSON Lines: one preset a line
  assert.equal(lines.length, 6)
  const rows = lines.map(l => JSON.parse(l) as { name: string; parameters: number })
  const count = (name: string): number | undefined => rows.find(x => x.name === name)?.parameters
  assert.equal(count('gpt2-124m'), 124_439_808)
  assert.equal(count('gpt2-350m'), 354_823_168)
  for (const name of ['variant-124m', 'variant-350m', 'tiny-gpt2', 'tiny-variant']) assert.ok(count(name)! > 0, name)
})

test('a second argument, or one that is no model, exits 2 with one line', () => {
  for (const [args, re] of [[['tiny-gpt2', 'extra'], /^llmts model: unexpected argument "extra" \(one model at most\)/],
    [['extra'], /^llmts model: .*extra/]] as const) {
    const r = llmts(...args)
    assert.equal(r.status, 2, r.stderr)
    assert.match(r.stderr, re)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  }
})

test('llmts model MODEL describes one model: a config file\'s count before any training, as --json a config again', () => {
  const path = join(root, 'six.json')   // tiny-variant at 6 layers: 2 blocks of 786,944 more (see the test below)
  writeFileSync(path, JSON.stringify({ preset: 'tiny-variant', layers: 6 }))
  const r = llmts(path)
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} +17,587,712  config file `, 'm'))
  const json = llmts(path, '--json')
  const entry = JSON.parse(json.stdout) as Record<string, unknown>
  assert.equal(json.stdout.split('\n').length, 2, 'one line')
  assert.deepEqual([entry['name'], entry['parameters'], entry['layers']], [path, 16_013_824 + 2 * 786_944, 6])
  const again = join(root, 'again.json')
  writeFileSync(again, json.stdout)
  assert.deepEqual(resolveModel(again).config, { ...presetConfig('tiny-variant'), layers: 6 })
  const preset = JSON.parse(llmts('gpt2-124m', '--json').stdout) as Record<string, unknown>
  assert.deepEqual([preset['parameters'], preset['description']], [124_439_808, 'GPT-2 small: LayerNorm, learned positions, GELU MLP, biases'])
})

test('a --json entry saved as a file is a --model config; an edited size must agree with "parameters"', () => {
  const entries = llmts('--json').stdout.trimEnd().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
  const entry = entries.find(e => e.name === 'tiny-variant')!
  const file = (name: string, o: Record<string, unknown>): string => {
    const path = join(root, name)
    writeFileSync(path, JSON.stringify(o))
    return path
  }
  // the entry as printed (no "preset" key) is the preset itself, biases and all
  assert.deepEqual(resolveModel(file('asis.json', entry)).config, presetConfig('tiny-variant'))
  // two layers fewer: 2 × 786,944 parameters per block (norms 2·256, q/k/v 512·256, proj 256·256, SwiGLU 3·768·256)
  const two = { ...presetConfig('tiny-variant'), layers: 2 }
  const recounted = file('recounted.json', { ...entry, layers: 2, parameters: 16_013_824 - 2 * 786_944 })
  assert.deepEqual(resolveModel(recounted).config, two)
  const { parameters: _p, ...rest } = entry
  const uncounted = file('uncounted.json', { ...rest, layers: 2 })
  const r = run('sample', '--model', uncounted, '--max-tokens', '2', '--json')
  assert.equal(r.status, 0, r.stderr)
  assert.equal((JSON.parse(r.stdout) as { tokens: number }).tokens, 2)
  // the padded vocabulary is not printed: it follows an edited vocab_size (1000 -> 1024, the next multiple of 128)
  assert.equal(resolveModel(file('vocab.json', { ...rest, vocab_size: 1000 })).config.paddedVocabSize, 1024)
  const claimed = file('claimed.json', { ...entry, layers: 2 })
  const bad = run('sample', '--model', claimed, '--max-tokens', '2')
  assert.equal(bad.status, 2)
  assert.ok(bad.stderr.endsWith(`config: ${claimed} says "parameters": 16013824, but its settings make a model of 14439936 parameters ` +
    '(correct "parameters" or delete it)\n'), bad.stderr)
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr)
})

test('an unknown key is refused with the accepted keys in snake_case, as --json prints them', () => {
  const path = join(root, 'typo.json')
  writeFileSync(path, JSON.stringify({ preset: 'tiny-variant', kv_head: 2 }))
  const r = run('sample', '--model', path)
  assert.equal(r.status, 2)
  assert.match(r.stderr, /has unknown key "kv_head" \(expected one of vocab_size, padded_vocab_size, context_length, .*kv_heads, .*tied_embeddings, preset, name, parameters, description, tokenizer; camelCase works too\)\n$/)
})

test('the table describes each preset in its own words (no unnamed "report")', () => {
  const r = llmts()
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /^variant-124m +116,473,344  GPT-2 variant, Llama-style: RMSNorm, RoPE, GQA \(6 K\/V heads\), SwiGLU 2048, no biases$/m)
  assert.doesNotMatch(r.stdout, /report/)
})

/** A one-layer GPT-2 exported as a Hugging Face directory, with GPT-2's tokenizer files or none. */
function hfDir(name: string, tokenizer: 'gpt2' | 'none'): string {
  const config = configFromJson({ preset: 'tiny-gpt2', contextLength: 16, layers: 1, channels: 16, heads: 2, mlpHidden: 32 }, 'test')
  const layout = new ParamLayout(config), params = new Float32Array(layout.total)
  initParams(layout, params, 1)
  const dir = join(root, name)
  exportHf(dir, config, params, { dtype: 'f32', tokenizer })
  return dir
}

test('a Hugging Face directory: the tokenizer its files say, on a line of its own and as --json "tokenizer"', () => {
  const gpt2 = hfDir('hf-gpt2', 'gpt2'), none = hfDir('hf-none', 'none'), other = hfDir('hf-other', 'none')
  writeFileSync(join(other, 'tokenizer.json'), JSON.stringify({ model: { type: 'Unigram', vocab: [['<unk>', 0], ['▁a', -1]] } }))
  writeFileSync(join(other, 'tokenizer_config.json'), JSON.stringify({ tokenizer_class: 'T5TokenizerFast' }))
  for (const [dir, said] of [[gpt2, 'tokenizer.json: GPT-2\'s 50,257 tokens'],
    [none, 'none in the directory (vocab_size 50257: GPT-2 ids assumed)'],
    [other, 'tokenizer.json: Unigram, 2 tokens, T5TokenizerFast']] as const) {
    const r = llmts(dir)
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout.split('\n')[2], `tokenizer: ${said}`, r.stdout)
    const entry = JSON.parse(llmts(dir, '--json').stdout) as Record<string, unknown>
    assert.equal(entry['tokenizer'], said)
  }
  // the entry is still a config (its "tokenizer" describes, as "description" does); our own forms have no such key
  const saved = join(root, 'hf-entry.json')
  writeFileSync(saved, llmts(gpt2, '--json').stdout)
  assert.deepEqual(resolveModel(saved).config, resolveModel(gpt2).config)
  assert.equal('tokenizer' in (JSON.parse(llmts('tiny-gpt2', '--json').stdout) as object), false)
  assert.doesNotMatch(llmts('tiny-gpt2').stdout, /tokenizer/)
})
