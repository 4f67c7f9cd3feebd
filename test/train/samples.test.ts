// The samples drawn while training (--sample-every): at steps N, 2N, ..., from <|endoftext|> (for another
// vocabulary, its last id), and equal to what `generate` draws from that step's weights with the run's sampling
// stream, recomputed here from the step's checkpoint.

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { GPT } from '../../src/model/gpt.js'
import { listCheckpoints, readCheckpoint } from '../../src/train/checkpoint.js'
import { trainDefaults, type TrainConfig } from '../../src/train/config.js'
import { trainRun } from '../../src/train/run.js'
import { generate } from '../../src/train/sample.js'
import { Rng } from '../../src/util/rng.js'
import { makeToyRun } from './helpers.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-samples-'))
after(() => rmSync(root, { recursive: true, force: true }))
const toy = makeToyRun(root)

test('samples at every --sample-every steps, from the last id of a 96-token vocabulary, as generate draws them', async () => {
  const out = join(root, 'run')
  const c: TrainConfig = {
    ...trainDefaults, model: toy.modelJson, data: toy.data, batchSize: 4, seqLen: 16, totalBatchSize: 64, steps: 7, warmupSteps: 1,
    lr: 3e-3, valEvery: 0, checkpointEvery: 3, keepCheckpoints: 0, sampleEvery: 3, sampleTokens: 8, device: 'cpu', threads: 1, seed: 5,
  }
  const seen: { step: number; tokens: Int32Array }[] = []
  await trainRun({ ...c, out }, { resume: false, overwrite: false, reporter: { sample: s => seen.push(s) } })
  assert.deepEqual(seen.map(s => s.step), [3, 6])
  const at3 = readCheckpoint(listCheckpoints(out).find(k => k.step === 3)!.path, { withOptimizer: false })
  const model = new GPT(new CpuBackend({ threads: 1 }), at3.modelConfig, { maxBatch: 1, maxSeqLen: at3.modelConfig.contextLength })
  model.setParams(at3.params)
  // the run's sampling stream (src/train/run.ts) is untouched before the first sample
  const want = generate(model, Int32Array.of(95), { maxTokens: 8, temperature: 1, topK: 0, topP: 1 }, new Rng(5 ^ 0x5a3c_e11d))
  assert.deepEqual([...seen[0]!.tokens], [...want])
})
