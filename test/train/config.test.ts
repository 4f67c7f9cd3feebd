// TrainConfig: the report's defaults, --config JSON parsing (flag or camelCase keys, typed), and validation
// errors for inconsistent settings (each an InputError naming the flag and the expectation).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { presetConfig } from '../../src/config.js'
import { gradAccumSteps, trainConfigFromJson, trainDefaults, validateTrainConfig } from '../../src/train/config.js'
import { InputError } from '../../src/util/errors.js'

test('defaults are the report\'s', () => {
  const d = trainDefaults
  assert.deepEqual([d.totalBatchSize, d.batchSize, d.seqLen, d.lr, d.warmupSteps, d.steps, d.minLrFrac, d.weightDecay,
    d.beta1, d.beta2, d.eps, d.gradClip],
    [524_288, 8, 1024, 1.2e-3, 715, 19_073, 0.1, 0.1, 0.9, 0.95, 1e-8, 1.0])
  assert.equal(gradAccumSteps(d), 64)
})

test('--config JSON accepts flag names and TrainConfig names, rejects unknown keys and wrong types', () => {
  assert.deepEqual(trainConfigFromJson({ 'batch-size': 4, seqLen: 64, device: 'cpu' }, 'c.json'), { batchSize: 4, seqLen: 64, device: 'cpu' })
  assert.deepEqual(trainConfigFromJson({ batch_size: 4, total_batch_size: 256, lr: 1 }, 'c.json'), { batchSize: 4, totalBatchSize: 256, lr: 1 },
    'snake_case, as --json prints')
  assert.throws(() => trainConfigFromJson({ batch_size: 4, 'batch-size': 8 }, 'c.json'), /gives batchSize twice/)
  assert.throws(() => trainConfigFromJson({ 'batch-sise': 4 }, 'c.json'),
    (e: Error) => e instanceof InputError && /unknown key "batch-sise"/.test(e.message))
  assert.throws(() => trainConfigFromJson({ 'batch-size': 4, batchSize: 8 }, 'c.json'),
    (e: Error) => e instanceof InputError && /c\.json gives batchSize twice \("batchSize" and "batch-size"\); keep one/.test(e.message))
  assert.throws(() => trainConfigFromJson({ steps: 1.5 }, 'c.json'), /"steps" must be a positive integer, got 1.5/)
  assert.throws(() => trainConfigFromJson(JSON.parse('{"steps": 1e400}'), 'c.json'), /"steps" must be a positive integer, got Infinity$/)
  assert.throws(() => trainConfigFromJson({ lr: '1e-3' }, 'c.json'), /"lr" must be a number/)
  assert.throws(() => trainConfigFromJson({ device: 'tpu' }, 'c.json'), /must be one of cpu, cuda, auto/)
  assert.throws(() => trainConfigFromJson([1], 'c.json'), /must be a JSON object/)
  assert.deepEqual(trainConfigFromJson({ 'keep-every': 5000, keep_checkpoints: 2 }, 'c.json'), { keepEvery: 5000, keepCheckpoints: 2 })
  assert.deepEqual(trainConfigFromJson({ keepEvery: 0 }, 'c.json'), { keepEvery: 0 })
  assert.throws(() => trainConfigFromJson({ 'keep-every': -1 }, 'c.json'), /"keep-every" must be a non-negative integer, got -1$/)
  assert.equal(trainDefaults.keepEvery, 0, 'off by default: every step checkpoint counts towards --keep-checkpoints')
})

test('validation: batch divisibility, context length, warmup, data', () => {
  const model = presetConfig('tiny-gpt2')
  const ok = { ...trainDefaults, data: 'x', batchSize: 4, seqLen: 64, totalBatchSize: 512, steps: 10, warmupSteps: 2 }
  validateTrainConfig(ok, model)
  assert.equal(gradAccumSteps(ok), 2)
  const bad = (over: object, re: RegExp): void => {
    assert.throws(() => validateTrainConfig({ ...ok, ...over }, model),
      (e: Error) => e instanceof InputError && re.test(e.message) && !e.message.includes('\n'),
      `expected ${re}`)
  }
  bad({ totalBatchSize: 1000 }, /--total-batch-size 1000 is not a multiple of --batch-size × --seq-len × --nproc = 4·64·1 = 256 .*e\.g\. 1024/)
  bad({ seqLen: 2048, totalBatchSize: 8192 }, /--seq-len 2048 exceeds the model's context length 1024/)
  bad({ seqLen: model.contextLength + 1, totalBatchSize: 4 * (model.contextLength + 1) }, /--seq-len 1025 exceeds the model's context length 1024/)
  validateTrainConfig({ ...ok, seqLen: model.contextLength, totalBatchSize: 4 * model.contextLength }, model)   // the whole window
  bad({ warmupSteps: 11 }, /--warmup-steps 11 exceeds --steps 10/)
  validateTrainConfig({ ...ok, warmupSteps: 10 }, model)   // the peak is reached at the last step
  bad({ data: '' }, /--data is required/)
  bad({ beta2: 1 }, /--beta2 must be a number in/)
  bad({ eps: 0 }, /--eps must be positive/)
})

test('--keep-every must be a multiple of --checkpoint-every (when both are on)', () => {
  const model = presetConfig('tiny-gpt2')
  const ok = { ...trainDefaults, data: 'x', batchSize: 4, seqLen: 64, totalBatchSize: 512, steps: 10, warmupSteps: 2 }
  const refused = (keepEvery: number, checkpointEvery: number): string => {
    try { validateTrainConfig({ ...ok, keepEvery, checkpointEvery }, model) } catch (e) {
      assert.ok(e instanceof InputError && !e.message.includes('\n'), String(e))
      return e.message
    }
    return 'accepted'
  }
  // lcm(2500, 1000) = 5000: only multiples of 5000 are both; the nearest multiple of 1000 is 3000 (2.5 rounds up)
  assert.equal(refused(2500, 1000), 'train: --keep-every 2500 is not a multiple of --checkpoint-every 1000 (checkpoints are ' +
    'written every 1000 steps, so only those at multiples of 5000 would be kept; e.g. --keep-every 3000)')
  assert.equal(refused(500, 1000), 'train: --keep-every 500 is not a multiple of --checkpoint-every 1000 (checkpoints are ' +
    'written every 1000 steps, so only those at multiples of 1000 would be kept; e.g. --keep-every 1000)')
  assert.match(refused(7, 5), /only those at multiples of 35 would be kept; e\.g\. --keep-every 5\)$/)
  for (const [keepEvery, checkpointEvery] of [[5000, 1000], [1000, 1000], [0, 1000], [0, 0], [5000, 0]]) {
    assert.equal(refused(keepEvery!, checkpointEvery!), 'accepted', `--keep-every ${keepEvery} --checkpoint-every ${checkpointEvery}`)
  }
})
