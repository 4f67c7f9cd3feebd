// HellaSwag during training (--hellaswag-every): the logged lines (step 0, every N, the last step) equal
// `scoreHellaswag` — the evaluation checked against the PyTorch reference in test/eval — run on the weights of
// that step (the seeded initialization, then the step checkpoints); a resumed run logs the same lines; bad
// settings are InputErrors before any work.

import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test } from 'node:test'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { readHellaswagFile } from '../../src/eval/hellaswag-data.js'
import { scoreHellaswag } from '../../src/eval/hellaswag.js'
import { exportHf } from '../../src/io/hf.js'
import { GPT } from '../../src/model/gpt.js'
import { resolveModel } from '../../src/model/load.js'
import { listCheckpoints, readCheckpoint } from '../../src/train/checkpoint.js'
import { trainDefaults, type TrainConfig } from '../../src/train/config.js'
import { readLog, type LogRecord } from '../../src/train/log.js'
import { trainRun } from '../../src/train/run.js'
import { InputError } from '../../src/util/errors.js'
import { HELLASWAG_TEST_CONFIG, hellaswagTestParams } from '../eval/hellaswag-model.js'
import { withoutTiming } from '../faults/helpers.js'
import { makeToyRun } from './helpers.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-train-hs-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const { data, modelJson: toyModel } = makeToyRun(root)
const hsFile = resolve(process.cwd(), 'test/fixtures/hellaswag/val.jsonl')
// a GPT-2-vocabulary model small enough for a quick run (the toy shards' ids are valid GPT-2 ids)
const modelJson = join(root, 'gpt2vocab.json')
writeFileSync(modelJson, JSON.stringify({ preset: 'tiny-variant', contextLength: 64, layers: 1, channels: 32, heads: 4, kvHeads: 2, mlpHidden: 64 }))

const T = 32
const base: TrainConfig = {
  ...trainDefaults, model: modelJson, data, batchSize: 4, seqLen: T, totalBatchSize: 4 * T, steps: 5, warmupSteps: 1, lr: 3e-3,
  valEvery: 0, checkpointEvery: 2, keepCheckpoints: 0, sampleEvery: 0, device: 'cpu', threads: 1,
  hellaswagEvery: 2, hellaswagData: hsFile, hellaswagLimit: 0, hellaswagScoring: 'harness',
}

const hsLines = (log: LogRecord[]): LogRecord[] => log.filter(r => 'hellaswag_acc_norm' in r)

async function scoreWeights(params: Float32Array | null, limit: number): Promise<{ acc: number; accNorm: number; count: number }> {
  const config = resolveModel(modelJson).config
  const model = new GPT(new CpuBackend({ threads: 1 }), config, { maxBatch: 4, maxSeqLen: T })
  if (params === null) model.initWeights(base.seed)
  else model.setParams(params)
  const examples = readHellaswagFile(hsFile).slice(0, limit)
  return scoreHellaswag(model, examples, { scoring: 'harness', shots: 0, window: T })
}

test('--hellaswag-every: lines at step 0, every N and the last step, equal to scoring that step\'s weights', async () => {
  const out = join(root, 'run')
  const seen: number[] = []
  await trainRun({ ...base, out }, { resume: false, overwrite: false, reporter: { hellaswag: r => seen.push(r.step) } })
  const lines = hsLines(readLog(join(out, 'log.jsonl')))
  assert.deepEqual(lines.map(l => l.step), [0, 2, 4, 5])
  assert.deepEqual(seen, [0, 2, 4, 5], 'the reporter hears each one')
  for (const l of lines) {
    assert.deepEqual(Object.keys(l).sort(),
      ['hellaswag_acc', 'hellaswag_acc_norm', 'hellaswag_count', 'hellaswag_scoring', 'hellaswag_shots', 'step'])
    assert.equal(l['hellaswag_count'], 6)
    assert.equal(l['hellaswag_scoring'], 'harness')
    assert.equal(l['hellaswag_shots'], 0)
  }
  const byStep = new Map(listCheckpoints(out).map(c => [c.step, c.path]))
  for (const l of lines) {
    const params = l.step === 0 ? null : readCheckpoint(byStep.get(l.step)!, { withOptimizer: false }).params
    const want = await scoreWeights(params, 6)
    assert.equal(l['hellaswag_acc_norm'], want.accNorm, `step ${l.step}: acc_norm`)
    assert.equal(l['hellaswag_acc'], want.acc, `step ${l.step}: acc`)
  }
})

test('--hellaswag-limit, and a resumed run logs the same HellaSwag lines', async () => {
  const full = join(root, 'limit'), resumed = join(root, 'limit-resumed')
  const c = { ...base, hellaswagLimit: 3 }
  await trainRun({ ...c, out: full }, { resume: false, overwrite: false })
  const stop = { requested: false }
  await trainRun({ ...c, out: resumed },
    { resume: false, overwrite: false, stop, reporter: { step: r => { if (r.step === 3) stop.requested = true } } })
  await trainRun({ ...c, out: resumed }, { resume: true, overwrite: false })
  const a = readLog(join(full, 'log.jsonl')), b = readLog(join(resumed, 'log.jsonl'))
  assert.ok(hsLines(a).every(l => l['hellaswag_count'] === 3))
  assert.deepEqual(withoutTiming(b), withoutTiming(a))
})

test('the logged acc and acc_norm are the PyTorch reference\'s for the reference weights (llmc scoring: 1/3 and 1/2)', async () => {
  // the HellaSwag tests' tiny GPT-2 with its seeded weights, given to the trainer as a Hugging Face folder; step 0 is
  // scored before any update, so its line must carry reference/hellaswag_reference.py's numbers, each in its field
  const hf = join(root, 'hs-model')
  exportHf(hf, HELLASWAG_TEST_CONFIG, hellaswagTestParams(), { dtype: 'f32' })
  const want = (JSON.parse(readFileSync(resolve(process.cwd(), 'test/fixtures/hellaswag/expected.json'), 'utf8')) as
    { cases: { name: string; acc: number; accNorm: number; window: number }[] }).cases.find(c => c.name === 'llmc-0shot')!
  assert.notEqual(want.acc, want.accNorm, 'the case tells the two apart')
  const out = join(root, 'reference-weights')
  await trainRun({ ...base, model: hf, seqLen: want.window, totalBatchSize: 4 * want.window, steps: 1, hellaswagEvery: 1,
    hellaswagScoring: 'llmc', out },
    { resume: false, overwrite: false })
  const first = hsLines(readLog(join(out, 'log.jsonl')))[0]!
  assert.equal(first.step, 0)
  assert.ok(Math.abs((first['hellaswag_acc'] as number) - want.acc) < 1e-12, `acc ${first['hellaswag_acc']}, reference ${want.acc}`)
  assert.ok(Math.abs((first['hellaswag_acc_norm'] as number) - want.accNorm) < 1e-12,
    `acc_norm ${first['hellaswag_acc_norm']}, reference ${want.accNorm}`)
})

test('--hellaswag-every: bad settings are InputErrors before training', async () => {
  const cases: [Partial<TrainConfig>, RegExp][] = [
    [{ batchSize: 2, totalBatchSize: 2 * T }, /--hellaswag-every needs --batch-size >= 4/],
    [{ model: toyModel, seqLen: 16, totalBatchSize: 64 }, /needs GPT-2's 50257-token vocabulary; the model has 96/],
    [{ hellaswagData: join(root, 'missing.jsonl') }, /missing\.jsonl/],
  ]
  for (const [over, re] of cases) {
    await assert.rejects(trainRun({ ...base, ...over, out: join(root, 'bad') }, { resume: false, overwrite: true }),
      (e: unknown) => e instanceof InputError && re.test(e.message))
  }
})
