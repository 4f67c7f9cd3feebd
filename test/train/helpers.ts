// Shared fixtures of the training tests: a tiny model config (vocabulary 96) written as a config JSON, token shards
// of a noisy bigram chain (train split over two shards, so runs cross a shard boundary; one val), and random
// checkpoints of a one-layer model.

import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { configFromJson } from '../../src/config.js'
import { writeShard } from '../../src/data/shards.js'
import { ParamLayout } from '../../src/model/params.js'
import type { Checkpoint } from '../../src/train/checkpoint.js'
import { trainDefaults } from '../../src/train/config.js'
import { Rng } from '../../src/util/rng.js'

export const tinyModelJson = {
  preset: 'tiny-variant', vocabSize: 96, contextLength: 32, layers: 2, channels: 32, heads: 4, kvHeads: 2, mlpHidden: 64,
}

/** Writes DIR/model.json and DIR/data/{toy_train_000000,toy_train_000001,toy_val_000000}.bin; returns paths. */
export function makeToyRun(dir: string, tokens = 6000): { modelJson: string; data: string } {
  const data = join(dir, 'data')
  mkdirSync(data, { recursive: true })
  const rng = new Rng(7)
  const perm = rng.shuffle(Array.from({ length: 96 }, (_, i) => i))
  const chain = (n: number): number[] => {
    const out = [rng.int(96)]
    for (let i = 1; i < n; i++) out.push(rng.uniform() < 0.8 ? perm[out[i - 1]!]! : rng.int(96))
    return out
  }
  writeShard(join(data, 'toy_val_000000.bin'), chain(2000))
  writeShard(join(data, 'toy_train_000000.bin'), chain(tokens / 2))
  writeShard(join(data, 'toy_train_000001.bin'), chain(tokens / 2))
  const modelJson = join(dir, 'model.json')
  writeFileSync(modelJson, JSON.stringify(tinyModelJson))
  return { modelJson, data }
}

/** Writes DIR/NAME/toy_val_000000.bin with `batches` batches of B·T tokens (+1) for --val-data: a validation long
 *  enough to be interrupted (it reads at most the batches its shards hold). */
export function longValData(dir: string, name: string, batches: number, BT: number): string {
  const out = join(dir, name)
  mkdirSync(out, { recursive: true })
  writeShard(join(out, 'toy_val_000000.bin'), Uint16Array.from({ length: batches * BT + 1 }, (_, i) => (i * 37) % 96))
  return out
}

/** The model of randomCheckpoint: one layer of the tiny variant. */
export const checkpointConfig = configFromJson({ ...tinyModelJson, layers: 1 }, 'test')

/** A checkpoint of checkpointConfig with random weights and moments drawn from `seed`: fresh arrays each call (a
 *  background save takes its arrays away). */
export function randomCheckpoint(step: number, seed = step): Checkpoint {
  const rng = new Rng(seed), total = new ParamLayout(checkpointConfig).total
  const arr = (): Float32Array => Float32Array.from({ length: total }, () => rng.normal())
  return {
    modelConfig: checkpointConfig, trainConfig: { ...trainDefaults, data: 'd', seqLen: 32 }, params: arr(),
    optimizer: { m: arr(), v: arr().map(Math.abs), step },
    progress: { step, loader: { shard: 1, pos: 4096 }, rng: new Rng(seed + 1).state(), valLoss: 3.5, bestValLoss: 3.25 },
  }
}
