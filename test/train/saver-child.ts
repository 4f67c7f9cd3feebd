// The child process of checkpoint-watchdog.test.ts: one CheckpointSaver saving steps 2 and 4 into the run directory
// argv[2], then closed. It runs apart from the test because a main thread blocked for good in Atomics.wait cannot be
// timed out from its own thread. Prints one JSON line (each save's outcome and its wait's milliseconds) and returns:
// the process must then end by itself, no thread left keeping it alive. With argv[3] 'idle', each save's wait comes after
// 2 s on a free event loop (the trainer's steps between a save and its wait), where the threads' events are delivered.

import { setTimeout as sleep } from 'node:timers/promises'
import { configFromJson } from '../../src/config.js'
import { ParamLayout } from '../../src/model/params.js'
import { CheckpointSaver } from '../../src/train/checkpoint-writer.js'
import { trainDefaults } from '../../src/train/config.js'
import { Rng } from '../../src/util/rng.js'

/** One save's outcome: `error` is the message start() or wait() threw. */
export interface ChildSave { step: number; done: boolean; error: string | null; ms: number }

const config = configFromJson({ preset: 'tiny-variant', vocabSize: 96, contextLength: 32, layers: 1, channels: 32, heads: 4,
  kvHeads: 2, mlpHidden: 64 }, 'test')
const total = new ParamLayout(config).total
const runDir = process.argv[2]!
const idle = process.argv[3] === 'idle'
const saver = new CheckpointSaver(line => process.stderr.write(`${line}\n`))
const saves: ChildSave[] = []
for (const step of [2, 4]) {
  const arr = (): Float32Array => new Float32Array(total).fill(step)
  const ck = { modelConfig: config, trainConfig: { ...trainDefaults, data: 'd', seqLen: 32 }, params: arr(),
    optimizer: { m: arr(), v: arr(), step }, progress: { step, loader: { shard: 1, pos: 0 }, rng: new Rng(step).state(), valLoss: null, bestValLoss: null } }
  const save: ChildSave = { step, done: false, error: null, ms: 0 }
  const t0 = performance.now()
  try {
    saver.start({ runDir, ck, regular: true, isBest: false, keep: { last: 0, every: 0 } }, () => { save.done = true })
    if (idle) await sleep(2000)
    saver.wait()
  } catch (e) { save.error = (e as Error).message }
  save.ms = performance.now() - t0
  saves.push(save)
}
saver.close()
process.stdout.write(`${JSON.stringify(saves)}\n`)
