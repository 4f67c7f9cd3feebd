// --json output (src/cli/output.ts): one line per result, keys in snake_case at every depth (values untouched),
// NaN and infinities as null; and the model listing's snake_case keys read back as a model config.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { jsonText, stderrNotes } from '../../src/cli/output.js'
import { snakeCase } from '../../src/util/json.js'
import { configFromJson, presetConfig } from '../../src/config.js'
import { InputError } from '../../src/util/errors.js'

test('snakeCase: camelCase words split at each capital; snake, lower and data keys stay', () => {
  const cases: [string, string][] = [['runDir', 'run_dir'], ['tokensPerSecond', 'tokens_per_second'], ['tokensPerS', 'tokens_per_s'],
    ['nonFinite', 'non_finite'], ['accNormStderr', 'acc_norm_stderr'], ['kvHeads', 'kv_heads'], ['val_loss', 'val_loss'],
    ['steps', 'steps'], ['tiny-gpt2', 'tiny-gpt2'], ['model.safetensors', 'model.safetensors'], ['x', 'x'], ['layer2Norm', 'layer2_norm']]
  for (const [k, want] of cases) assert.equal(snakeCase(k), want, k)
})

test('jsonText: one line, keys renamed at every depth, string values and array items untouched, NaN as null', () => {
  const text = jsonText({ runDir: 'a/runDir', runs: [{ finalValLoss: NaN, perStep: [1, Infinity] }], settings: { outDir: 'x' } })
  assert.equal(text, '{"run_dir":"a/runDir","runs":[{"final_val_loss":null,"per_step":[1,null]}],"settings":{"out_dir":"x"}}\n')
  assert.equal(jsonText({ aB: 1 }, 2), '{\n  "a_b": 1\n}\n', 'indented for a file')
  assert.equal(jsonText([{ aB: 1 }, 'cD']), '[{"a_b":1},"cD"]\n')
})

test('a model config accepts the snake_case keys `llmts model --json` prints; one key spelled twice is refused', () => {
  const c = configFromJson({ preset: 'tiny-variant', kv_heads: 2, mlp_hidden: 512, layers: 2 }, 'x.json')
  assert.deepEqual([c.kvHeads, c.mlpHidden, c.layers], [2, 512, 2])
  assert.deepEqual(configFromJson({ preset: 'tiny-variant', kv_heads: 4 }, 'x.json'), presetConfig('tiny-variant'))
  assert.throws(() => configFromJson({ kvHeads: 2, kv_heads: 2 }, 'x.json'),
    (e: Error) => e instanceof InputError && e.message === 'config: x.json gives kvHeads twice ("kvHeads" and "kv_heads"); keep one')
  assert.throws(() => configFromJson({ kv_head: 2 }, 'x.json'), (e: Error) => e instanceof InputError && /unknown key "kv_head"/.test(e.message))
})

test('stderrNotes: a note naming a user\'s path is one line without control characters, as errors are', () => {
  const lines: string[] = []
  const write = process.stderr.write
  process.stderr.write = ((s: string) => { lines.push(s); return true }) as typeof process.stderr.write
  try { stderrNotes(['prepare'])('reading a\nb\t\x1b[2Jc.txt') } finally { process.stderr.write = write }
  assert.deepEqual(lines, ['llmts prepare: reading a b ?[2Jc.txt\n'])
})
