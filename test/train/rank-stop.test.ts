// When data-parallel ranks stop after a signal: at the end of the step during which the signal's handler ran,
// whether it ran during a micro-batch or while the gradients were being summed, never a step later. A one-rank
// collective stands in for the launcher (its sums are the identity, each an event-loop turn late as IPC is), and
// the "signal" is a handler scheduled for the next event-loop turn, as Node runs a real one.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Collective, Tensor } from '../../src/backend/backend.js'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { configFromJson } from '../../src/config.js'
import type { RestorableSource } from '../../src/data/loader.js'
import { GPT } from '../../src/model/gpt.js'
import { trainDefaults, type TrainConfig } from '../../src/train/config.js'
import { readLog } from '../../src/train/log.js'
import { AdamW } from '../../src/train/optimizer.js'
import { runTraining } from '../../src/train/trainer.js'
import { Rng } from '../../src/util/rng.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-rank-stop-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const modelConfig = configFromJson({ preset: 'tiny-variant', vocabSize: 16, contextLength: 8, layers: 1, channels: 8, heads: 2, kvHeads: 1, mlpHidden: 16 }, 'test')
const B = 1, T = 8, accum = 4
const turn = (): Promise<void> => new Promise(resolve => setImmediate(resolve))

/** Rank 0 of 1: sums are the values themselves, answered an event-loop turn later; `during` runs in the first gradient sum. */
function oneRank(during: () => void): Collective {
  let sums = 0
  return {
    rank: 0, world: 1, describe: () => 'one test rank', close: () => {},
    async allReduceSum(_t: Tensor) { if (sums++ === 0) during(); await turn() },
    async sumHost(values) { await turn(); return [...values] },
    async broadcast(bytes) { return bytes! },
  }
}

/** Micro-batches of a fixed token pattern; `onBatch(i)` is called at the i-th (from 0). */
function batches(onBatch: (i: number) => void): RestorableSource {
  let i = 0
  return {
    next: () => { onBatch(i++); return { inputs: Int32Array.from({ length: B * T }, (_, j) => (i + j) % 16), targets: Int32Array.from({ length: B * T }, (_, j) => (i + j + 1) % 16) } },
    state: () => i,
    restore: (s) => { i = s as number },
  }
}

/** The steps logged, and stop.requested as each micro-batch was read. */
async function stoppedAt(name: string, when: 'micro-batch' | 'gradient sum'): Promise<{ steps: number[]; seen: boolean[] }> {
  const stop = { requested: false }
  const seen: boolean[] = []
  const signal = (): void => { setImmediate(() => { stop.requested = true }) }   // the handler runs at the next turn
  const config: TrainConfig = { ...trainDefaults, batchSize: B, seqLen: T, totalBatchSize: B * T * accum, steps: 4, warmupSteps: 1,
    valEvery: 0, sampleEvery: 0, checkpointEvery: 0, nproc: 1, out: join(root, name) }
  const model = new GPT(new CpuBackend({ threads: 1 }), modelConfig, { maxBatch: B, maxSeqLen: T })
  model.initWeights(1)
  const res = await runTraining({
    model, optimizer: new AdamW(model, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0 }), config, runDir: config.out,
    train: batches(i => { seen.push(stop.requested); if (when === 'micro-batch' && i === 1) signal() }),   // step 1's second micro-batch
    val: null, rng: new Rng(1), startStep: 0, bestValLoss: null, stop,
    collective: oneRank(() => { if (when === 'gradient sum') signal() }),   // step 1's gradient sum
  })
  assert.equal(res.interrupted, true)
  return { steps: readLog(join(config.out, 'log.jsonl')).map(r => r.step), seen }
}

for (const when of ['micro-batch', 'gradient sum'] as const) {
  test(`ranks: a signal handled during a step's ${when} stops the run after that step, not the next`, async () => {
    assert.deepEqual((await stoppedAt(when.replace(' ', '-'), when)).steps, [1])
  })
}

test('ranks: a signal during a micro-batch is handled before the next one, not at the step\'s sums', async () => {
  // handled late (after a long step's last micro-batch), a second signal meanwhile would be lost, not end the rank
  const { seen } = await stoppedAt('handled-at-once', 'micro-batch')
  assert.deepEqual(seen.slice(0, 4), [false, false, true, true], 'stop.requested as step 1\'s micro-batches are read')
})
