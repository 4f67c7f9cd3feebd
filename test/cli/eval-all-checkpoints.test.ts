// `llmts eval loss|hellaswag --all-checkpoints` on a real (tiny, CPU) training run with three step checkpoints:
// each checkpoint's result must be exactly what the command gives for `--model RUN/checkpoints/step_N` alone (a
// fresh process, backend and model: the independent truth), in step order, with "step" in --json; the text mode's
// last line names the best. What is not a run is refused in one line; a damaged checkpoint is a warning, the others'
// results stand, and the exit code is 2; checkpoints of another architecture are refused before any is evaluated.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkpointName, listCheckpoints, readCheckpoint, writeCheckpoint } from '../../src/train/checkpoint.js'
import { makeToyRun, randomCheckpoint } from '../train/helpers.js'

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'llmts-eval-all-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const hellaswagData = resolve(process.cwd(), 'test/fixtures/hellaswag/val.jsonl')

function llmts(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [main, ...args, '--device', 'cpu', '--threads', '1'],
    { encoding: 'utf8', env: { ...process.env, LLMTS_DEBUG: '' } })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

// a GPT-2-vocabulary model (HellaSwag is text; the toy shards' ids are GPT-2 ids), trained 6 steps at a high rate so
// that its checkpoints score differently: checkpoints at steps 2, 4 and 6
const toy = makeToyRun(root)
const modelJson = join(root, 'gpt2vocab.json')
writeFileSync(modelJson, JSON.stringify({ preset: 'tiny-variant', contextLength: 64, layers: 1, channels: 32, heads: 4, kvHeads: 2, mlpHidden: 64 }))
const run = join(root, 'run')
const trained = llmts('train', '--model', modelJson, '--data', toy.data, '--batch-size', '4', '--seq-len', '16', '--total-batch-size', '64',
  '--steps', '6', '--lr', '0.03', '--warmup-steps', '1', '--val-every', '0', '--checkpoint-every', '2', '--keep-checkpoints', '0', '--out', run)
const steps = listCheckpoints(run).map(c => c.step)
const stepDir = (dir: string, step: number): string => join(dir, 'checkpoints', checkpointName(step))

const lossArgs = ['--data', toy.data, '--batch-size', '2', '--seq-len', '16', '--steps', '3']
const hellaswagArgs = ['--data', hellaswagData, '--scoring', 'llmc']   // llm.c's acc_norm tells these checkpoints apart
const evaluations = [
  { what: 'loss', args: lossArgs, key: 'val_loss', want: 'lowest' },
  { what: 'hellaswag', args: hellaswagArgs, key: 'acc_norm', want: 'highest' },
] as const

/** What `llmts eval WHAT --model CHECKPOINT` prints alone, text and JSON, for each checkpoint of `dir`. */
function singles(what: string, args: readonly string[], dir: string, only = steps): { text: string; json: Record<string, unknown> }[] {
  return only.map(step => {
    const text = llmts('eval', what, '--model', stepDir(dir, step), ...args)
    const json = llmts('eval', what, '--model', stepDir(dir, step), ...args, '--json')
    assert.equal(text.code, 0, text.stderr)
    assert.equal(json.code, 0, json.stderr)
    return { text: text.stdout, json: JSON.parse(json.stdout) as Record<string, unknown> }
  })
}

test('the training run has step checkpoints 2, 4 and 6', () => {
  assert.equal(trained.code, 0, trained.stderr)
  assert.deepEqual(steps, [2, 4, 6])
})

for (const e of evaluations) {
  test(`eval ${e.what} --all-checkpoints: each checkpoint's result is the single-checkpoint command's, in step order`, () => {
    const alone = singles(e.what, e.args, run)
    const scores = alone.map(s => s.json[e.key] as number)
    assert.ok(new Set(scores).size === scores.length, `the checkpoints must score differently for this test to tell them apart: ${scores}`)
    // text: "step N: " + the usual line, one per checkpoint, then the best
    const text = llmts('eval', e.what, '--model', run, '--all-checkpoints', ...e.args)
    assert.equal(text.code, 0, text.stderr)
    const best = e.want === 'lowest' ? Math.min(...scores) : Math.max(...scores), bestStep = steps[scores.indexOf(best)]!
    const lines = text.stdout.split('\n')
    assert.deepEqual(lines.slice(0, steps.length), steps.map((s, i) => `step ${s}: ${alone[i]!.text.trimEnd()}`))
    const shown = e.what === 'loss' ? `val_loss ${best.toFixed(6)}` : `acc_norm ${(100 * best).toFixed(2)}%`
    assert.ok(lines[steps.length]!.startsWith(`best: step ${bestStep}, ${shown}`), lines[steps.length])
    assert.ok(lines[steps.length]!.endsWith(`(${stepDir(run, bestStep)})`), lines[steps.length])
    assert.deepEqual(lines.slice(steps.length + 1), [''])
    // progress says which checkpoint
    for (const [i, s] of steps.entries()) assert.match(text.stderr, new RegExp(`checkpoint ${i + 1}/3 \\(step ${s}\\) \\| `))
    // --json: JSON Lines, each the single command's object with its step, and no best line
    const json = llmts('eval', e.what, '--model', run, '--all-checkpoints', ...e.args, '--json')
    assert.equal(json.code, 0, json.stderr)
    const records = json.stdout.trimEnd().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
    assert.deepEqual(records, steps.map((step, i) => ({ step, ...alone[i]!.json })))
  })
}

test('what is not a run directory with step checkpoints is refused in one line, exit 2', () => {
  const bestOnly = join(root, 'best-only')
  cpSync(stepDir(run, 2), join(bestOnly, 'best'), { recursive: true })
  const empty = join(root, 'empty-run')
  mkdirSync(join(empty, 'checkpoints'), { recursive: true })
  const cases: [string[], RegExp][] = [
    [['--model', stepDir(run, 2)], /needs --model RUN_DIR \(a training run directory, with checkpoints\/step_N\); .*step_000002 is one checkpoint \(of the run .*run\)$/],
    [['--model', join(run, 'checkpoints')], /; .*checkpoints is the checkpoints folder of the run .*run$/],
    [['--model', 'tiny-gpt2'], /needs --model RUN_DIR .*; tiny-gpt2 is a preset$/],
    [['--model', resolve(process.cwd(), 'test/fixtures/hf-gpt2')], /; .*hf-gpt2 is a Hugging Face directory$/],
    [['--model', join(root, 'nowhere')], /; .*nowhere does not exist$/],
    [['--init-from', run], /--all-checkpoints takes every checkpoint's weights from --model RUN_DIR; drop --init-from$/],
    [['--model', modelJson, '--init-from', run], /drop --init-from$/],
    [[], /--all-checkpoints needs --model RUN_DIR \(a training run directory, with checkpoints\/step_N\)$/],
    [['--model', bestOnly], /best-only has no step checkpoints \(expected .*best-only\/checkpoints\/step_N; its best\/ alone: --model .*best-only\/best without --all-checkpoints\)$/],
    [['--model', empty], /empty-run has no step checkpoints \(expected .*empty-run\/checkpoints\/step_N\)$/],
  ]
  for (const e of evaluations) {
    for (const [args, re] of cases) {
      const r = llmts('eval', e.what, ...args, '--all-checkpoints', ...e.args)
      assert.equal(r.code, 2, `${e.what} ${args.join(' ')}: ${r.stderr}`)
      assert.equal(r.stdout, '')
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
      assert.ok(r.stderr.startsWith(`llmts eval ${e.what}: `), r.stderr)
      assert.match(r.stderr.trimEnd(), re)
    }
  }
})

/** Flips one byte in the middle of `path`. */
function corrupt(path: string): void {
  const fd = openSync(path, 'r+'), b = Buffer.alloc(1), at = 4096
  try { readSync(fd, b, 0, 1, at); b[0] = b[0]! ^ 0xff; writeSync(fd, b, 0, 1, at) } finally { closeSync(fd) }
}

test('a damaged checkpoint is a warning and skipped: the others\' results stand, then an error names it, exit 2', () => {
  const damaged = join(root, 'damaged')
  cpSync(run, damaged, { recursive: true })
  corrupt(join(stepDir(damaged, 4), 'model.safetensors'))
  for (const e of evaluations) {
    const alone = singles(e.what, e.args, damaged, [2, 6])
    const broken = llmts('eval', e.what, '--model', stepDir(damaged, 4), ...e.args)
    assert.equal(broken.code, 2, 'the single command refuses it')
    const text = llmts('eval', e.what, '--model', damaged, '--all-checkpoints', ...e.args)
    assert.equal(text.code, 2, text.stderr)
    const lines = text.stdout.split('\n')
    assert.deepEqual(lines.slice(0, 2), [`step 2: ${alone[0]!.text.trimEnd()}`, `step 6: ${alone[1]!.text.trimEnd()}`])
    assert.match(lines[2]!, /^best: step [26], /)
    const reason = broken.stderr.trimEnd().replace(`llmts eval ${e.what}: `, '')
    assert.ok(text.stderr.includes(`llmts eval ${e.what}: warning: checkpoint 2/3 (step 4) skipped: ${reason}\n`), text.stderr)
    assert.match(text.stderr, /fails its checksum/)
    assert.ok(text.stderr.endsWith(`llmts eval ${e.what}: 1 of 3 checkpoints could not be evaluated and was skipped (step 4; ` +
      'see the warnings above); the others\' results are printed\n'), text.stderr)
    const json = llmts('eval', e.what, '--model', damaged, '--all-checkpoints', ...e.args, '--json')
    assert.equal(json.code, 2)
    assert.deepEqual(json.stdout.trimEnd().split('\n').map(l => JSON.parse(l) as unknown),
      [{ step: 2, ...alone[0]!.json }, { step: 6, ...alone[1]!.json }])
  }
  // a step directory without state.json (never written whole) is damaged too
  const stateless = join(root, 'stateless')
  cpSync(run, stateless, { recursive: true })
  rmSync(join(stepDir(stateless, 6), 'state.json'))
  const r = llmts('eval', 'loss', '--model', stateless, '--all-checkpoints', ...lossArgs)
  assert.equal(r.code, 2)
  assert.deepEqual(r.stdout.split('\n').map(l => l.slice(0, 7)), ['step 2:', 'step 4:', 'best: s', ''])
  assert.match(r.stderr, /warning: checkpoint 3\/3 \(step 6\) skipped: checkpoint: .*step_000006 has no state\.json \(damaged: a checkpoint is written whole\)\n/)
  // none readable when evaluated: no result, the error says so
  for (const s of [2, 4]) corrupt(join(stepDir(stateless, s), 'model.safetensors'))
  const none = llmts('eval', 'loss', '--model', stateless, '--all-checkpoints', ...lossArgs)
  assert.equal(none.code, 2)
  assert.equal(none.stdout, '')
  assert.match(none.stderr, /\nllmts eval loss: none of the 3 checkpoints could be evaluated \(step 2, 4, 6; see the warnings above\)\n$/)
  // none readable from their state.json: refused before the data is read, in one line
  for (const s of [2, 4]) rmSync(join(stepDir(stateless, s), 'state.json'))
  const refused = llmts('eval', 'loss', '--model', stateless, '--all-checkpoints', ...lossArgs)
  assert.equal(refused.code, 2)
  assert.match(refused.stderr, /^llmts eval loss: none of the 3 step checkpoints of .*stateless can be read \(the first: checkpoint: .*step_000002 has no state\.json .*\)\n$/)
})

test('a checkpoint whose loss is not finite (diverged weights) is a warning and skipped too, naming it', () => {
  const diverged = join(root, 'diverged')
  cpSync(run, diverged, { recursive: true })
  const ck = readCheckpoint(stepDir(diverged, 4), { withOptimizer: true })
  ck.params.fill(NaN)   // intact files whose weights are NaN: they load, and the loss of the first batch is NaN
  rmSync(stepDir(diverged, 4), { recursive: true })
  writeCheckpoint(stepDir(diverged, 4), ck)
  const alone = singles('loss', lossArgs, diverged, [2, 6])
  const broken = llmts('eval', 'loss', '--model', stepDir(diverged, 4), ...lossArgs)
  assert.equal(broken.code, 2, broken.stderr)
  const reason = 'the model\'s loss on batch 0 is NaN (its weights are diverged or broken; expected a finite loss)'
  assert.ok(broken.stderr.endsWith(`llmts eval loss: ${reason}\n`), broken.stderr)
  const r = llmts('eval', 'loss', '--model', diverged, '--all-checkpoints', ...lossArgs)
  assert.equal(r.code, 2, r.stderr)
  assert.deepEqual(r.stdout.split('\n').slice(0, 2), [`step 2: ${alone[0]!.text.trimEnd()}`, `step 6: ${alone[1]!.text.trimEnd()}`])
  assert.ok(r.stderr.includes(`llmts eval loss: warning: checkpoint 2/3 (step 4) skipped: eval: ${reason}\n`), r.stderr)
  assert.ok(r.stderr.endsWith('llmts eval loss: 1 of 3 checkpoints could not be evaluated and was skipped (step 4; ' +
    'see the warnings above); the others\' results are printed\n'), r.stderr)
})

test('checkpoints of another architecture are refused before any is evaluated, naming both', () => {
  const mixed = join(root, 'mixed')
  cpSync(run, mixed, { recursive: true })
  writeCheckpoint(stepDir(mixed, 8), randomCheckpoint(8))   // one layer of a 96-token vocabulary
  const r = llmts('eval', 'loss', '--model', mixed, '--all-checkpoints', ...lossArgs)
  assert.equal(r.code, 2, r.stderr)
  assert.equal(r.stdout, '')
  assert.match(r.stderr, /^llmts eval loss: checkpoint .*step_000002 \(step 2\) and checkpoint .*step_000008 \(step 8\) differ: .*vocabSize 50257 vs 96.* \(--all-checkpoints needs one architecture; evaluate them one by one\)\n$/)
  assert.match(r.stderr, /contextLength 64 vs 32/)
})
