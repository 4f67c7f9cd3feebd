// Shared fixtures of the training tests: a tiny model config (vocabulary 96) written as a config JSON, and
// token shards of a noisy bigram chain (train split over two shards, so runs cross a shard boundary; one val).

import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeShard } from '../../src/data/shards.js'
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
