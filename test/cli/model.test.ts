// `llmts model`: the preset table, checked against GPT-2's published parameter counts (Hugging Face's gpt2 and
// gpt2-medium, tied embeddings: 124,439,808 and 354,823,168), and its refusal of stray arguments.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const llmts = (...args: string[]) => spawnSync(process.execPath, [main, 'model', ...args], { encoding: 'utf8' })

test('--json lists the presets; the GPT-2 sizes match the published counts', () => {
  const r = llmts('--json')
  assert.equal(r.status, 0, r.stderr)
  const rows = JSON.parse(r.stdout) as { name: string; parameters: number }[]
  const count = (name: string): number | undefined => rows.find(x => x.name === name)?.parameters
  assert.equal(count('gpt2-124m'), 124_439_808)
  assert.equal(count('gpt2-350m'), 354_823_168)
  for (const name of ['variant-124m', 'variant-350m', 'tiny-gpt2', 'tiny-variant']) assert.ok(count(name)! > 0, name)
})

test('a stray argument exits 2 with one line', () => {
  const r = llmts('extra')
  assert.equal(r.status, 2)
  assert.match(r.stderr, /^llmts model: unexpected argument "extra"/)
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
})
