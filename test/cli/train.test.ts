// `llmts train` through the binary: bad settings are one-line errors with exit code 2 before any work;
// --config FILE with flags overriding it; a short run's files; Ctrl-C (SIGINT) stops with a checkpoint.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { formatStep } from '../../src/cli/train.js'
import { listCheckpoints } from '../../src/train/checkpoint.js'
import { readLog } from '../../src/train/log.js'
import { makeToyRun } from '../train/helpers.js'
import { lastWins } from '../helpers/args.js'

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'llmts-cli-train-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const toy = makeToyRun(root)

function llmts(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [main, ...lastWins(args)], { encoding: 'utf8', env: { ...process.env, LLMTS_DEBUG: '' } })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

const small = ['--model', toy.modelJson, '--data', toy.data, '--batch-size', '4', '--seq-len', '16', '--device', 'cpu']

test('bad settings: exit 2 with one line naming the problem', () => {
  writeFileSync(join(root, 'bad.json'), JSON.stringify({ 'batch-size': 4, 'learning-rate': 1 }))
  writeFileSync(join(root, 'run-config.json'), JSON.stringify({ model: { layers: 2 }, train: { batchSize: 4 } }))
  writeFileSync(join(root, 'seed.json'), JSON.stringify({ seed: 2 ** 32 }))
  writeFileSync(join(root, 'floor.json'), JSON.stringify({ min_lr_frac: 0 }))
  writeFileSync(join(root, 'twice.json'), '{\n  "lr": 0.1,\n  "steps": 5,\n  "lr": 0.2\n}\n')
  const cases: [string[], RegExp][] = [
    [[...small, '--total-batch-size', '100'], /--total-batch-size 100 is not a multiple of --batch-size × --seq-len × --nproc = 4·16·1 = 64/],
    [[...small, '--seq-len', '64', '--total-batch-size', '256'], /--seq-len 64 exceeds the model's context length 32/],
    [[...small, '--seq-len', '64', '--total-batch-size', '100'], /--seq-len 64 exceeds the model's context length 32/],   // not the batch's hint first
    [[...small, 'stray'], /^llmts train: unexpected argument "stray" \(flags only; see llmts train --help\)$/m],
    [[...small, toy.modelJson], /unexpected argument ".*" \(flags only; see llmts train --help; a path here is usually an unquoted glob the shell expanded: quote it, e\.g\. --data 'DIR\/\*\.bin'\)$/m],
    [[...small, '--total-batch-size', '64', '--steps', '5'], /--warmup-steps 715 exceeds --steps 5/],
    [[...small, '--config', join(root, 'bad.json')], /unknown key "learning-rate"/],
    [[...small, '--config', join(root, 'run-config.json')], /run-config\.json looks like a run's config\.json \(its settings are under "train"\): continue that run with --resume --out RUN/],
    [[...small, '--config', join(root, 'missing.json')], /--config .*missing\.json: no such file \(ENOENT\) \(expected a JSON file of settings\)$/m],
    [[...small, '--config', root], /--config .*: a directory, not a file \(EISDIR\) \(expected a JSON file of settings\)$/m],
    [[...small, '--config', join(root, 'twice.json')], /--config .*twice\.json: key "lr" appears twice in one object \(lines 2 and 4\)/],
    [['--data', toy.data, '--model', 'gpt2-999m'], /neither a preset/],
    [[...small, '--total-batch-size', '64', '--steps', '5', '--warmup-steps', '1', '--data', join(root, 'nope')],
      /no such file or directory: .*nope/],
    [[...small, '--total-batch-size', '64', '--steps', '5', '--warmup-steps', '1', '--device', 'cuda', '--out', join(root, 'cuda')],
      /the CUDA backend is not available in this build|cannot load the NVIDIA driver/],
    [[...small, '--total-batch-size', '64', '--steps', '5', '--warmup-steps', '1', '--precision', 'bf16', '--out', join(root, 'bf16')],
      /^llmts train: device: --precision bf16 needs an NVIDIA GPU \(the CPU backend computes in fp32; give --precision fp32 or auto\)$/m],
    [['--precision', 'half'], /--precision expects one of auto, bf16, tf32, fp32, got "half"/],
    [['--resume'], /--resume needs --out RUN_DIR/],
    [['--resume', '--overwrite', '--out', join(root, 'both')], /--resume and --overwrite contradict each other/],
    [[...small, '--total-batch-size', String(64 * 65_537)], /needs 65,537 micro-batches of 64 tokens per step, more than 65,536/],
    [['--batch-size', '0'], /--batch-size expects a positive integer, got 0/],
    [['--threads', 'many'], /--threads expects a non-negative integer, got "many"/],
    [[...small, '--total-batch-size', '64', '--steps', '5', '--warmup-steps', '1', '--threads', '100000', '--out', join(root, 'threads')],
      /threads must be an integer in \[1, 1024\], got 100000/],
    [[...small, '--total-batch-size', '64', '--steps', '5', '--warmup-steps', '1', '--out', join(root, 'bad.json')],
      /^llmts train: .*bad\.json is not a directory \(--out expects a directory to write to\)/],
    [['--lr', 'fast'], /--lr expects a non-negative number, got "fast"/],
    [['--seed', '4294967296'], /--seed expects a value <= 4294967295, got 4294967296/],
    [[...small, '--config', join(root, 'seed.json')], /seed.json: "seed" must be an integer <= 4294967295, got 4294967296/],
    [['--default-run', '--lr', '1e-3'], /--lr is not a setting of the default run/],
    [['--lr-schedule', 'step'], /--lr-schedule expects one of cosine, linear, constant, wsd, got "step"/],
    [["--cooldown-frac", "1.5"], /--cooldown-frac expects a value <= 1, got 1\.5/],
    [[...small, '--total-batch-size', '64', '--steps', '5', '--warmup-steps', '1', '--cooldown-frac', '0.1', '--out', join(root, 'cooldown')],
      /^llmts train: --cooldown-frac 0\.1 applies to --lr-schedule wsd only, and this run's --lr-schedule is cosine \(drop it, or give --lr-schedule\)$/m],
    [[...small, '--total-batch-size', '64', '--steps', '5', '--warmup-steps', '1', '--lr-schedule', 'constant', '--config',
      join(root, 'floor.json'), '--out', join(root, 'floor')],
      /^llmts train: --min-lr-frac 0 applies to the decaying schedules \(cosine, linear, wsd\) only, and this run's --lr-schedule is constant/m],
    [['--default-run', '--precision', 'tf32', '--out', join(root, 'default-tf32')],   // refused before the corpus is prepared
      /^llmts train: device: --precision tf32 needs an NVIDIA GPU \(the CPU backend computes in fp32; give --precision fp32 or auto\)$/m],
  ]
  for (const [args, re] of cases) {
    const r = llmts('train', ...args)
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`)
    assert.match(r.stderr, re)
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`)
  }
})

test('--out that is no run: missing, a file, an empty folder, a checkpoint, a model directory -> one line naming it', () => {
  const ckpt = join(root, 'other-run', 'checkpoints', 'step_000002'), best = join(root, 'other-run', 'best'), hf = join(root, 'hf-like')
  for (const d of [ckpt, best, hf, join(root, 'empty-dir')]) mkdirSync(d, { recursive: true })
  for (const d of [ckpt, best]) writeFileSync(join(d, 'state.json'), '{}')
  writeFileSync(join(hf, 'model.safetensors'), '')
  writeFileSync(join(hf, 'config.json'), '{"model_type": "llama"}')
  const run = [...small, '--total-batch-size', '64', '--steps', '2', '--warmup-steps', '1']
  const cases: [string[], RegExp][] = [
    [['--resume', '--out', join(root, 'no-such-run')], /^llmts train: --resume: .*no-such-run does not exist \(start without --resume to begin a run there\)$/m],
    [['--resume', '--out', toy.modelJson], /^llmts train: --resume: .*\.json is not a directory \(--out takes a run directory\)$/m],
    [['--resume', '--out', join(root, 'empty-dir')], /^llmts train: --resume: .*empty-dir holds no run \(no config\.json, no checkpoint\); start without --resume/m],
    [['--resume', '--out', ckpt], new RegExp(`^llmts train: --resume: .*step_000002 is a checkpoint \\(it has state\\.json\\); --out takes its run directory, ${join(root, 'other-run')}$`, 'm')],
    [['--resume', '--out', best], new RegExp(`^llmts train: --resume: .*best is a checkpoint .*; --out takes its run directory, ${join(root, 'other-run')}$`, 'm')],
    [['--resume', '--out', hf], /^llmts train: --resume: .*hf-like is a model directory \(it has model\.safetensors\), not a run; give another --out/m],
    [[...run, '--out', hf], /^llmts train: .*hf-like is a model directory \(it has model\.safetensors\), not a run/m],
    [[...run, '--out', ckpt, '--overwrite'], /^llmts train: .*step_000002 is a checkpoint \(it has state\.json\); --out takes its run directory/m],
  ]
  for (const [args, re] of cases) {
    const r = llmts('train', ...args)
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`)
    assert.match(r.stderr, re)
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`)
  }
  assert.deepEqual(readdirSync(ckpt), ['state.json'], 'nothing written into the checkpoint')
  assert.deepEqual(readdirSync(hf).sort(), ['config.json', 'model.safetensors'], 'nor into the model directory')
})

test('a short run: --config FILE with flags overriding it; log, config.json and checkpoints', () => {
  const cfg = join(root, 'train.json')
  // saved with a BOM, as some editors do
  writeFileSync(cfg, '\ufeff' + JSON.stringify({ 'total-batch-size': 128, steps: 99, 'warmup-steps': 1, 'val-every': 2, 'val-steps': 1, lr: 0.003 }))
  const out = join(root, 'run')
  const r = llmts('train', ...small, '--config', cfg, '--steps', '4', '--out', out, '--checkpoint-every', '2', '--threads', '1', '--json')
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr.split('\n')[0]!, /, cpu backend: .*1 thread, run directory /, 'the start line names the kernels and --threads')
  const summary = JSON.parse(r.stdout)
  assert.equal(summary.steps, 4)
  assert.equal(summary.model, out, 'the value --model takes for the trained model: the run directory')
  assert.ok(!Object.keys(summary).some(k => k.startsWith('hellaswag')), 'no HellaSwag keys without --hellaswag-every')
  const log = readLog(join(out, 'log.jsonl'))
  assert.deepEqual(log.map(l => [l.step, 'loss' in l ? 'loss' : 'val']),
    [[0, 'val'], [1, 'loss'], [2, 'loss'], [2, 'val'], [3, 'loss'], [4, 'loss'], [4, 'val']])
  for (const l of log.filter(x => 'loss' in x)) {
    assert.deepEqual(Object.keys(l), ['step', 'loss', 'lr', 'grad_norm', 'tokens', 'tokens_per_s', 'ms'])
    assert.equal(l['tokens'], l.step * 128, 'tokens trained so far: step × --total-batch-size')
  }
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))
  assert.equal(config.train.steps, 4, 'the flag overrides the file')
  assert.equal(config.train.lr, 0.003, 'the file overrides the default')
  assert.equal(config.train.batchSize, 4)
  assert.equal(config.gradAccum, 2)
  assert.equal(config.train.threads, 1)
  assert.match(config.backend, /^cpu backend: .*, 1 thread$/)
  assert.deepEqual(listCheckpoints(out).map(c => c.step), [2, 4])
  assert.ok(existsSync(join(out, 'best', 'model.safetensors')))
  const again = llmts('train', ...small, '--config', cfg, '--steps', '4', '--out', out)
  assert.equal(again.code, 2)
  assert.match(again.stderr, /already holds a run/)
})

test('--lr-schedule wsd: the rates log.jsonl records, config.json, and the note of a --resume that moves the cooldown', () => {
  const out = join(root, 'wsd')
  const run = [...small, '--total-batch-size', '64', '--warmup-steps', '2', '--lr', '0.01', '--min-lr-frac', '0', '--val-every', '0',
    '--checkpoint-every', '5', '--lr-schedule', 'wsd', '--cooldown-frac', '0.4', '--out', out]
  const r = llmts('train', ...run, '--steps', '10')
  assert.equal(r.code, 0, r.stderr)
  // steps 1..10 are s = 0..9: warmup 0.005, 0.01; the peak until the last 4 (s = 6..9), at t = 0, 1/4, 2/4, 3/4
  const want = [0.005, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.005, 0.01 * (1 - Math.sqrt(0.5)), 0.01 * (1 - Math.sqrt(0.75))]
  const lrs = readLog(join(out, 'log.jsonl')).filter(l => 'loss' in l).map(l => l['lr'] as number)
  assert.equal(lrs.length, 10)
  lrs.forEach((lr, i) => assert.ok(Math.abs(lr - want[i]!) <= 1e-15, `step ${i + 1}: ${lr}, want ${want[i]}`))
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))
  assert.deepEqual([config.train.lrSchedule, config.train.cooldownFrac], ['wsd', 0.4])
  // resumed from step 5 (still stable) to 20 steps: the cooldown moves to the last 8 (s = 12..19), and step 6 is at the
  // peak either way, so no --steps note
  rmSync(join(out, 'checkpoints', 'step_000010'), { recursive: true })
  const longer = llmts('train', '--out', out, '--resume', '--steps', '20')
  assert.equal(longer.code, 0, longer.stderr)
  assert.doesNotMatch(longer.stderr, /--resume with --steps/, 'a stable step keeps its rate: nothing to note')
  const resumed = readLog(join(out, 'log.jsonl')).filter(l => 'loss' in l).map(l => l['lr'] as number)
  assert.deepEqual(resumed.slice(5, 13), Array(8).fill(0.01), 'steps 6..13 (s = 5..12) at the peak: the cooldown starts at t = 0')
  assert.ok(Math.abs(resumed[14]! - 0.01 * (1 - Math.sqrt(2 / 8))) <= 1e-15, `step 15 (s = 14): ${resumed[14]}`)
  // a finished run extended: step 21 (s = 20) of 30 is at t = 2/12 of the new 12-step cooldown (s = 18..29), where the
  // 20-step schedule had reached its floor
  const more = llmts('train', '--out', out, '--resume', '--steps', '30')
  assert.equal(more.code, 0, more.stderr)
  assert.match(more.stderr, /note: --resume with --steps 30 \(the run had 20\), from step 20: wsd's cooldown now takes the last 12 of 30 steps, /)
  assert.match(more.stderr, new RegExp(`so step 21's learning rate is ${(0.01 * (1 - Math.sqrt(2 / 12))).toExponential(2)} \\(0\\.00e\\+0 with --steps 20\\)`))
})

test('--lr-schedule linear: a --resume that extends it names the linear decay and the rate it moves', () => {
  const out = join(root, 'linear')
  const run = llmts('train', ...small, '--total-batch-size', '64', '--steps', '4', '--warmup-steps', '1', '--lr', '0.01',
    '--val-every', '0', '--lr-schedule', 'linear', '--out', out)
  assert.equal(run.code, 0, run.stderr)
  // step 5 (s = 4) of 6 after a warmup of 1: t = 3/5, 0.001 + (1 − 0.6)·0.009 = 4.6e-3; the 4-step run had reached 1e-3
  const more = llmts('train', '--out', out, '--resume', '--steps', '6')
  assert.equal(more.code, 0, more.stderr)
  assert.match(more.stderr, /note: --resume with --steps 6 \(the run had 4\), from step 4: the linear decay now spans 6 steps, so step 5's learning rate is 4\.60e-3 \(1\.00e-3 with --steps 4\)\n/)
})

test('--init-from alone (a run directory or a Hugging Face export) trains the architecture it holds, not the default', () => {
  // the run of the test above (the toy model), and tiny-variant exported from its seeded initialization
  const from = join(root, 'run'), hf = join(root, 'tiny-variant-hf')
  const exp = spawnSync(process.execPath, [main, 'export', '--model', 'tiny-variant', '--out', hf], { encoding: 'utf8' })
  assert.equal(exp.status, 0, exp.stderr)
  const rest = ['--data', toy.data, '--batch-size', '4', '--seq-len', '16', '--total-batch-size', '64', '--steps', '1',
    '--warmup-steps', '1', '--val-steps', '1', '--device', 'cpu', '--threads', '1']
  for (const [dir, source, layers, vocab] of [[from, /^checkpoint .*best/, 2, 96], [hf, /^Hugging Face directory /, 4, 50257]] as const) {
    const out = join(root, `init-${vocab}`)
    const r = llmts('train', '--init-from', dir, ...rest, '--out', out)
    assert.equal(r.code, 0, r.stderr)
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))
    assert.match(config.modelSource, source)
    assert.deepEqual([config.model.layers, config.model.vocabSize], [layers, vocab])
    assert.equal(config.train.model, '', 'no --model given: the directory\'s own')
  }
  // a --model beside it must still agree with it
  const r = llmts('train', '--init-from', hf, '--model', 'gpt2-124m', ...rest, '--out', join(root, 'init-mismatch'))
  assert.equal(r.code, 2)
  assert.match(r.stderr, /preset gpt2-124m and --init-from .* differ: layers 12 vs 4/)
})

test('SIGINT: finishes the step, writes a checkpoint, says how to resume and exits 130', async () => {
  const out = join(root, 'sigint')
  const child = spawn(process.execPath, [main, 'train', ...lastWins([...small, '--total-batch-size', '64', '--steps', '100000', '--warmup-steps', '1',
    '--val-every', '0', '--checkpoint-every', '0', '--out', out])], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  const code = await new Promise<number | null>(resolve => {
    child.stderr.on('data', (d: string) => {
      stderr += d
      if (/step 1\/100000/.test(stderr) && !child.killed) child.kill('SIGINT')
    })
    child.on('close', c => resolve(c))
  })
  assert.equal(code, 130, stderr)
  assert.match(stderr, /stopped at step (\d+); continue with: llmts train --out .* --resume/)
  const stopped = Number(/stopped at step (\d+)/.exec(stderr)![1])
  assert.deepEqual(listCheckpoints(out).map(c => c.step), [stopped])
  assert.equal(readLog(join(out, 'log.jsonl')).at(-1)!.step, stopped)
  // --resume takes every setting from the checkpoint; a flag given (here --steps) overrides it
  const r = llmts('train', '--out', out, '--resume', '--steps', String(stopped + 2), '--json')
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, new RegExp(`resuming at step ${stopped}`))
  assert.deepEqual(readLog(join(out, 'log.jsonl')).map(l => l.step), Array.from({ length: stopped + 2 }, (_, i) => i + 1))
  assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).train.batchSize, 4)
})

test('--default-run --out DIR: both runs, the recorded outDir, and comparison.csv, tokens_per_model and the charts from the runs\' own logs', { timeout: 120_000 }, () => {
  const out = join(root, 'default-run')
  const r = spawnSync(process.execPath, [main, 'train', '--default-run', '--steps', '2', '--out', out, '--precision', 'fp32', '--json'],
    { encoding: 'utf8', env: { ...process.env, LLMTS_DEBUG: '' } })
  assert.equal(r.status, 0, r.stderr)
  const summary = JSON.parse(r.stdout) as { steps: number; settings: { out_dir: string }; runs: { run_dir: string }[]; files: string[] }
  assert.equal(summary.steps, 2)
  assert.equal(summary.settings.out_dir, out)
  assert.deepEqual(summary.runs.map(x => x.run_dir), [join(out, 'tiny-gpt2'), join(out, 'tiny-variant')])
  for (const f of summary.files) assert.ok(f.startsWith(out) && existsSync(f), f)
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'comparison.json'), 'utf8')), summary)
  checkDefaultRunFiles(out, r.stdout)
  for (const m of ['tiny-gpt2', 'tiny-variant']) {   // --precision reaches both runs (fp32 is the CPU's own: accepted)
    assert.equal((JSON.parse(readFileSync(join(out, m, 'config.json'), 'utf8')) as { train: { precision: string } }).train.precision, 'fp32')
  }
})

/** What --default-run wrote, against each run's own log.jsonl and config.json. */
function checkDefaultRunFiles(out: string, stdout: string): void {
  const summary = JSON.parse(stdout) as { steps: number; tokens_per_model: number }
  const models = ['tiny-gpt2', 'tiny-variant']
  const logs = models.map(m => readLog(join(out, m, 'log.jsonl')))
  // tokens per model: optimizer steps × tokens per step, as each run recorded them
  for (const [i, m] of models.entries()) {
    const cfg = JSON.parse(readFileSync(join(out, m, 'config.json'), 'utf8')) as { train: { totalBatchSize: number } }
    const lastStep = Math.max(...logs[i]!.filter(l => 'loss' in l).map(l => l.step))
    assert.equal(lastStep, summary.steps, m)
    assert.equal(summary.tokens_per_model, summary.steps * cfg.train.totalBatchSize, m)
  }
  // comparison.csv: step, then per model its training and validation loss, each cell the log's number as written
  const csv = readFileSync(join(out, 'comparison.csv'), 'utf8').trimEnd().split('\n').map(l => l.split(','))
  assert.deepEqual(csv[0], ['step', 'tiny-gpt2_loss', 'tiny-gpt2_val_loss', 'tiny-variant_loss', 'tiny-variant_val_loss'])
  const steps = [...new Set(logs.flatMap(log => log.filter(l => 'loss' in l || 'val_loss' in l).map(l => l.step)))].sort((a, b) => a - b)
  const cell = (i: number, step: number, key: string): string => {
    const v = logs[i]!.find(l => l.step === step && key in l)?.[key]
    return v === undefined ? '' : JSON.stringify(v)
  }
  assert.deepEqual(csv.slice(1), steps.map(s => [String(s), ...models.flatMap((_, i) => [cell(i, s, 'loss'), cell(i, s, 'val_loss')])]))
  assert.ok(csv.slice(1).some(row => row[2] !== '') && csv.slice(1).some(row => row[1] !== ''), 'both kinds of loss present')
  // the charts: loss.svg plots training loss, val_loss.svg validation loss (the y-axis title names the metric)
  const svg = (name: string): string => readFileSync(join(out, name), 'utf8')
  assert.match(svg('loss.svg'), />training loss</)
  assert.doesNotMatch(svg('loss.svg'), />validation loss</)
  assert.match(svg('val_loss.svg'), />validation loss</)
  assert.doesNotMatch(svg('val_loss.svg'), />training loss</)
}

test('--val-steps beyond the validation shards: each validation reads the batches there are, none twice, and says so', () => {
  // toy_val_000000.bin: 2,000 tokens = floor(1999 / (4·16)) = 31 batches of B·T
  const base = [...small, '--total-batch-size', '64', '--steps', '1', '--warmup-steps', '1', '--val-every', '1']
  const capped = llmts('train', ...base, '--val-steps', '45', '--out', join(root, 'val45'))
  const exact = llmts('train', ...base, '--val-steps', '31', '--out', join(root, 'val31'))
  assert.equal(capped.code, 0, capped.stderr)
  assert.equal(exact.code, 0, exact.stderr)
  assert.match(capped.stderr, /^llmts train: the validation shards hold 31 batches of B·T = 4·16 tokens; each validation reads those instead of --val-steps 45\n/m)
  assert.doesNotMatch(exact.stderr, /validation shards hold/)
  const val = (dir: string): unknown[] => readLog(join(root, dir, 'log.jsonl')).filter(r => 'val_loss' in r).map(r => r['val_loss'])
  assert.deepEqual(val('val45'), val('val31'))
})

test('--json without validation (--val-every 0): val_loss and best_val_loss are null, not left out', () => {
  const r = llmts('train', ...small, '--total-batch-size', '64', '--steps', '1', '--warmup-steps', '1', '--val-every', '0',
    '--checkpoint-every', '0', '--out', join(root, 'no-val'), '--json')
  assert.equal(r.code, 0, r.stderr)
  const summary = JSON.parse(r.stdout)
  assert.deepEqual(Object.keys(summary).sort(),
    ['best_val_loss', 'interrupted', 'loss', 'model', 'run_dir', 'skipped_updates', 'steps', 'tokens_per_second', 'train_seconds', 'val_loss'])
  assert.deepEqual([summary.val_loss, summary.best_val_loss, summary.steps, summary.interrupted], [null, null, 1, false])
  assert.ok(Number.isFinite(summary.loss) && summary.loss > 0, `loss ${summary.loss}`)
})

test('the step line: fixed decimals, thousands separators, the ETA in s, m+s or h+m (rounded to the second first)', () => {
  const r = { step: 3, steps: 10, loss: 2.345678, lr: 0.0006, grad_norm: 1.23456, tokens: 192, tokens_per_s: 12345.6, ms: 41.7, etaS: 75 }
  assert.equal(formatStep(r), 'step 3/10 | loss 2.3457 | lr 6.00e-4 | norm 1.235 | 12,346 tok/s | 42 ms | ETA 1m15s')
  const eta = (etaS: number): string => formatStep({ ...r, etaS }).replace(/^.* \| ETA /, '')
  assert.deepEqual([7, 59.4, 59.6, 119.7, 3725, 7199.9, NaN, Infinity].map(eta),
    ['7s', '59s', '1m00s', '2m00s', '1h02m', '2h00m', '?', '?'])
})

test('a step of more tokens than a pass over the train shards gets a note (the 524,288 default on a small corpus)', () => {
  // toy: two train shards of 3,000 tokens: 2 × 46 batches of 4×16 = 5,888 tokens a pass
  const r = llmts('train', ...small, '--total-batch-size', '6400', '--steps', '1', '--warmup-steps', '1', '--val-every', '0',
    '--out', join(root, 'epoch-step'))
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, /^llmts train: note: one step \(--total-batch-size 6,400\) is more than the 5,888 tokens of a pass over the train shards, 100 micro-batches a step; for a small corpus, a smaller --total-batch-size$/m)
  const fits = llmts('train', ...small, '--total-batch-size', '5888', '--steps', '1', '--warmup-steps', '1', '--val-every', '0',
    '--out', join(root, 'epoch-fits'))
  assert.equal(fits.code, 0, fits.stderr)
  assert.doesNotMatch(fits.stderr, /one step/)
})

test('--json with --hellaswag-every: the summary has the last HellaSwag line of log.jsonl, its step as hellaswag_step', () => {
  // a GPT-2-vocabulary model (HellaSwag is text); the toy shards' ids are valid GPT-2 ids
  const model = join(root, 'gpt2vocab.json')
  writeFileSync(model, JSON.stringify({ preset: 'tiny-variant', contextLength: 64, layers: 1, channels: 32, heads: 4, kvHeads: 2, mlpHidden: 64 }))
  const out = join(root, 'hellaswag-json')
  const hs = join(process.cwd(), 'test/fixtures/hellaswag/val.jsonl')
  const r = llmts('train', ...small, '--model', model, '--total-batch-size', '64', '--steps', '3', '--warmup-steps', '1', '--val-every', '0',
    '--hellaswag-every', '2', '--hellaswag-data', hs, '--threads', '1', '--out', out, '--json')
  assert.equal(r.code, 0, r.stderr)
  const summary = JSON.parse(r.stdout) as Record<string, unknown>
  const lines = readLog(join(out, 'log.jsonl')).filter(l => 'hellaswag_acc_norm' in l)
  assert.deepEqual(lines.map(l => l.step), [0, 2, 3])
  const { step, ...last } = lines.at(-1)!
  assert.equal(summary['hellaswag_step'], step)
  for (const [k, v] of Object.entries(last)) assert.equal(summary[k], v, k)
  assert.equal(summary['hellaswag_count'], 6)
  assert.equal(summary['model'], out)
})
