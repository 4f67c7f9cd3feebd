// `llmts train --nproc W` on one train shard, as llm.c's DataLoader reads it (dataloader.h: shard_num_samples =
// (ntok−1)/(W·B·T), rank r at idx·W·B·T + r·B·T): the ranks read disjoint B·T blocks of each W·B·T window, the same
// every epoch, and together the tokens one process reads with W times the accumulation, until the shard's end:
// the process's last windows there that fill no whole W·B·T window (fewer than W) are read by no rank, and the
// two streams are offset by them from then on (README, "Several GPUs"). Expected batches are written out by hand.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DataLoader } from '../../src/data/loader.js'
import { writeShard } from '../../src/data/shards.js'

const dir = mkdtempSync(join(tmpdir(), 'llmts-loader-ranks-'))
after(() => rmSync(dir, { recursive: true, force: true }))

// one shard of 16 tokens 100..115; B=1, T=2. One process: floor(15/2) = 7 windows (inputs 100..113). Two ranks:
// floor(15/4) = 3 windows of 4 tokens (inputs 100..111): the process's 7th window (112, 113) is read by neither
const shard = join(dir, 'one_train_000001.bin')
writeShard(shard, Array.from({ length: 16 }, (_, i) => 100 + i))
const read = (l: DataLoader, n: number): number[][] => Array.from({ length: n }, () => {
  const b = l.next()
  assert.deepEqual([...b.targets], [...b.inputs].map(t => t + 1), 'targets: the inputs shifted by one token')
  return [...b.inputs]
})

test('two ranks on one shard: disjoint blocks of each window, the same every epoch', () => {
  const [r0, r1] = [0, 1].map(rank => new DataLoader({ files: [shard], B: 1, T: 2, rank, worldSize: 2 }))
  assert.deepEqual(read(r0!, 7), [[100, 101], [104, 105], [108, 109], [100, 101], [104, 105], [108, 109], [100, 101]])
  assert.deepEqual(read(r1!, 7), [[102, 103], [106, 107], [110, 111], [102, 103], [106, 107], [110, 111], [102, 103]])
})

test('two ranks read what one process with twice the accumulation reads, until the end of the shard', () => {
  const one = new DataLoader({ files: [shard], B: 1, T: 2 })
  assert.deepEqual(read(one, 9), [[100, 101], [102, 103], [104, 105], [106, 107], [108, 109], [110, 111], [112, 113],
    [100, 101], [102, 103]])
  const ranks = [0, 1].map(rank => new DataLoader({ files: [shard], B: 1, T: 2, rank, worldSize: 2 }))
  const fresh = new DataLoader({ files: [shard], B: 1, T: 2 })
  const steps = Array.from({ length: 4 }, () => ({ ranks: ranks.flatMap(l => read(l, 1).flat()), one: read(fresh, 2).flat() }))
  for (const s of steps.slice(0, 3)) assert.deepEqual(s.ranks, s.one)   // micro-steps within the shard's 3 whole windows
  assert.deepEqual(steps[3], { ranks: [100, 101, 102, 103], one: [112, 113, 100, 101] }, 'offset by the skipped window from here')
})
