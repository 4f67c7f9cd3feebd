// Through the binary: corrupt inputs of every kind give exit code 2 and one stderr line naming the file (no
// stack trace), and impossible settings are refused before any work starts (no run directory is created,
// an existing run is left untouched), each with its reason.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative, resolve, sep } from 'node:path'
import { parquetWriteBuffer } from 'hyparquet-writer'
import { writeShard } from '../../src/data/shards.js'
import { makeToyRun, tinyModelJson } from '../train/helpers.js'
import { readLog } from '../../src/train/log.js'
import { isOneLine, llmts, main, start, tempRoot } from './helpers.js'

const root = tempRoot('cli')
const toy = makeToyRun(root)
const small = ['--model', toy.modelJson, '--data', toy.data, '--batch-size', '4', '--seq-len', '16', '--total-batch-size', '64',
  '--steps', '4', '--warmup-steps', '1', '--val-every', '2', '--val-steps', '1', '--checkpoint-every', '2', '--device', 'cpu']

function expectInputError(args: string[], file: string, re: RegExp): void {
  const r = llmts(args)
  assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}: ${r.stderr}`)
  assert.ok(isOneLine(r.stderr), `one line, no stack: ${r.stderr}`)
  assert.ok(r.stderr.includes(file), `names ${file}: ${r.stderr}`)
  assert.match(r.stderr, re)
}

test('corrupt inputs through the CLI: exit 2, one line naming the file', { timeout: 120_000 }, () => {
  // a token shard whose tail is cut off
  const data = join(root, 'cut')
  mkdirSync(data)
  writeShard(join(data, 'x_val_000000.bin'), Array.from({ length: 3000 }, (_, i) => i % 96))
  writeShard(join(data, 'x_train_000001.bin'), Array.from({ length: 3000 }, (_, i) => i % 96))
  const shard = join(data, 'x_train_000001.bin')
  writeFileSync(shard, readFileSync(shard).subarray(0, 4000))
  expectInputError(['train', ...small, '--data', data, '--out', join(root, 'r1')], shard, /truncated or corrupted/)
  assert.ok(!existsSync(join(root, 'r1', 'log.jsonl')))

  // a model config that is not JSON (the parser's message quotes several lines of it)
  const cfg = join(root, 'bad-model.json')
  writeFileSync(cfg, '{\n "preset": "tiny-gpt2",\n "layers": 2,,\n "heads": 4\n}\n')
  expectInputError(['train', ...small, '--model', cfg, '--out', join(root, 'r2')], cfg, /is not a JSON config file/)
  const train = join(root, 'train.json')
  writeFileSync(train, '{\n "steps": 4\n "lr": 1\n}')
  expectInputError(['train', ...small, '--config', train, '--out', join(root, 'r3')], train, /not valid JSON/)

  // a Hugging Face directory whose weights file is truncated
  const hf = join(root, 'hf')
  cpSync(join(process.cwd(), 'test', 'fixtures', 'hf-llama'), hf, { recursive: true })
  const weights = join(hf, 'model.safetensors')
  writeFileSync(weights, readFileSync(weights).subarray(0, 3000))
  // (eval loss reads the weights; sample refuses this 96-token vocabulary from config.json, before them)
  expectInputError(['eval', 'loss', '--model', hf, '--data', toy.data], weights, /past the data|truncated/)

  // prepare: a JSONL line that is not JSON, a Parquet file with a torn footer
  const jsonl = join(root, 'docs.jsonl')
  writeFileSync(jsonl, '{"text": "one"}\n{"text": "two\n{"text": "three"}\n')
  expectInputError(['prepare', jsonl, '--out', join(root, 'p1'), '--workers', '0'], jsonl, /:2: invalid JSON/)
  const pq = join(root, 'docs.parquet')
  const bytes = new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'text', data: ['a', 'b'], type: 'STRING' }] }))
  writeFileSync(pq, bytes.subarray(0, bytes.length - 9))
  expectInputError(['prepare', pq, '--out', join(root, 'p2'), '--workers', '0'], pq, /not a readable Parquet file/)

  // HellaSwag: a line without endings
  const hs = join(root, 'hs.jsonl')
  writeFileSync(hs, '{"ind": 1, "activity_label": "a", "ctx_a": "b", "ctx_b": "c", "label": 0}\n')
  // (a GPT-2-vocabulary preset: the toy model's 96 tokens are refused before the data is read)
  expectInputError(['eval', 'hellaswag', '--model', 'tiny-gpt2', '--data', hs, '--device', 'cpu'], hs, /"endings" must be an array of 4 strings/)
})

test('a damaged checkpoint through the CLI: a warning and a resume from the previous one; none intact: exit 2', { timeout: 120_000 }, () => {
  const run = join(root, 'run')
  assert.equal(llmts(['train', ...small, '--out', run]).code, 0)
  const state = join(run, 'checkpoints', 'step_000004', 'state.json')
  writeFileSync(state, readFileSync(state, 'utf8').replace('"step": 4', '"step": "four"'))
  const r = llmts(['train', '--out', run, '--resume'])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, /warning: --resume skips a damaged checkpoint \(checkpoint: .*step_000004\/state\.json: "step" must be a non-negative integer \(damaged checkpoint state\)\); moved to .*step_000004\.damaged/)
  assert.match(r.stderr, /resuming at step 2/)
  const opt = join(run, 'checkpoints', 'step_000002', 'optimizer.safetensors')
  writeFileSync(opt, readFileSync(opt).subarray(1))
  for (const n of ['step_000004']) writeFileSync(join(run, 'checkpoints', n, 'state.json'), '{')
  const none = llmts(['train', '--out', run, '--resume'])
  assert.equal(none.code, 2, none.stderr)
  assert.match(none.stderr.trim().split('\n').at(-1)!, /^llmts train: --resume: no intact checkpoint in .*; start over with --overwrite$/)
})

test('impossible settings are refused before any work, with the reason', { timeout: 120_000 }, () => {
  const model = (over: object): string => {
    const p = join(root, `m-${Object.keys(over).join('-')}.json`)
    writeFileSync(p, JSON.stringify({ ...tinyModelJson, ...over }))
    return p
  }
  const out = join(root, 'never')
  const cases: [string[], RegExp][] = [
    [['--model', model({ heads: 5 })], /heads \(5\) must divide channels \(32\)/],
    [['--model', model({ kvHeads: 3 })], /kvHeads \(3\) must divide heads \(4\)/],
    [['--model', model({ layers: 5000 })], /layers must be at most 1024/],
    [['--model', model({ preset: 'tiny-gtp2' })], /unknown model preset "tiny-gtp2"/],
    [['--model', 'gpt2-1b'], /neither a preset .* nor an existing file/],
    [['--model', model({ layers: 1000, channels: 4096, mlpHidden: 16384 })],
      /needs at least [\d.]+ GiB for weights and optimizer state; this machine has/],
    [['--total-batch-size', '100'], /--total-batch-size 100 is not a multiple of --batch-size × --seq-len × --nproc = 4·16·1 = 64/],
    [['--seq-len', '64', '--total-batch-size', '256'], /--seq-len 64 exceeds the model's context length 32/],
    [['--on-nan', 'ignore'], /--on-nan expects one of stop, skip/],
    [['--skip-spikes', '-1'], /--skip-spikes/],
  ]
  for (const [over, re] of cases) {
    const r = llmts(['train', ...small, ...over, '--out', out])
    assert.equal(r.code, 2, `${over.join(' ')}: exit ${r.code}: ${r.stderr}`)
    assert.ok(isOneLine(r.stderr), r.stderr)
    assert.match(r.stderr, re)
    assert.ok(!existsSync(out), `${over.join(' ')}: refused before creating the run directory`)
  }
  // resuming with another model leaves the run untouched
  const run = join(root, 'run2')
  assert.equal(llmts(['train', ...small, '--out', run]).code, 0)
  const log = readFileSync(join(run, 'log.jsonl'))
  const r = llmts(['train', '--out', run, '--resume', '--model', 'tiny-gpt2'])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /--resume continues .* with its own model .*drop --model\/--init-from/)
  assert.ok(readFileSync(join(run, 'log.jsonl')).equals(log))
})

test('a model too large for the machine is refused by every command before allocating it', { timeout: 60_000 }, () => {
  const huge = join(root, 'huge-model.json')
  writeFileSync(huge, JSON.stringify({ preset: 'tiny-gpt2', contextLength: 1_000_000_000 }))
  const out = join(root, 'huge-export')
  for (const args of [['export', '--model', huge, '--out', out], ['sample', '--model', huge], ['eval', 'loss', '--model', huge, '--data', toy.data],
    ['eval', 'hellaswag', '--model', huge, '--data', join(root, 'absent.jsonl')]]) {
    const r = llmts(args)
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}: ${r.stderr}`)
    assert.ok(isOneLine(r.stderr), r.stderr)
    assert.match(r.stderr, /the model has [\d,]+ parameters and needs at least [\d.]+ GiB for its weights; this machine has/)
  }
  assert.ok(!existsSync(out))
})

test('--overwrite deletes nothing, and a new run creates nothing, when the settings are refused', { timeout: 60_000 }, () => {
  const run = join(root, 'kept')
  assert.equal(llmts(['train', ...small, '--out', run]).code, 0)
  const before = readdirSync(run).sort()
  const log = readFileSync(join(run, 'log.jsonl'))
  for (const over of [['--batch-size', '400', '--seq-len', '32', '--total-batch-size', '12800'], ['--val-data', join(root, 'absent-val')]]) {
    for (const out of [run, join(root, 'never-made')]) {
      const r = llmts(['train', ...small, ...over, '--out', out, ...(out === run ? ['--overwrite'] : [])])
      assert.equal(r.code, 2, `${over.join(' ')}: exit ${r.code}: ${r.stderr}`)
      assert.ok(isOneLine(r.stderr), r.stderr)
    }
    assert.deepEqual(readdirSync(run).sort(), before, `${over.join(' ')}: the run is as it was`)
    assert.ok(readFileSync(join(run, 'log.jsonl')).equals(log))
    assert.ok(!existsSync(join(root, 'never-made')), `${over.join(' ')}: no empty run directory`)
  }
})

test('a closed stderr (2>&1 | head) does not stop training', { timeout: 60_000 }, async () => {
  const out = join(root, 'epipe')
  const { child, done } = start(['train', ...small, '--out', out], { onStderr: (_, c) => c.stderr!.destroy() })
  const r = await done
  assert.equal(child.exitCode ?? r.code, 0, r.stderr)
  assert.deepEqual(readLog(join(out, 'log.jsonl')).filter(l => 'loss' in l).map(l => l['step']), [1, 2, 3, 4])
})

test('--resume from another folder names the saved relative --data', { timeout: 60_000 }, () => {
  const out = join(root, 'rel-run')
  const rel = relative(process.cwd(), toy.data)
  assert.equal(llmts(['train', ...small, '--data', rel, '--out', out, '--steps', '2']).code, 0)
  // deeper than the current directory, so the saved path's leading '..'s cannot climb to / and find the shards again
  const elsewhere = join(root, 'elsewhere', ...process.cwd().split(sep).filter(Boolean).map((_, i) => `d${i}`))
  mkdirSync(elsewhere, { recursive: true })
  assert.notEqual(resolve(elsewhere, rel), resolve(toy.data), 'the relative --data must not resolve from elsewhere')
  const r = spawnSync(process.execPath, [main, 'train', '--out', out, '--resume', '--steps', '4'],
    { cwd: elsewhere, encoding: 'utf8', env: { ...process.env, LLMTS_DEBUG: '' } })
  assert.equal(r.status, 2, r.stderr)
  assert.ok(isOneLine(r.stderr), r.stderr)
  assert.match(r.stderr, /as .*rel-run saved it, from the current directory; give --data\/--val-data to point at the shards/)
})

test('a NaN validation loss is never the best one: no best/ from diverged weights', { timeout: 60_000 }, () => {
  const out = join(root, 'nan-best')
  const r = llmts(['train', ...small, '--steps', '12', '--lr', '1e30', '--on-nan', 'skip', '--out', out])
  assert.equal(r.code, 3, r.stderr)
  assert.match(r.stderr, /val loss NaN/)
  assert.doesNotMatch(r.stderr, /NaN \(best\)/)
  assert.doesNotMatch(r.stderr, /or --on-nan skip/, 'skip is already on')
  assert.ok(!existsSync(join(out, 'best')))
})

test('resuming a finished run says so and changes nothing; --resume notes each setting it changes', { timeout: 60_000 }, () => {
  const run = join(root, 'finished')
  assert.equal(llmts(['train', ...small, '--out', run]).code, 0)
  const log = readFileSync(join(run, 'log.jsonl'))
  const r = llmts(['train', '--out', run, '--resume'])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /\/finished had already finished at step 4 \(of --steps 4\); nothing to do \(a larger --steps trains it further\)\n$/)
  assert.ok(readFileSync(join(run, 'log.jsonl')).equals(log))
  assert.doesNotMatch(r.stderr, /--resume with/, 'nothing changed, nothing noted')
  // a changed setting is noted (from the resumed step on); extending with --steps with the learning rate it moves:
  // step 5 (s = 4) of 6 after a warmup of 1 is at 3/5 of the cosine, 0.1·lr + ½(1 + cos 0.6π)·0.9·lr = 5.05e-3 for lr
  // 0.0123, where the 4-step schedule had reached its minimum, 1.23e-3
  const more = llmts(['train', '--out', run, '--resume', '--steps', '6', '--lr', '0.0123', '--val-every', '1'])
  assert.equal(more.code, 0, more.stderr)
  const notes = more.stderr.split('\n').filter(l => l.includes('--resume with'))
  assert.equal(notes.length, 3, more.stderr)
  assert.equal(notes[0]!, 'llmts train: note: --resume with --steps 6 (the run had 4), from step 4: the cosine now decays over 6 steps, ' +
    "so step 5's learning rate is 5.05e-3 (1.23e-3 with --steps 4)")
  assert.match(notes[1]!, /^llmts train: note: --resume with --lr 0\.0123 \(the run had [\d.e-]+\), from step 4$/)
  assert.match(notes[2]!, /^llmts train: note: --resume with --val-every 1 \(the run had 2\), from step 4$/)
  assert.equal(Number(readLog(join(run, 'log.jsonl')).find(l => l.step === 5 && 'lr' in l)?.['lr']).toExponential(2), '5.05e-3', 'the rate step 5 used')
  // each step line counts the tokens trained so far, across a resume that doubles the total batch
  const bigger = llmts(['train', '--out', run, '--resume', '--steps', '8', '--total-batch-size', '128'])
  assert.equal(bigger.code, 0, bigger.stderr)
  assert.match(bigger.stderr, /--resume with --total-batch-size 128 \(the run had 64\), from step 6/)
  const tokens = readLog(join(run, 'log.jsonl')).filter(l => 'loss' in l).map(l => [l.step, l['tokens']])
  assert.deepEqual(tokens, [[1, 64], [2, 128], [3, 192], [4, 256], [5, 320], [6, 384], [7, 512], [8, 640]])
})

test('a --resume whose changed setting the saved data position cannot follow names that setting', { timeout: 60_000 }, () => {
  const run = join(root, 'reshuffled')
  assert.equal(llmts(['train', ...small, '--out', run, '--steps', '2']).code, 0)
  const r = llmts(['train', '--out', run, '--resume', '--steps', '4', '--shuffle', 'on'])
  assert.equal(r.code, 2, r.stderr)
  assert.ok(isOneLine(r.stderr), r.stderr)
  assert.match(r.stderr,
    /step_000002\/state\.json: .*; this --resume changes --shuffle off → on, which the saved data position depends on \(keep the run's value\)/)
})

test('--resume refuses another --seed, which nothing would use; a setting the run left empty is noted as none given', { timeout: 60_000 }, () => {
  const run = join(root, 'reseeded')
  assert.equal(llmts(['train', ...small, '--out', run, '--steps', '2']).code, 0)
  const config = readFileSync(join(run, 'config.json')), log = readFileSync(join(run, 'log.jsonl'))
  const r = llmts(['train', '--out', run, '--resume', '--steps', '4', '--seed', '5'])
  assert.equal(r.code, 2, r.stderr)
  assert.ok(isOneLine(r.stderr), r.stderr)
  assert.match(r.stderr, /^llmts train: --resume with --seed 5: the run's seed 1337 drew its initial weights, .*\(drop --seed, or start a new run\)$/m)
  assert.ok(readFileSync(join(run, 'config.json')).equals(config) && readFileSync(join(run, 'log.jsonl')).equals(log), 'the run is untouched')
  const v = llmts(['train', '--out', run, '--resume', '--steps', '3', '--val-data', toy.data])
  assert.equal(v.code, 0, v.stderr)
  assert.match(v.stderr, /^llmts train: note: --resume with --val-data \S+ \(the run had none given\), from step 2$/m)
})
