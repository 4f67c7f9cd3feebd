// `llmts compare` through the binary, on hand-written run directories whose every table cell is computed by hand in
// the comments: the widened labels, the last-5 mean, the best validation and its step, the last HellaSwag with its
// scoring, spikes, tokens/s as the tokens of the steps over their time (not a mean or median of the lines' rates), a
// rewound log's dropped branch, a torn last line, a missing config.json, null (non-finite) values; --json, --csv;
// one-line errors with exit code 2.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'llmts-compare-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

function llmts(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', env: { ...process.env, LLMTS_DEBUG: '' } })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** RUN_DIR with log.jsonl's lines (`torn`: a last line without its newline) and config.json (none when null). */
function makeRun(path: string, lines: object[], config: object | null, torn = ''): string {
  const dir = join(root, path)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'log.jsonl'), lines.map(l => JSON.stringify(l) + '\n').join('') + torn)
  if (config !== null) writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2))
  return dir
}

const trainConfig = (model: string, steps: number, totalBatchSize: number): object => ({ model, initFrom: '', steps, totalBatchSize, lr: 6e-4 })
const step = (s: number, loss: number | null, tokens: number, ms: number): object =>
  ({ step: s, loss, lr: 6e-4, grad_norm: 1, tokens, tokens_per_s: 512 / (ms / 1000), ms })

// 512 tokens a step. Steps took 500, 250, 250, 250, 500, 250 ms: 3,072 tokens in 2 s = 1,536 tokens/s (the lines'
// rates, 1,024 or 2,048, have a mean of 1,707 and a median of 2,048). Step 3 is 12.0 > 9.6 + 2: one spike. The last
// 5 losses: (9.6 + 12 + 8 + 7.5 + 7) / 5 = 8.82. Validations 10.9, 8.25, 8.5: the last 8.5, the best 8.25 at step 4.
// HellaSwag: the last line's, 26.00% with harness scoring, 0-shot (step 4's was 24.00%, llmc, 10-shot).
const gpt2 = makeRun('gpt2/run', [
  { step: 0, val_loss: 10.9 },
  step(1, 10.8, 512, 500), step(2, 9.6, 1024, 250), step(3, 12.0, 1536, 250), step(4, 8.0, 2048, 250),
  { step: 4, val_loss: 8.25 },
  { step: 4, hellaswag_acc_norm: 0.24, hellaswag_scoring: 'llmc', hellaswag_shots: 10 },
  step(5, 7.5, 2560, 500), step(6, 7.0, 3072, 250),
  { step: 6, hellaswag_acc_norm: 0.26, hellaswag_acc: 0.25, hellaswag_count: 100, hellaswag_scoring: 'harness', hellaswag_shots: 0 },
  { step: 6, val_loss: 8.5 },
], { modelSource: 'preset tiny-gpt2', parameters: 16_287_488, train: trainConfig('tiny-gpt2', 8, 512) })

// Rewound: a first branch to step 4, then lines from step 3 again (joined by hand). Surviving: steps 1-4 at 10, 9,
// 8.5, 8 (mean of the 4: 8.875), 1000 + 1000 + 500 + 500 ms for 2,048 tokens = 682.67 tokens/s, 3.0 s; validations
// 11 and 8.1. Counted twice, the dropped branch would add a spike (30 > 9 + 2), the best val loss 1.0 at step 3,
// 2,000 ms, and a HellaSwag score.
const variant = makeRun('variant/run', [
  { step: 0, val_loss: 11 },
  step(1, 10, 512, 1000), step(2, 9, 1024, 1000), step(3, 30, 1536, 1000),
  { step: 3, val_loss: 1.0 },
  { step: 3, hellaswag_acc_norm: 0.9, hellaswag_scoring: 'llmc', hellaswag_shots: 10 },
  step(4, 8, 2048, 1000),
  step(3, 8.5, 1536, 500), step(4, 8, 2048, 500),
  { step: 4, val_loss: 8.1 },
], { modelSource: 'checkpoint runs/variant/checkpoints/step_000002 (step 2)', parameters: 16_013_824, train: trainConfig('tiny-variant', 10, 512) })

test('the table: a column per run labelled as plot labels runs, every cell as computed by hand', () => {
  const r = llmts('compare', gpt2, variant)
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stderr, '')
  // the labels' column: the longest, 31, + 2; a run's: the widest of 12, its label and cells, + 2 (the first 24 + 2)
  assert.equal(r.stdout, [
    '                                                   gpt2/run   variant/run',
    'model                                             tiny-gpt2  tiny-variant',
    'parameters                                       16,287,488    16,013,824',
    'steps (done/--steps)                                    6/8          4/10',
    'tokens trained                                        3,072         2,048',
    'final train loss (last 5 steps)                      8.8200        8.8750',
    'final val loss                                       8.5000        8.1000',
    'best val loss                                        8.2500        8.1000',
    'best val loss at step                                     4             4',
    'last HellaSwag acc_norm            26.00% (harness, 0-shot)             -',
    'loss spikes (+2 nats in a step)                           1             0',
    'tokens/s (training steps)                             1,536           683',
    'time in training steps                                2.0 s         3.0 s',
  ].join('\n') + '\n')
})

test('--json: a line per run, snake_case keys, null where the files do not say', () => {
  const r = llmts('compare', gpt2, variant, '--json')
  assert.equal(r.code, 0, r.stderr)
  const [a, b, ...rest] = r.stdout.trimEnd().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
  assert.equal(rest.length, 0)
  const near = (x: unknown, y: number): void => assert.ok(typeof x === 'number' && Math.abs(x - y) < 1e-9, `${String(x)} vs ${y}`)
  near(a!['final_train_loss'], 8.82)
  near(a!['tokens_per_second'], 1536)
  near(a!['train_seconds'], 2)
  near(b!['final_train_loss'], 8.875)
  near(b!['tokens_per_second'], 2048 / 3)
  near(b!['train_seconds'], 3)
  for (const k of ['final_train_loss', 'tokens_per_second', 'train_seconds']) { delete a![k]; delete b![k] }
  assert.deepEqual(a, {
    label: 'gpt2/run', run_dir: gpt2, model_name: 'tiny-gpt2', parameters: 16_287_488, steps: 6, steps_planned: 8, tokens: 3072,
    final_val_loss: 8.5, best_val_loss: 8.25, best_val_step: 4, hellaswag_acc_norm: 0.26, hellaswag_scoring: 'harness',
    hellaswag_shots: 0, hellaswag_step: 6, loss_spikes: 1,
  })
  assert.deepEqual(b, {
    label: 'variant/run', run_dir: variant, model_name: 'tiny-variant', parameters: 16_013_824, steps: 4, steps_planned: 10, tokens: 2048,
    final_val_loss: 8.1, best_val_loss: 8.1, best_val_step: 4, hellaswag_acc_norm: null, hellaswag_scoring: null,
    hellaswag_shots: null, hellaswag_step: null, loss_spikes: 0,
  })
})

test('a live run (torn last line), null values, an older log without token counts, a run without config.json', () => {
  // 256 tokens a step at 100 tokens/s: 2,560 ms each, 5.1 s. Step 2's loss and validation are null (not finite): the
  // final train loss is step 1's 6 alone; no finite validation, so no best. No "tokens" in the lines: 2 × 256 = 512.
  // No --model: the model is what --init-from named (with both, --model's: the "my \"model\"" run of the CSV test).
  const lines = [
    { step: 1, loss: 6, tokens_per_s: 100, ms: 2560 }, { step: 2, loss: null, tokens_per_s: 100, ms: 2560 }, { step: 2, val_loss: null },
  ]
  const live = makeRun('live', lines, { parameters: 1000, train: { model: '', initFrom: 'hf/gpt2', steps: 5, totalBatchSize: 256 } }, '{"step":3,"loss":5.')
  // another trainer's: no config.json, no timings; its validation never beat step 0's (the weights it started from),
  // which counts: best 3 at step 0, the last 3.5
  const other = makeRun('other', [{ step: 0, val_loss: 3 }, { step: 1, loss: 4 }, { step: 1, val_loss: 3.5 }], null)
  const r = llmts('compare', live, other)
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stderr, `llmts compare: note: ${other} has no config.json: its model, parameters and --steps are shown as -\n`)
  assert.equal(r.stdout, [
    '                                           live         other',
    'model                                   hf/gpt2             -',
    'parameters                                1,000             -',
    'steps (done/--steps)                        2/5           1/-',
    'tokens trained                              512             -',
    'final train loss (last 5 steps)          6.0000        4.0000',
    'final val loss                       non-finite        3.5000',
    'best val loss                                 -        3.0000',
    'best val loss at step                         -             0',
    'last HellaSwag acc_norm                       -             -',
    'loss spikes (+2 nats in a step)               0             0',
    'tokens/s (training steps)                   100             -',
    'time in training steps                    5.1 s             -',
  ].join('\n') + '\n')
  const json = JSON.parse(llmts('compare', live, '--json').stdout) as Record<string, unknown>
  assert.deepEqual([json['final_val_loss'], json['best_val_loss'], json['steps'], json['tokens']], [null, null, 2, 512])
})

test('--csv FILE: a header of the --json keys, a row per run, numbers unrounded, a label with a comma quoted', () => {
  const odd = makeRun('lr=6e-4,B=8', [step(1, 5.5, 512, 250)], { train: { model: 'my "model"', initFrom: 'runs/base', steps: 1, totalBatchSize: 512 } })
  const out = join(root, 'tables', 'new', 'cmp.csv')
  const r = llmts('compare', odd, gpt2, '--csv', out)
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /^ +lr=6e-4,B=8 +run$/m, 'the table is printed too, a column per run')
  assert.ok(r.stdout.endsWith(`\ncompare: wrote ${out}\n`), r.stdout)
  const csv = readFileSync(out, 'utf8').split('\n')
  assert.deepEqual(csv, [
    'label,run_dir,model_name,parameters,steps,steps_planned,tokens,final_train_loss,final_val_loss,best_val_loss,best_val_step,' +
      'hellaswag_acc_norm,hellaswag_scoring,hellaswag_shots,hellaswag_step,loss_spikes,tokens_per_second,train_seconds',
    `"lr=6e-4,B=8",${JSON.stringify(odd)},"my ""model""",,1,1,512,5.5,,,,,,,,0,2048,0.25`,
    `run,${gpt2},tiny-gpt2,16287488,6,8,3072,${(9.6 + 12 + 8 + 7.5 + 7) / 5},8.5,8.25,4,0.26,harness,0,6,1,1536,2`,
    '',
  ])
  const j = llmts('compare', gpt2, '--csv', join(root, 'j.csv'), '--json')
  assert.equal(j.code, 0, j.stderr)
  assert.equal(j.stdout.split('\n').length, 2, '--json: only the JSON lines on stdout')
  assert.equal(readFileSync(join(root, 'j.csv'), 'utf8').split('\n').length, 3)
})

test('errors: one line, exit code 2', () => {
  const bare = join(root, 'bare')
  mkdirSync(bare, { recursive: true })
  const bad = makeRun('bad', [step(1, 5, 512, 250), { step: 2, loss: 'x' }], null)
  const badConfig = makeRun('bad-config', [step(1, 5, 512, 250)], null)
  writeFileSync(join(badConfig, 'config.json'), '{"train": ')
  const wrongType = makeRun('wrong-type', [step(1, 5, 512, 250)], { parameters: '16M' })
  const onlyTorn = makeRun('only-torn', [], null, '{"step":1,"lo')
  const notJson = makeRun('not-json', [], null, 'x\n{"step":1}\n')
  const cases: [string[], string][] = [
    [[], 'llmts compare: expects one or more RUN_DIR arguments (directories with log.jsonl)'],
    [[join(root, 'nope')], `llmts compare: cannot read ${join(root, 'nope', 'log.jsonl')}: ENOENT (no such run directory)`],
    [[bare], `llmts compare: cannot read ${join(bare, 'log.jsonl')}: ENOENT (not a training run directory?)`],
    [[gpt2, join(root, 'gpt2', '..', 'gpt2', 'run')],
      `llmts compare: run directory ${join(root, 'gpt2', '..', 'gpt2', 'run')} is given twice (also as ${gpt2}); give each run once`],
    [[bad], `llmts compare: ${join(bad, 'log.jsonl')}: step 2 has "loss": "x", expected a number or null`],
    [[notJson], `llmts compare: log: ${join(notJson, 'log.jsonl')}:1 is not valid JSON`],
    [[badConfig], `llmts compare: ${join(badConfig, 'config.json')} is not valid JSON (expected the run's settings, as llmts train writes them)`],
    [[wrongType], `llmts compare: ${join(wrongType, 'config.json')} has "parameters": "16M", expected a positive integer`],
    [[onlyTorn], `llmts compare: ${join(onlyTorn, 'log.jsonl')}: its only line, "{\\"step\\":1,\\"lo", has no newline and is not complete ` +
      'JSON (a run still writing its first step? try again once it has logged one)'],
    [[gpt2, '--csv', root], `llmts compare: --csv ${root} is a directory (expected a file to write)`],
    [[gpt2, '--csv', join(gpt2, 'log.jsonl', 'x.csv')],
      `llmts compare: ${join(gpt2, 'log.jsonl')} is not a directory (--csv expects a directory to write to)`],
  ]
  for (const [args, line] of cases) {
    const r = llmts('compare', ...args)
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.equal(r.stderr, `${line}\n`)
    assert.equal(r.stdout, '')
  }
})
