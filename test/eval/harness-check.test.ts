// lm-evaluation-harness itself, when a python with lm_eval + transformers + torch is given (LLMTS_HF_PYTHON): its
// hellaswag task (its own yaml and process_docs, local JSONL instead of the hub) on an `llmts export` of a small
// model gives every ending the log-likelihood our scoring gives (rtol 1e-5) and the same acc/acc_norm, 0-shot
// and 2-shot (so its few-shot draw equals ours). Skips without such a python (CI has no PyPI).

import assert from 'node:assert/strict'
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test } from 'node:test'

const root = mkdtempSync(join(tmpdir(), 'llmts-harness-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const main = resolve(process.cwd(), 'dist/src/cli/main.js')
const fixtures = resolve(process.cwd(), 'test/fixtures/hellaswag')

test('lm-evaluation-harness hellaswag (0- and 2-shot) equals ours on an exported model', t => {
  const py = process.env['LLMTS_HF_PYTHON']
  if (py === undefined || py === '' || spawnSync(py, ['-c', 'import lm_eval, transformers, torch']).status !== 0) {
    t.skip('set LLMTS_HF_PYTHON to a python with lm_eval, transformers and torch to run lm-evaluation-harness itself')
    return
  }
  const cfg = join(root, 'model.json'), hf = join(root, 'hf')
  writeFileSync(cfg, JSON.stringify({ preset: 'tiny-variant', layers: 2, channels: 64, heads: 4, kvHeads: 2, mlpHidden: 160 }))
  const exp = spawnSync(process.execPath, [main, 'export', '--model', cfg, '--seed', '7', '--dtype', 'f32', '--out', hf], { encoding: 'utf8' })
  assert.equal(exp.status, 0, exp.stderr)
  for (const shots of ['0', '2']) {
    const ours = join(root, `ours-${shots}.json`)
    const data = ['--data', join(fixtures, 'val.jsonl'), '--train-data', join(fixtures, 'train.jsonl'), '--shots', shots]
    const s = spawnSync(process.execPath, ['scripts/hellaswag-scores.mjs', '--model', hf, ...data, '--out', ours], { encoding: 'utf8' })
    assert.equal(s.status, 0, s.stderr)
    const h: SpawnSyncReturns<string> = spawnSync(py, ['reference/hellaswag_harness_check.py', '--hf', hf, ...data, '--ours', ours],
      { encoding: 'utf8' })
    const line = JSON.parse(h.stdout.trim().split('\n').pop()!) as { ok: boolean; docs: number; errors: string[] }
    assert.equal(h.status, 0, `${shots}-shot: ${line.errors.join('; ')}`)
    assert.ok(line.ok && line.docs === 6)
  }
})
