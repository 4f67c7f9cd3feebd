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
import { configFromJson, presetConfig } from '../../src/config.js'
import { GPT } from '../../src/model/gpt.js'
import { ParamLayout } from '../../src/model/params.js'
import { decode, encode, EOT } from '../../src/tokenizer.js'
import { checkpointName, writeCheckpoint } from '../../src/train/checkpoint.js'
import { TextStream } from '../../src/cli/sample.js'
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
  const want = generate(model, prompt, { maxTokens: 8, temperature: 0, topK: 0, topP: 1, stopAt: EOT }, new Rng(0))
  assert.deepEqual(out.ids, [...want])
  assert.equal(out.model, join(runDir, 'checkpoints', checkpointName(3)), 'model: the checkpoint the run resolved to, a --model value')
  assert.equal(out.text, decode(want))
  const streamed = llmts('--model', runDir, '--prompt', 'Call me Ishmael.', '--max-tokens', '8', '--temperature', '0')
  assert.equal(streamed.code, 0, streamed.stderr)
  assert.equal(streamed.stdout, 'Call me Ishmael.' + decode(want) + '\n')
})

test('seeded sampling with --temperature, --top-k and --top-p equals the library\'s generation with those options', () => {
  const r = llmts('--model', runDir, '--prompt', 'Call me', '--max-tokens', '16', '--temperature', '1.5', '--top-k', '5',
    '--top-p', '0.9', '--seed', '3', '--json')
  assert.equal(r.code, 0, r.stderr)
  const opts = { maxTokens: 16, temperature: 1.5, topK: 5, topP: 0.9, stopAt: EOT }
  const prompt = Int32Array.from([EOT, ...encode('Call me')])
  const want = [...generate(model, prompt, opts, new Rng(3))]
  assert.deepEqual(JSON.parse(r.stdout).ids, want)
  // each flag, the seed and the leading <|endoftext|> change this sample, so none of them can be dropped unnoticed
  for (const [what, other] of [
    ['--top-k', generate(model, prompt, { ...opts, topK: 0 }, new Rng(3))],
    ['--top-p', generate(model, prompt, { ...opts, topP: 1 }, new Rng(3))],
    ['--temperature', generate(model, prompt, { ...opts, temperature: 1 }, new Rng(3))],
    ['--seed', generate(model, prompt, opts, new Rng(4))],
    ['<|endoftext|>', generate(model, prompt.subarray(1), opts, new Rng(3))],
  ] as const) assert.notDeepEqual([...other], want, `${what} makes no difference to this sample`)
})

test('--json: text is decode(ids) exactly (its leading and trailing whitespace kept), tokens_per_second in tokens per second', () => {
  // a prompt whose greedy continuation starts or ends with whitespace (searched, and asserted below)
  const greedy = { maxTokens: 8, temperature: 0, topK: 0, topP: 1, stopAt: EOT }
  const prompts = ['Call me Ishmael.', 'Hi', 'The', 'Once upon a time', 'Hello,', 'It was', '1.', 'A', 'So', 'Yes']
  const prompt = prompts.find(q => {
    const text = decode(generate(model, Int32Array.from([EOT, ...encode(q)]), greedy, new Rng(0)))
    return text !== text.trim()
  })
  assert.ok(prompt !== undefined, 'a prompt whose continuation has whitespace at an end')
  const t0 = performance.now()
  const r = llmts('--model', runDir, '--prompt', prompt, '--max-tokens', '8', '--temperature', '0', '--json')
  const wallS = (performance.now() - t0) / 1000   // the whole process: more than the generation alone
  assert.equal(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  assert.deepEqual(Object.keys(out).sort(), ['ids', 'model', 'prompt', 'stop', 'text', 'tokens', 'tokens_per_second'])
  assert.equal(out.prompt, prompt)
  assert.notEqual(out.text, out.text.trim(), 'the fixture exercises whitespace at an end')
  assert.equal(out.text, decode(out.ids))
  assert.equal(out.tokens, out.ids.length)
  const generated = out.ids.length + (out.stop === 'eot' ? 1 : 0)   // a drawn <|endoftext|> counts
  assert.ok(generated > 0 && out.tokens_per_second >= generated / wallS, `tokens_per_second ${out.tokens_per_second}, ${generated} tokens in ${wallS} s wall`)
})

test('generation stops at <|endoftext|> (Hugging Face generate()\'s eos_token_id) unless --ignore-eot', () => {
  // a copy of the model whose output row for <|endoftext|> is 4x that of a token greedy decoding picks: somewhere in
  // the first tokens greedy decoding then draws <|endoftext|> (searched, and asserted below)
  const wte = new ParamLayout(config).byName.get('wte')!, C = config.channels
  const prompt = Int32Array.from([EOT, ...encode('Call me')])
  const greedy = { maxTokens: 12, temperature: 0, topK: 0, topP: 1 }
  const copy = new GPT(new CpuBackend(), config, { maxBatch: 1, maxSeqLen: 64 })
  let full: number[] = []
  for (const t of generate(model, prompt, greedy, new Rng(0))) {
    const q = Float32Array.from(p)
    for (let c = 0; c < C; c++) q[wte.offset + EOT * C + c] = 4 * p[wte.offset + t * C + c]!
    copy.setParams(q)
    full = [...generate(copy, prompt, greedy, new Rng(0))]
    if (full.indexOf(EOT) > 0) {
      writeCheckpoint(join(root, 'eot', 'checkpoints', checkpointName(1)), {
        modelConfig: config, trainConfig: null, params: q, optimizer: null,
        progress: { step: 1, loader: null, rng: new Rng(1).state(), valLoss: null, bestValLoss: null },
      })
      break
    }
  }
  const at = full.indexOf(EOT)
  assert.ok(at > 0, `a model that draws <|endoftext|> after the first token: ${full}`)
  const args = ['--model', join(root, 'eot'), '--prompt', 'Call me', '--max-tokens', '12', '--temperature', '0']
  const stopped = JSON.parse(llmts(...args, '--json').stdout)
  assert.deepEqual(stopped.ids, full.slice(0, at))
  assert.equal(stopped.stop, 'eot')
  const streamed = llmts(...args)
  assert.equal(streamed.stdout, 'Call me' + decode(full.slice(0, at)) + '\n')
  assert.match(streamed.stderr, new RegExp(`${at} ${at === 1 ? 'token' : 'tokens'}, stopped at <\\|endoftext\\|> in`))
  const on = JSON.parse(llmts(...args, '--ignore-eot', '--json').stdout)
  assert.deepEqual(on.ids, full)
  assert.equal(on.stop, 'max-tokens')
  assert.match(llmts(...args, '--ignore-eot').stdout, /<\|endoftext\|>/)
})

test('the context length caps --max-tokens (with a notice); a prompt that fills the context is refused', () => {
  const words = (n: number): string => ' a'.repeat(n)   // n tokens; with <|endoftext|>, n + 1
  assert.equal(encode(words(62)).length, 62)
  const r = llmts('--model', runDir, '--prompt', words(52), '--max-tokens', '1000', '--temperature', '0', '--json')
  assert.equal(r.code, 0, r.stderr)
  assert.deepEqual([JSON.parse(r.stdout).ids.length, JSON.parse(r.stdout).stop], [64 - 53, 'context'])
  assert.match(r.stderr, /generating 11 tokens \(the context length is 64\)/)
  const last = llmts('--model', runDir, '--prompt', words(62), '--max-tokens', '5', '--temperature', '0', '--json')
  assert.equal(last.code, 0, last.stderr)
  assert.equal(JSON.parse(last.stdout).ids.length, 1)
  const plain = llmts('--model', runDir, '--prompt', words(62), '--max-tokens', '5', '--temperature', '0')
  assert.match(plain.stderr, /: generating 1 token \(the context length is 64\)\n[^]*: 1 token in /)
  const full = llmts('--model', runDir, '--prompt', words(63))
  assert.equal(full.code, 2, full.stderr)
  assert.equal(full.stderr, "llmts sample: the prompt is 63 tokens (64 with the <|endoftext|> put before it), which leaves " +
    "no room to generate in the model's 64-token context (expected at most 62 tokens of prompt)\n")
})

test('streamed text holds back a split multi-byte character until its last byte, and flushes an unfinished one at the end', () => {
  const ids = encode('日本語 €')   // GPT-2 byte-level tokens: each CJK character is split over two tokens
  assert.ok(ids.some((_, i) => decode(ids.slice(0, i + 1)).endsWith('\uFFFD')), 'the fixture splits a character')
  const chunks: string[] = []
  const stream = new TextStream(s => chunks.push(s))
  for (const id of ids) stream.push(id)
  stream.end()
  assert.ok(chunks.every(c => !c.includes('\uFFFD')), JSON.stringify(chunks))
  assert.equal(chunks.join(''), '日本語 €\n')
  const cut: string[] = []
  const unfinished = new TextStream(s => cut.push(s))
  for (const id of ids.slice(0, 3)) unfinished.push(id)   // 日 and the first byte(s) of 本
  unfinished.end()
  assert.deepEqual(cut, ['日', '\uFFFD\n'])
})

test('a preset without weights samples from initWeights(--seed)', () => {
  const r = llmts('--model', 'tiny-variant', '--prompt', 'Hi', '--max-tokens', '6', '--temperature', '0', '--seed', '6', '--json')
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, /no weights; using random weights from --seed 6/)
  const preset = new GPT(new CpuBackend(), presetConfig('tiny-variant'), { maxBatch: 1, maxSeqLen: 64 })
  preset.initWeights(6)
  const prompt = Int32Array.from([EOT, ...encode('Hi')])
  const greedy = { maxTokens: 6, temperature: 0, topK: 0, topP: 1 }
  const want = [...generate(preset, prompt, greedy, new Rng(0))]
  assert.deepEqual(JSON.parse(r.stdout).ids, want)
  for (const other of [5, 1337]) {   // 1337: the default seed; 5 and 1337 happen to agree with each other here
    preset.initWeights(other)
    assert.notDeepEqual([...generate(preset, prompt, greedy, new Rng(0))], want, `seed ${other} gives other weights`)
  }
})

test('--prompt "" is the default: a new document (not refused as an empty value)', () => {
  const ids = (...args: string[]): number[] => {
    const r = llmts('--model', runDir, '--max-tokens', '6', '--temperature', '0', '--json', ...args)
    assert.equal(r.code, 0, r.stderr)
    return JSON.parse(r.stdout).ids
  }
  const want = [...generate(model, Int32Array.from([EOT]), { maxTokens: 6, temperature: 0, topK: 0, topP: 1, stopAt: EOT }, new Rng(0))]
  assert.deepEqual(ids(), want)
  assert.deepEqual(ids('--prompt', ''), want)
  assert.deepEqual(ids('--prompt='), want)
})

test('a seed fixes the sample; another seed changes it', () => {
  const run = (seed: string): number[] => JSON.parse(llmts('--model', runDir, '--max-tokens', '12', '--temperature', '1.5', '--top-k', '0',
    '--seed', seed, '--json').stdout).ids
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
    [['--model', runDir, '--temperature', '-0.5'], /--temperature expects a non-negative number, got -0.5$/m],
    [['--model', runDir, '--top-p', '1.5'], /--top-p expects a value <= 1, got 1\.5$/m],
    [['--model', runDir, 'hello'], /unexpected argument "hello"/],
    [['--model', runDir, '--seed', '4294967303'], /--seed expects a value <= 4294967295, got 4294967303/],   // 7 + 2^32: was seed 7
  ]
  for (const [args, re] of cases) {
    const r = llmts(...args)
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, re)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  }
})
