// Every command that reads a model says the same in its usage line and its --model flag line: the five forms
// resolveModel takes (test/io/load.test.ts). The form the usage lines used to leave out (a config JSON) is run
// through each command, so the help cannot promise what the command refuses.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeShard } from '../../src/data/shards.js'

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const llmts = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' })
const root = mkdtempSync(join(tmpdir(), 'llmts-model-forms-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

const commands = [['sample'], ['eval', 'loss'], ['eval', 'hellaswag'], ['export']]

test('usage and --model flag lines name the same forms in every command that reads a model', () => {
  for (const cmd of commands) {
    const help = llmts(...cmd, '--help').stdout
    assert.match(help, /^usage: llmts [a-z ]+ --model RUN_DIR\|CHECKPOINT\|HF_DIR\|PRESET\|CONFIG /, cmd.join(' '))
    const line = help.split('\n').find(l => l.trimStart().startsWith('--model '))!
    for (const form of ['run directory', 'checkpoint', 'Hugging Face directory', 'preset', 'config JSON']) {
      assert.ok(line.includes(form), `${cmd.join(' ')}: --model line lacks "${form}": ${line}`)
    }
  }
})

test('a config JSON works as --model in each of them', () => {
  const config = join(root, 'small.json')
  writeFileSync(config, JSON.stringify({ preset: 'tiny-gpt2', layers: 1, channels: 32, heads: 2, context_length: 16 }))
  const shard = join(root, 'val.bin')
  writeShard(shard, Array.from({ length: 40 }, (_, i) => (i * 7919) % 50257))
  const extra: Record<string, string[]> = {
    sample: ['--max-tokens', '2'],
    'eval loss': ['--data', shard, '--batch-size', '2', '--seq-len', '8', '--steps', '1'],
    'eval hellaswag': ['--data', resolve(process.cwd(), 'test/fixtures/hellaswag/val.jsonl'), '--limit', '1'],
    export: ['--out', join(root, 'export')],
  }
  for (const cmd of commands) {
    const r = llmts(...cmd, '--model', config, ...extra[cmd.join(' ')]!, '--json')
    assert.equal(r.status, 0, `${cmd.join(' ')}: ${r.stderr}`)
    assert.equal((JSON.parse(r.stdout) as { model: string }).model, config)
  }
})
