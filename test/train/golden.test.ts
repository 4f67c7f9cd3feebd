// The trainer loop (runTraining: accumulation 2, warmup, active clipping, AdamW) against the PyTorch
// reference's 10-step trajectories (reference/torch_reference.py): the losses, learning rates and
// pre-clipping gradient norms it writes to log.jsonl, and the final parameters' statistics.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { GPT } from '../../src/model/gpt.js'
import { trainDefaults, type TrainConfig } from '../../src/train/config.js'
import { metric, readLog } from '../../src/train/log.js'
import { AdamW } from '../../src/train/optimizer.js'
import type { RestorableSource } from '../../src/data/loader.js'
import { runTraining } from '../../src/train/trainer.js'
import { Rng } from '../../src/util/rng.js'
import { assertClose } from '../model/close.js'
import { goldenNames, loadGolden, type Golden } from '../model/golden.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-golden-train-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

/** The fixture's micro-batches in order: (steps, accum, B, T). */
function fixtureBatches(g: Golden): RestorableSource {
  const BT = g.B * g.T
  let i = 0
  return {
    next: () => {
      const at = i++ * BT
      return { inputs: g.trainTokens.slice(at, at + BT), targets: g.trainTargets.slice(at, at + BT) }
    },
    state: () => i,
    restore: (s) => { i = s as number },
  }
}

for (const name of goldenNames()) {
  test(`trainer reproduces the PyTorch 10-step trajectory: ${name}`, async (t) => {
    const g = loadGolden(name), tr = g.train
    const config: TrainConfig = {
      ...trainDefaults, data: '(fixture)', batchSize: g.B, seqLen: g.T, totalBatchSize: g.B * g.T * tr.accum, steps: tr.steps,
      lr: tr.lr, warmupSteps: tr.warmup, minLrFrac: tr.minLr / tr.lr, weightDecay: tr.weightDecay, beta1: tr.beta1,
      beta2: tr.beta2, eps: tr.eps, gradClip: tr.gradClip, valEvery: 0, checkpointEvery: 0, sampleEvery: 0,
    }
    const model = new GPT(new CpuBackend(), g.config, { maxBatch: g.B, maxSeqLen: g.T })
    model.setParams(g.params)
    const optimizer = new AdamW(model, { beta1: tr.beta1, beta2: tr.beta2, eps: tr.eps, weightDecay: tr.weightDecay })
    const runDir = join(root, name)
    const res = await runTraining({
      model, optimizer, config, runDir, train: fixtureBatches(g), val: null, rng: new Rng(1), startStep: 0, bestValLoss: null,
    })
    assert.equal(res.step, tr.steps)
    const log = readLog(join(runDir, 'log.jsonl'))
    assert.deepEqual(log.map(r => r.step), Array.from({ length: tr.steps }, (_, i) => i + 1))
    assert.ok(tr.gradNorms.filter(n => n > tr.gradClip).length >= tr.steps / 2, 'fixture: clipping should be active')
    assertClose('lr', log.map(r => metric(r, 'lr')!), tr.lrs, { atol: 0, rtol: 1e-12 })
    assertClose('loss', log.map(r => metric(r, 'loss')!), tr.losses, { atol: 0, rtol: 1e-4 })
    assertClose('grad_norm', log.map(r => metric(r, 'grad_norm')!), tr.gradNorms, { atol: 0, rtol: 1e-3 })
    const final = model.getParams()
    for (const spec of model.layout.specs) {
      let sum = 0, sumSq = 0
      for (const x of final.subarray(spec.offset, spec.offset + spec.size)) { sum += x; sumSq += x * x }
      assertClose(`final ${spec.name} sum, sum of squares`, [sum, sumSq], tr.finalStats[spec.name]!, { atol: 1e-3, rtol: 1e-4 })
    }
    t.diagnostic(`losses ${tr.losses[0]!.toFixed(4)} -> ${tr.losses.at(-1)!.toFixed(4)}`)
  })
}
