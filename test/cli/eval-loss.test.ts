// `llmts eval loss` through the CLI: on a shard whose first batch is exactly the fixture's tokens, the loss must
// equal the cross-entropy computed in float64 from PyTorch's logits (reference/hf_fixtures.py); over several
// batches it must be the mean of GPT.forward on the loader's windows (a preset's from initWeights(--seed)); a
// non-finite loss is an error; bad inputs exit 2 with one line.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { presetConfig } from '../../src/config.js'
import { DataLoader } from '../../src/data/loader.js'
import { readShard, writeShard } from '../../src/data/shards.js'
import { evaluateLoss } from '../../src/eval/loss.js'
import { InputError } from '../../src/util/errors.js'
import { loadHfDir } from '../../src/io/hf.js'
import { readSafetensors, toFloat32, toInt32 } from '../helpers/safetensors.js'
import { GPT } from '../../src/model/gpt.js'
import { checkpointName, writeCheckpoint } from '../../src/train/checkpoint.js'
import { Rng } from '../../src/util/rng.js'

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const fixture = (name: string): string => resolve(process.cwd(), 'test/fixtures', name)
const root = mkdtempSync(join(tmpdir(), 'llmts-eval-loss-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

function llmts(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

function evalJson(...args: string[]): { val_loss: number; steps: number; tokens: number; seq_len: number; batch_size: number; model: string } {
  const r = llmts('eval', 'loss', ...args, '--json')
  assert.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout)
}

function randomTokens(n: number, vocab: number, seed: number): number[] {
  const rng = new Rng(seed)
  return Array.from({ length: n }, () => Math.floor(rng.uniform() * vocab))
}

/** The mean of GPT.forward over the first `steps` windows of B·T + 1 tokens (the loader's batches, no wrap). */
function meanForward(model: GPT, tokens: number[], B: number, T: number, steps: number): number {
  let sum = 0
  for (let k = 0; k < steps; k++) {
    const w = tokens.slice(k * B * T, (k + 1) * B * T + 1)
    sum += model.forward(Int32Array.from(w.slice(0, -1)), Int32Array.from(w.slice(1)), B, T)
  }
  return sum / steps
}

/** float64 mean cross-entropy of (B,T,V) logits against (B,T) targets. */
function crossEntropy(logits: Float32Array, targets: number[], V: number): number {
  let sum = 0
  for (let i = 0; i < targets.length; i++) {
    const row = logits.subarray(i * V, (i + 1) * V)
    const max = Math.max(...row)
    let z = 0
    for (const x of row) z += Math.exp(x - max)
    sum += Math.log(z) + max - row[targets[i]!]!
  }
  return sum / targets.length
}

for (const [name, how] of [['hf-llama', '--init-from'], ['hf-gpt2', '--model']] as const) {
  test(`${name} (${how}): the loss of one batch equals the cross-entropy of PyTorch's logits`, () => {
    const expected = readSafetensors(join(fixture(name), 'expected_logits.safetensors'))
    const tokens = [...toInt32(expected, 'tokens')]       // (B=2, T=8) flattened
    const V = expected.tensors.get('logits')!.shape[2]!
    const extra = 7                                         // the target of the last position
    const shard = join(root, `${name}.bin`)
    writeShard(shard, [...tokens, extra, 1, 2, 3])
    const want = crossEntropy(toFloat32(expected, 'logits'), [...tokens.slice(1), extra], V)
    const got = evalJson(how, fixture(name), '--data', shard, '--batch-size', '2', '--seq-len', '8', '--steps', '1')
    assert.ok(Math.abs(got.val_loss - want) <= 1e-5 * want, `val_loss ${got.val_loss}, expected ${want}`)
    assert.equal(got.tokens, 16)
  })
}

test('N batches: the mean of GPT.forward over the first N windows; a directory is read through its val split', () => {
  const B = 2, T = 8, steps = 3
  const dir = join(root, 'shards')
  mkdirSync(dir)
  const val = randomTokens(steps * B * T + 5, 96, 1)
  writeShard(join(dir, 'toy_val_000000.bin'), val)
  writeShard(join(dir, 'toy_train_000001.bin'), randomTokens(1000, 96, 2))
  const { config, params } = loadHfDir(fixture('hf-llama'))
  const model = new GPT(new CpuBackend(), config, { maxBatch: B, maxSeqLen: T })
  model.setParams(params)
  const want = meanForward(model, val, B, T, steps)
  const got = evalJson('--init-from', fixture('hf-llama'), '--data', dir, '--batch-size', String(B), '--seq-len', String(T), '--steps', String(steps))
  assert.ok(Math.abs(got.val_loss - want) <= 1e-6 * got.val_loss, `val_loss ${got.val_loss}, expected ${want}`)
  assert.equal(got.steps, steps)
})

test('--init-from takes a run or checkpoint directory, as train\'s does: the same loss as the same weights from HF', () => {
  const B = 2, T = 8, steps = 2
  const shard = join(root, 'init-run.bin')
  writeShard(shard, randomTokens(steps * B * T + 1, 96, 9))
  const { config, params } = loadHfDir(fixture('hf-llama'))
  const run = join(root, 'init-run')
  writeCheckpoint(join(run, 'checkpoints', checkpointName(3)), {
    modelConfig: config, trainConfig: null, params, optimizer: null,
    progress: { step: 3, loader: null, rng: new Rng(1).state(), valLoss: null, bestValLoss: null },
  })
  const flags = ['--data', shard, '--batch-size', String(B), '--seq-len', String(T), '--steps', String(steps)]
  const want = evalJson('--init-from', fixture('hf-llama'), ...flags).val_loss
  for (const dir of [run, join(run, 'checkpoints', checkpointName(3))]) {
    const got = evalJson('--init-from', dir, ...flags)
    assert.equal(got.val_loss, want, dir)
    assert.equal(got.model, join(run, 'checkpoints', checkpointName(3)))
  }
})

test('the human line gives val_loss to 6 decimals; off a terminal, progress at the first and last batches with rate and ETA', () => {
  const B = 1, T = 8, steps = 20
  const shard = join(root, 'twenty.bin')
  const tokens = randomTokens(steps * B * T + 1, 96, 7)
  writeShard(shard, tokens)
  const r = llmts('eval', 'loss', '--init-from', fixture('hf-llama'), '--data', shard, '--batch-size', String(B), '--seq-len', String(T),
    '--steps', String(steps))
  assert.equal(r.code, 0, r.stderr)
  const m = /^val_loss (\d+\.\d{6}) over 20 batches of 1×8 tokens \(.*\)\n$/.exec(r.stdout)
  assert.ok(m, r.stdout)
  const { config, params } = loadHfDir(fixture('hf-llama'))
  const model = new GPT(new CpuBackend(), config, { maxBatch: B, maxSeqLen: T })
  model.setParams(params)
  const want = meanForward(model, tokens, B, T, steps)
  assert.ok(Math.abs(Number(m[1]) - want) <= 5e-7 + 1e-6 * want, `printed ${m[1]}, expected ${want}`)
  // off a terminal: the first and last batches (and one every ~10 s, none in a run this short), with rate and ETA
  const batches = [...r.stderr.matchAll(/^eval loss: batch (\d+)\/20 \| loss \d+\.\d{4} \| ([\d,]+|\?) tok\/s \| ETA (\d+s|\?)$/gm)]
  assert.deepEqual([batches[0]?.[1], batches.at(-1)?.[1], batches.at(-1)?.[3]], ['1', '20', '0s'], r.stderr)
})

test('a preset without weights is initialized from --seed: loss near ln(V), the same for the same seed', () => {
  const shard = join(root, 'gpt2-tokens.bin')
  writeShard(shard, randomTokens(40, 50257, 3))
  const args = ['--model', 'tiny-variant', '--data', shard, '--batch-size', '1', '--seq-len', '16', '--steps', '2', '--seed', '5']
  const a = evalJson(...args), b = evalJson(...args)
  assert.equal(a.val_loss, b.val_loss)
  assert.deepEqual([a.model, a.steps, a.batch_size, a.seq_len, a.tokens], ['tiny-variant', 2, 1, 16, 32], 'model: the --model value')
  // N(0, 0.02) weights give nearly uniform predictions over 50,257 tokens
  assert.ok(Math.abs(a.val_loss - Math.log(50257)) < 0.1, `val_loss ${a.val_loss}, expected about ${Math.log(50257)}`)
  // the weights are those of initWeights(--seed): the same loss computed here, and another seed gives another loss
  const tokens = [...readShard(shard)]
  const model = new GPT(new CpuBackend(), presetConfig('tiny-variant'), { maxBatch: 1, maxSeqLen: 16 })
  model.initWeights(5)
  const want = meanForward(model, tokens, 1, 16, 2)
  assert.ok(Math.abs(a.val_loss - want) <= 1e-6 * a.val_loss, `val_loss ${a.val_loss}, initWeights(5) gives ${want}`)
  assert.notEqual(evalJson(...args.slice(0, -1), '6').val_loss, a.val_loss)
})

test('without --seq-len, T is the context length up to 1024 (llm.c\'s and the report\'s)', () => {
  const file = join(root, 'long-context.json')
  writeFileSync(file, JSON.stringify({ preset: 'tiny-variant', contextLength: 2048 }))
  const shard = join(root, 'long.bin')
  writeShard(shard, randomTokens(1100, 50257, 6))
  assert.equal(evalJson('--model', file, '--data', shard, '--batch-size', '1', '--steps', '1').seq_len, 1024)
})

test('ranks: each evaluates every count-th of the batches one process reads, and the shares sum to its mean', () => {
  const B = 2, T = 8, steps = 5
  const tokens = randomTokens(steps * B * T + 3, 96, 4)
  const file = join(root, 'parts_val_000000.bin')
  writeShard(file, tokens)
  const { config, params } = loadHfDir(fixture('hf-llama'))
  const model = new GPT(new CpuBackend(), config, { maxBatch: B, maxSeqLen: T })
  model.setParams(params)
  const batch = (k: number): number => meanForward(model, tokens.slice(k * B * T), B, T, 1)
  const share = (index: number, count: number): number =>
    evaluateLoss(model, new DataLoader({ files: [file], B, T }), { B, T, steps, part: { index, count } })
  // rank 1 of 2 evaluates batches 1 and 3 (of 0..4); rank 2 of 3 batch 2 alone
  assert.ok(Math.abs(share(1, 2) - (batch(1) + batch(3)) / steps) <= 1e-7)
  assert.ok(Math.abs(share(2, 3) - batch(2) / steps) <= 1e-7)
  const want = meanForward(model, tokens, B, T, steps)
  for (const count of [2, 3]) {
    const sum = Array.from({ length: count }, (_, r) => share(r, count)).reduce((a, b) => a + b)
    assert.ok(Math.abs(sum - want) <= 1e-6 * want, `${count} ranks: ${sum} vs ${want}`)
  }
})

test('a non-finite loss is refused as bad input (the model\'s weights) by default; the trainer\'s option returns it', () => {
  const { config, params } = loadHfDir(fixture('hf-llama'))
  params[0] = NaN   // one embedding value of token 0
  const model = new GPT(new CpuBackend(), config, { maxBatch: 1, maxSeqLen: 8 })
  model.setParams(params)
  const source = { next: () => ({ inputs: new Int32Array(8), targets: new Int32Array(8).fill(1) }) }
  assert.throws(() => evaluateLoss(model, source, { B: 1, T: 8, steps: 2 }), (e: Error) => e instanceof InputError &&
    /eval: the model's loss on batch 0 is NaN \(its weights are diverged or broken/.test(e.message))
  assert.ok(Number.isNaN(evaluateLoss(model, source, { B: 1, T: 8, steps: 2, nonFinite: 'return' })))
})

test('bad inputs exit 2 with one line naming the problem', () => {
  const shard = join(root, 'small.bin'), empty = join(root, 'empty.bin')
  writeShard(shard, randomTokens(40, 96, 4))
  writeShard(empty, new Uint16Array(0))
  const exact = join(root, 'exact.bin'), plusOne = join(root, 'plus-one.bin')
  writeShard(exact, randomTokens(48, 96, 4))
  writeShard(plusOne, randomTokens(49, 96, 4))
  assert.equal(evalJson('--init-from', fixture('hf-gpt2'), '--data', plusOne, '--batch-size', '2', '--seq-len', '8', '--steps', '3').steps, 3)
  const cases: [string[], RegExp][] = [
    [['--model', 'tiny-gpt2', '--init-from', fixture('hf-gpt2'), '--data', shard], /differ: vocabSize 50257 vs 96/],
    [['--init-from', fixture('hf-gpt2'), '--data', shard, '--batch-size', '2', '--seq-len', '8', '--steps', '3'],
      /holds 2 batches .* fewer than --steps 3/],
    [['--init-from', fixture('hf-gpt2'), '--data', empty],
      /loader: no shard of .*empty\.bin holds one batch of B·T\+1 = 129 tokens \(B 4 × T 32\); the largest holds 0 /],
    // 48 = 3·B·T tokens hold only 2 batches with targets (the loader needs B·T + 1 per batch)
    [['--init-from', fixture('hf-gpt2'), '--data', exact, '--batch-size', '2', '--seq-len', '8', '--steps', '3'],
      /holds 2 batches .* fewer than --steps 3/],
    [['--init-from', fixture('hf-gpt2'), '--data', shard, '--seq-len', '64'], /--seq-len 64 exceeds the model's context length 32/],
    [['--init-from', fixture('hf-gpt2')], /--data is required/],
    [['--model', 'no-such-model', '--data', shard], /neither a preset .* nor an existing file/],
    [['--data', shard], /no model given/],
  ]
  for (const [args, re] of cases) {
    const r = llmts('eval', 'loss', ...args)
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, re)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  }
  const unknown = llmts('eval', 'perplexity')
  assert.equal(unknown.code, 2)
  assert.match(unknown.stderr, /unknown evaluation "perplexity"/)
  const flagFirst = llmts('eval', '--model', 'tiny-gpt2', '--data', shard)
  assert.equal(flagFirst.code, 2)
  assert.match(flagFirst.stderr, /llmts eval: the evaluation comes first, got "--model" \(usage: llmts eval loss\|hellaswag --model MODEL \.\.\.\)\n$/)
  assert.equal(flagFirst.stderr.trim().split('\n').length, 1)
})

test('a glob matching train and validation shards evaluates the validation ones, with a note; a directory its val split', () => {
  const d = join(root, 'both-splits')
  mkdirSync(d)
  writeShard(join(d, 'd_train_000001.bin'), randomTokens(40, 50257, 11))   // sorts first: it must not pass for val data
  writeShard(join(d, 'd_val_000000.bin'), randomTokens(40, 50257, 12))
  const args = ['--model', 'tiny-variant', '--batch-size', '1', '--seq-len', '16', '--steps', '1', '--seed', '5']
  const val = evalJson(...args, '--data', join(d, 'd_val_000000.bin')).val_loss
  const train = evalJson(...args, '--data', join(d, 'd_train_000001.bin')).val_loss
  assert.notEqual(val, train, 'the two shards give different losses')
  const r = llmts('eval', 'loss', ...args, '--data', join(d, '*.bin'), '--json')
  assert.equal(r.code, 0, r.stderr)
  assert.equal(JSON.parse(r.stdout).val_loss, val)
  assert.match(r.stderr, /^llmts eval loss: .*\*\.bin matches train and validation shards; evaluating the 1 validation shard \(\*_val_\*\), as for a directory$/m)
  // without --steps, a split smaller than the default 10 batches is evaluated whole, with a note; --steps 10 is refused
  const noSteps = ['--model', 'tiny-variant', '--batch-size', '1', '--seq-len', '16', '--seed', '5']
  const all = llmts('eval', 'loss', ...noSteps, '--data', join(d, 'd_val_000000.bin'), '--json')
  assert.equal(all.code, 0, all.stderr)
  assert.equal(JSON.parse(all.stdout).steps, 2)
  assert.match(all.stderr, /note: .*d_val_000000\.bin holds 2 batches of B 1 × T 16 tokens; evaluating all of them \(--steps defaults to 10\)/)
  const ten = llmts('eval', 'loss', ...noSteps, '--steps', '10', '--data', join(d, 'd_val_000000.bin'))
  assert.equal(ten.code, 2)
  assert.match(ten.stderr, /holds 2 batches of B 1 × T 16 tokens, fewer than --steps 10/)
  const dir = llmts('eval', 'loss', ...args, '--data', d, '--json')
  assert.equal(JSON.parse(dir.stdout).val_loss, val)
  assert.doesNotMatch(dir.stderr, /matches train and validation/, 'a directory is documented to mean its val split')
})

test('a shard too small for one batch is skipped with a note naming it; none big enough is refused, naming the size', () => {
  const d = join(root, 'short-last')
  mkdirSync(d)
  writeShard(join(d, 'd_val_000000.bin'), randomTokens(40, 50257, 12))   // 2 batches of 1×16
  writeShard(join(d, 'd_val_000001.bin'), randomTokens(10, 50257, 13))   // a split's short last shard: 10 < 17
  const model = ['--model', 'tiny-variant', '--seq-len', '16', '--steps', '2', '--seed', '5'], args = [...model, '--batch-size', '1']
  const alone = evalJson(...args, '--data', join(d, 'd_val_000000.bin')).val_loss
  const r = llmts('eval', 'loss', ...args, '--data', d, '--json')
  assert.equal(r.code, 0, r.stderr)
  assert.equal(JSON.parse(r.stdout).val_loss, alone, 'the batches of the shard that holds them')
  assert.match(r.stderr, /^llmts eval loss: note: skipping 1 shard of .*short-last smaller than one batch of B·T\+1 = 17 tokens: .*d_val_000001\.bin \(10 tokens\)$/m)
  const none = llmts('eval', 'loss', ...model, '--batch-size', '3', '--data', d)   // 49 tokens a batch: neither shard holds one
  assert.equal(none.code, 2, none.stderr)
  assert.match(none.stderr, /^llmts eval loss: loader: no shard of .*short-last holds one batch of B·T\+1 = 49 tokens \(B 3 × T 16\); the largest holds 40 \(lower --batch-size\/--seq-len or prepare more tokens\)\n$/)
})
