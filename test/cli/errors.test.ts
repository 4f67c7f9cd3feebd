// The error line of every command starts `llmts COMMAND: ` (the command as typed; `llmts: ` before one is known),
// once: a tag that repeats the command (`train: `, `llmts train --default-run: `, `hellaswag: ` in eval
// hellaswag) is replaced, a deeper module's tag (`shards: `) stays after it. The messages are the modules' own;
// the internal-error and multi-rank lines are checked in test/train/data-parallel.test.ts. Notes and warnings on
// stderr start the same way (commandLine in src/cli/output.ts).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeShard } from '../../src/data/shards.js'

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'llmts-errors-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

const llmts = (args: string[]) =>
  spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', env: { ...process.env, LLMTS_DEBUG: '' } })

/** Asserts that `args` exits `code` with exactly `line` on stderr, whose command tag is not repeated after it. */
function expectLine(args: string[], line: string, code = 2): void {
  const r = llmts(args)
  assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`)
  assert.equal(r.stderr, `${line}\n`)
  const words = line.slice(0, line.indexOf(': ')).split(' ').slice(1)   // 'llmts eval loss' -> eval, loss
  const after = line.slice(line.indexOf(': ') + 2)
  for (const tag of ['llmts', words.join(' '), ...words].filter(t => t !== '')) {
    assert.ok(!after.startsWith(`${tag}: `) && !after.startsWith(`${tag} --`), `${tag} repeated: ${line}`)
  }
}

test('a flag error and a config-layer error of one command share the prefix `llmts train: `', () => {
  // the flag parser's message was "llmts train: ...", the config check's "train: ..."
  expectLine(['train', '--precision', 'half'], 'llmts train: --precision expects one of auto, bf16, tf32, fp32, got "half"')
  expectLine(['train', '--steps', '5'],
    'llmts train: --data is required (train shards from llmts prepare: a directory, a shard file or a glob)')
  // was "llmts train --default-run: ..."
  expectLine(['train', '--default-run', '--lr', '1'], 'llmts train: --lr is not a setting of the default run ' +
    '(it takes --steps, --out, --device, --threads, --precision, --json; its settings are in src/train/default-run.ts)')
})

test('an error from deep code keeps its module tag after the command: `llmts eval loss: shards: `', () => {
  const shard = join(root, 'bad_val_000000.bin')
  writeFileSync(shard, Buffer.alloc(1024 + 8))   // a header of zeros: magic 0
  const r = llmts(['eval', 'loss', '--model', 'tiny-gpt2', '--data', shard])
  assert.equal(r.status, 2, r.stderr)
  assert.match(r.stderr, /^llmts eval loss: shards: \S+bad_val_000000\.bin has magic 0, expected 20240520 .*\n$/)
  expectLine(['train', '--data', root, '--steps', '2', '--warmup-steps', '1'],
    `llmts train: shards: directory ${root} has no train shards (*_train_*.bin) (prepare them with llmts prepare)`)
})

test('an error that quotes a user\'s bytes is still one line without control characters', () => {
  // a path holding a newline: the error was two lines
  expectLine(['train', '--data', 'no\nsuch\tdir', '--steps', '2', '--warmup-steps', '1'],
    'llmts train: shards: no such file or directory: no such dir')
  // JSON.parse quotes the bytes near the fault: a binary --config's escape sequences reached the terminal (clear, bell)
  const config = join(root, 'binary.json')
  writeFileSync(config, '\x1b[2J\x07boom')
  const r = llmts(['train', '--config', config])
  assert.equal(r.status, 2, r.stderr)
  assert.ok(r.stderr.startsWith(`llmts train: --config ${config}: not valid JSON (`) && r.stderr.includes('?[2J?boom'), r.stderr)
  assert.ok(!/[\u0000-\u001f\u007f-\u009f]/.test(r.stderr.slice(0, -1)) && r.stderr.endsWith('\n'), JSON.stringify(r.stderr))
})

test('a module tag that only repeats the command is the command\'s: eval hellaswag, plot', () => {
  const missing = join(root, 'missing.jsonl')
  expectLine(['eval', 'hellaswag', '--model', 'tiny-gpt2', '--data', missing],   // was "hellaswag: cannot read ..."
    `llmts eval hellaswag: cannot read ${missing}: no such file (ENOENT)`)
  expectLine(['plot'], 'llmts plot: expects one or more RUN_DIR arguments (directories with log.jsonl)')
})

test('prepare fineweb is named as typed, once: `llmts prepare fineweb: `', () => {
  // was "llmts prepare: llmts prepare fineweb: --workers ..."
  expectLine(['prepare', 'fineweb', '--workers', 'x'], 'llmts prepare fineweb: --workers expects a non-negative integer, got "x"')
})

test('before a command is known the prefix is `llmts: `; an unknown evaluation is `llmts eval: `', () => {
  expectLine(['bogus'],
    'llmts: unknown command "bogus" (expected one of prepare, tokenize, model, train, sample, eval, export, download, plot, compare)')
  expectLine(['eval', 'bogus'], 'llmts eval: unknown evaluation "bogus" (expected one of loss, hellaswag)')
})

test('in eval loss, the loss module\'s `eval: ` tag repeats the first word of the command: it is dropped', () => {
  // the Llama fixture with every weight 1e38 (finite, as the loader requires; the activations overflow): the loss
  // check (src/eval/loss.ts) throws "eval: the model's loss ..."
  const dir = join(root, 'nan-llama'), fixture = join(process.cwd(), 'test/fixtures/hf-llama')
  mkdirSync(dir)
  copyFileSync(join(fixture, 'config.json'), join(dir, 'config.json'))
  const st = readFileSync(join(fixture, 'model.safetensors'))
  const data = 8 + Number(st.readBigUInt64LE(0))   // the data after the header: F32 values
  for (let at = data; at < st.length; at += 4) st.writeFloatLE(1e38, at)
  writeFileSync(join(dir, 'model.safetensors'), st)
  const shard = join(root, 'nan_val_000000.bin')
  writeShard(shard, new Uint16Array(64).map((_, i) => i % 96))
  const r = llmts(['eval', 'loss', '--model', dir, '--data', shard, '--batch-size', '1', '--seq-len', '8', '--steps', '1'])
  assert.equal(r.status, 2, r.stderr)
  assert.equal(r.stderr.split('\n').at(-2),   // after the backend line
    'llmts eval loss: the model\'s loss on batch 0 is NaN (its weights are diverged or broken; expected a finite loss)')
})

test('notes and warnings share the prefix: train\'s validation-cap note, plot\'s non-finite note', () => {
  // the library's note read "train: the validation shards ...", plot's "plot: note: run ..."
  const data = join(root, 'notes')
  mkdirSync(data)
  writeShard(join(data, 'n_val_000000.bin'), new Uint16Array(200).map((_, i) => i % 96))   // floor(199 / (2·16)) = 6 batches
  writeShard(join(data, 'n_train_000001.bin'), new Uint16Array(2000).map((_, i) => (7 * i) % 96))
  const run = join(root, 'notes-run')
  const t = llmts(['train', '--data', join(data, 'n_train_000001.bin'), '--val-data', join(data, 'n_val_000000.bin'), '--model', 'tiny-gpt2',
    '--steps', '1', '--warmup-steps', '1', '--batch-size', '2', '--seq-len', '16', '--total-batch-size', '32',
    '--val-every', '1', '--val-steps', '100', '--threads', '1', '--out', run])
  assert.equal(t.status, 0, t.stderr)
  assert.equal(t.stderr.split('\n')[0],
    'llmts train: the validation shards hold 6 batches of B·T = 2·16 tokens; each validation reads those instead of --val-steps 100')
  writeFileSync(join(run, 'log.jsonl'), '{"step": 1, "loss": 3}\n{"step": 2, "loss": null}\n{"step": 3, "loss": 2}\n')
  const p = llmts(['plot', run, '--out', join(root, 'notes.svg')])
  assert.equal(p.status, 0, p.stderr)
  assert.equal(p.stderr, 'llmts plot: note: run notes-run: 1 step logged a non-finite loss (null in log.jsonl); left out\n')
})
