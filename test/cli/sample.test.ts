// `llmts sample` through the binary on a small GPT-2-vocabulary checkpoint: greedy output equals the library's
// cached generation from <|endoftext|> + the prompt, the streamed text equals the decoded tokens, a seed fixes
// the sample, and bad requests are one-line errors with exit code 2.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { configFromJson } from '../../src/config.js'
import { GPT } from '../../src/model/gpt.js'
import { decode, encode, EOT } from '../../src/tokenizer.js'
import { checkpointName, writeCheckpoint } from '../../src/train/checkpoint.js'
import { generate } from '../../src/train/sample.js'
import { Rng } from '../../src/util/rng.js'
import { makeToyRun } from '../train/helpers.js'

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'llmts-cli-sample-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

const config = configFromJson({ preset: 'tiny-variant', layers: 1, channels: 16, heads: 2, kvHeads: 1, mlpHidden: 32, contextLength: 64 }, 'test')
const model = new GPT(new CpuBackend(), config, { maxBatch: 1, maxSeqLen: 64 })
model.initWeights(4)
const p = model.getParams()
for (let i = 0; i < p.length; i++) p[i]! *= 8    // sharper logits than the 0.02 init: no near-ties for greedy
model.setParams(p)
const runDir = join(root, 'run')
writeCheckpoint(join(runDir, 'checkpoints', checkpointName(3)), {
  modelConfig: config, trainConfig: null, params: p, optimizer: null,
  progress: { step: 3, loader: null, rng: new Rng(1).state(), valLoss: null, bestValLoss: null },
})

function llmts(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [main, 'sample', ...args], { encoding: 'utf8' })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('greedy sampling from a run directory equals the library\'s cached generation', () => {
  const r = llmts('--model', runDir, '--prompt', 'Call me Ishmael.', '--max-tokens', '8', '--temperature', '0', '--json')
  assert.equal(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  const prompt = Int32Array.from([EOT, ...encode('Call me Ishmael.')])
  const want = generate(model, prompt, { maxTokens: 8, temperature: 0, topK: 0, topP: 1 }, new Rng(0))
  assert.deepEqual(out.tokens, [...want])
  assert.equal(out.text, decode(want))
  const streamed = llmts('--model', runDir, '--prompt', 'Call me Ishmael.', '--max-tokens', '8', '--temperature', '0')
  assert.equal(streamed.code, 0, streamed.stderr)
  assert.equal(streamed.stdout, 'Call me Ishmael.' + decode(want) + '\n')
})

test('a seed fixes the sample; another seed changes it', () => {
  const run = (seed: string): number[] => JSON.parse(llmts('--model', runDir, '--max-tokens', '12', '--temperature', '1.5', '--top-k', '0',
    '--seed', seed, '--json').stdout).tokens
  assert.deepEqual(run('3'), run('3'))
  assert.notDeepEqual(run('3'), run('4'))
})

test('bad requests: exit 2, one line', () => {
  const toy = makeToyRun(join(root, 'toy'))
  const cases: [string[], RegExp][] = [
    [[], /--model is required/],
    [['--model', join(root, 'nothing')], /neither a preset/],
    [['--model', toy.modelJson], /96-token vocabulary; text prompts need GPT-2's 50257/],
    [['--model', runDir, '--top-p', '0'], /--top-p must be above 0/],
    [['--model', runDir, '--temperature', '-1'], /--temperature expects a non-negative number/],
    [['--model', runDir, 'hello'], /unexpected argument "hello"/],
  ]
  for (const [args, re] of cases) {
    const r = llmts(...args)
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, re)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  }
})
