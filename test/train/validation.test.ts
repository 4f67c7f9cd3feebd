// Validation during training: which shards are train and which are val (a directory's NAME_train_* and NAME_val_*
// splits, never mixed), the steps it runs at (every --val-every and always the last), and the logged val loss
// against an independent computation: the step's checkpoint on a fresh CPU model over the val shard's file, read
// by its own loader.

import assert from 'node:assert/strict'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { test } from 'node:test'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { DataLoader } from '../../src/data/loader.js'
import { readShard, writeShard } from '../../src/data/shards.js'
import { GPT } from '../../src/model/gpt.js'
import { listCheckpoints, readCheckpoint } from '../../src/train/checkpoint.js'
import { trainDefaults, type TrainConfig } from '../../src/train/config.js'
import { readLog } from '../../src/train/log.js'
import { resolveShards, trainRun } from '../../src/train/run.js'
import { InputError } from '../../src/util/errors.js'
import { makeToyRun } from './helpers.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-validation-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const toy = makeToyRun(root)

const base: TrainConfig = {
  ...trainDefaults, model: toy.modelJson, data: toy.data, batchSize: 4, seqLen: 16, totalBatchSize: 64, steps: 7,
  lr: 3e-3, warmupSteps: 2, valEvery: 3, valSteps: 3, checkpointEvery: 0, sampleEvery: 0, device: 'cpu', threads: 1, seed: 9,
}

test('shards: a directory\'s train and val splits; a file or glob takes its dataset\'s val shards; no shard in both', () => {
  const s = resolveShards(base)
  assert.deepEqual(s.train.map(f => basename(f)), ['toy_train_000000.bin', 'toy_train_000001.bin'])
  assert.deepEqual(s.val?.map(f => basename(f)), ['toy_val_000000.bin'])
  const one = join(toy.data, 'toy_train_000001.bin'), val = join(toy.data, 'toy_val_000000.bin')
  assert.deepEqual(resolveShards({ ...base, data: one }), { train: [one], val: [val] }, 'a file: the val shards of its dataset')
  assert.deepEqual(resolveShards({ ...base, data: join(toy.data, '*_train_*.bin') }), { train: [join(toy.data, 'toy_train_000000.bin'), one], val: [val] })
  assert.deepEqual(resolveShards({ ...base, data: one, valData: val }), { train: [one], val: [val] })
  const other = join(root, 'other')   // another dataset's val shard beside it is not this one's
  mkdirSync(other)
  copyFileSync(one, join(other, 'a_train_000001.bin'))
  copyFileSync(val, join(other, 'b_val_000000.bin'))
  assert.deepEqual(resolveShards({ ...base, data: join(other, 'a_train_000001.bin') }).val, null)
  for (const [c, re] of [
    [{ data: join(toy.data, '*.bin') },
      /toy_val_000000\.bin is both a train shard .* and a validation shard \(the \*_val_\* shards beside --data\); give --data the train shards only/],
    [{ data: toy.data, valData: one },
      /toy_train_000001\.bin is both a train shard .* and a validation shard \(--val-data .*\); give --val-data the validation shards only/],
    [{ data: val }, /--data .*toy_val_000000\.bin names only validation shards \(\*_val_\*\); give it the train shards/],
    [{ data: join(toy.data, '*_val_*') }, /--data .*\*_val_\* names only validation shards/],
  ] as const) {
    assert.throws(() => resolveShards({ ...base, ...c }), (e: Error) => e instanceof InputError && re.test(e.message))
  }
})

test('validation at step 0, every --val-every and the last step; its loss is the val shard\'s, recomputed independently', async () => {
  const out = join(root, 'run')
  const { result } = await trainRun({ ...base, out }, { resume: false, overwrite: false })
  const vals = readLog(join(out, 'log.jsonl')).filter(r => 'val_loss' in r)
  assert.deepEqual(vals.map(r => r.step), [0, 3, 6, 7], '7 is not a multiple of 3 but is the last step')
  assert.equal(result.lastValLoss, vals.at(-1)!['val_loss'])

  // the final checkpoint's weights on a fresh model, over the first valSteps batches of the val file itself
  const last = listCheckpoints(out).at(-1)!
  assert.equal(last.step, 7)
  const ck = readCheckpoint(last.path, { withOptimizer: false })
  const model = new GPT(new CpuBackend({ threads: 1 }), ck.modelConfig, { maxBatch: base.batchSize, maxSeqLen: base.seqLen })
  model.setParams(ck.params)
  const loader = new DataLoader({ files: [join(toy.data, 'toy_val_000000.bin')], B: base.batchSize, T: base.seqLen, vocabSize: 96 })
  let sum = 0
  for (let i = 0; i < base.valSteps; i++) {
    const b = loader.next()
    sum += model.forward(b.inputs, b.targets, base.batchSize, base.seqLen)
  }
  const want = sum / base.valSteps, got = vals.at(-1)!['val_loss'] as number
  assert.ok(Math.abs(got - want) <= 1e-6 * Math.abs(want), `logged val loss ${got}, recomputed ${want}`)
  // and the same weights over the first train shard give another number: the log did not read training data
  const trainLoader = new DataLoader({ files: [join(toy.data, 'toy_train_000000.bin')], B: base.batchSize, T: base.seqLen, vocabSize: 96 })
  let trainSum = 0
  for (let i = 0; i < base.valSteps; i++) {
    const b = trainLoader.next()
    trainSum += model.forward(b.inputs, b.targets, base.batchSize, base.seqLen)
  }
  assert.notEqual(trainSum / base.valSteps, got)
  assert.ok(readShard(join(toy.data, 'toy_val_000000.bin')).length >= base.valSteps * base.batchSize * base.seqLen + 1)
})

test('a validation shard too small for one batch is skipped with a note, as eval loss does; none big enough is refused', async () => {
  const valDir = join(root, 'short-val')
  mkdirSync(valDir)
  copyFileSync(join(toy.data, 'toy_val_000000.bin'), join(valDir, 'toy_val_000000.bin'))
  writeShard(join(valDir, 'toy_val_000001.bin'), [1, 2, 3, 4, 5])   // 5 tokens < B·T+1 = 65
  const c = { ...base, steps: 1, warmupSteps: 1, valEvery: 1, valSteps: 40, valData: valDir }   // 40 > 31 batches: a skipped shard would be read
  const notes: string[] = []
  await trainRun({ ...c, out: join(root, 'short-val-run') }, { resume: false, overwrite: false, note: l => notes.push(l) })
  await trainRun({ ...c, valData: join(valDir, 'toy_val_000000.bin'), out: join(root, 'one-val-run') }, { resume: false, overwrite: false })
  const vals = (dir: string): unknown[] => readLog(join(root, dir, 'log.jsonl')).filter(r => 'val_loss' in r).map(r => r['val_loss'])
  assert.deepEqual(vals('short-val-run'), vals('one-val-run'))
  assert.ok(notes.some(l => /^train: note: skipping 1 shard of --val-data .*short-val smaller than one batch of B·T\+1 = 65 tokens: .*toy_val_000001\.bin \(5 tokens\)$/.test(l)), notes.join('\n'))
  await assert.rejects(trainRun({ ...c, batchSize: 1, valData: join(valDir, 'toy_val_000001.bin'), out: join(root, 'no-val-run') }, { resume: false, overwrite: false }),
    (e: Error) => e instanceof InputError && /no shard of --val-data .*toy_val_000001\.bin holds one batch of B·T\+1 = 17 tokens \(B 1 × T 16\); the largest holds 5/.test(e.message))
})

test('step 0 validates on the batches train read before RUN_DIR was prepared (not read again); later ones read the shard', async () => {
  const dir = join(root, 'read-ahead'), shard = join(dir, 'toy_val_000000.bin')
  mkdirSync(dir)
  const c = { ...base, steps: 2, warmupSteps: 1, valEvery: 1, valSteps: 3, valData: dir }
  const vals = (out: string): unknown[] => readLog(join(out, 'log.jsonl')).filter(r => 'val_loss' in r).map(r => r['val_loss'])
  copyFileSync(join(toy.data, 'toy_val_000000.bin'), shard)
  await trainRun({ ...c, out: join(root, 'ahead-kept') }, { resume: false, overwrite: false })
  // the shard rewritten in place (the loader holds it open: a rename would go unseen) with other tokens after the
  // pre-check, before step 0: step 0's batches are the checked ones
  copyFileSync(join(toy.data, 'toy_val_000000.bin'), shard)
  writeShard(join(root, 'other.bin'), readShard(join(toy.data, 'toy_train_000000.bin')).subarray(0, 2000))
  const rewrite = (): void => writeFileSync(shard, readFileSync(join(root, 'other.bin')))
  await trainRun({ ...c, out: join(root, 'ahead-replaced') }, { resume: false, overwrite: false, onStart: rewrite })
  const [kept, replaced] = [vals(join(root, 'ahead-kept')), vals(join(root, 'ahead-replaced'))]
  assert.equal(replaced[0], kept[0], 'step 0: the batches read before the run started')
  assert.notEqual(replaced[1], kept[1], 'step 1: the shard as it is now')
})

test('--val-every 0: validation shards too small for one batch are neither refused nor noted (validation is off)', async () => {
  const valDir = join(root, 'off-short-val')
  mkdirSync(valDir)
  writeShard(join(valDir, 'toy_val_000000.bin'), [1, 2, 3, 4, 5])   // 5 tokens < B·T+1 = 65: no batch at all
  const c = { ...base, steps: 2, warmupSteps: 1, valEvery: 0, valData: valDir, out: join(root, 'off-short-val-run') }
  const notes: string[] = []
  const { result } = await trainRun(c, { resume: false, overwrite: false, note: l => notes.push(l) })
  assert.equal(result.step, 2)
  assert.deepEqual(readLog(join(c.out, 'log.jsonl')).filter(r => 'val_loss' in r), [], 'no validation ran')
  assert.deepEqual(notes.filter(l => /validation|val shard|skipping/.test(l)), [], 'no note about shards validation never reads')
})
