// MFU during training: with a backend that knows its device's peak, every step line of log.jsonl holds
// mfu = tokens_per_s × (6·N + 12·L·C·T) / peak, the step line and the result say it; a backend that does not (the
// CPU's) logs no mfu at all. The peak here is a stand-in on the CPU backend (the CUDA backend's comes from peak.ts).

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { formatStep } from '../../src/cli/train.js'
import { configFromJson } from '../../src/config.js'
import { trainingFlopsPerToken } from '../../src/model/flops.js'
import { trainDefaults, type TrainConfig } from '../../src/train/config.js'
import { readLog } from '../../src/train/log.js'
import { trainRun } from '../../src/train/run.js'
import type { StepReport } from '../../src/train/trainer.js'
import { makeToyRun, tinyModelJson } from './helpers.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-mfu-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const toy = makeToyRun(root)
const base: TrainConfig = {
  ...trainDefaults, model: toy.modelJson, data: toy.data, batchSize: 4, seqLen: 16, totalBatchSize: 64, steps: 3,
  lr: 3e-3, warmupSteps: 1, valEvery: 0, checkpointEvery: 0, sampleEvery: 0, device: 'cpu', threads: 1, seed: 9,
}

async function train(out: string): Promise<{ steps: StepReport[]; mfu: number | undefined; tokensPerS: number }> {
  const steps: StepReport[] = []
  const { result } = await trainRun({ ...base, out: join(root, out) }, { resume: false, overwrite: false, reporter: { step: r => steps.push(r) } })
  return { steps, mfu: result.mfu, tokensPerS: result.tokensPerS }
}

test('a backend with a known peak: mfu in every step line of log.jsonl, the step line and the result', async () => {
  const peak = 3e9, F = trainingFlopsPerToken(configFromJson(tinyModelJson, 'test'), base.seqLen)
  const proto = CpuBackend.prototype as { peakFlops?: () => number | null }
  proto.peakFlops = () => peak
  try {
    const { steps, mfu, tokensPerS } = await train('known')
    const lines = readLog(join(root, 'known', 'log.jsonl')).filter(r => 'loss' in r)
    assert.equal(lines.length, 3)
    for (const r of lines) {
      const want = (r['tokens_per_s'] as number) * F / peak
      assert.ok(Math.abs((r['mfu'] as number) - want) <= 1e-12 * want, `step ${r.step}: mfu ${r['mfu']}, want ${want}`)
    }
    assert.match(formatStep(steps[0]!), new RegExp(`tok/s \\| ${(100 * steps[0]!.mfu!).toFixed(1)}% MFU \\| \\d+ ms`))
    assert.ok(Math.abs(mfu! - tokensPerS * F / peak) <= 1e-12 * mfu!)
  } finally {
    delete proto.peakFlops
  }
})

test('a backend without a peak (the CPU\'s): no mfu in the log, the step line or the result', async () => {
  const { steps, mfu } = await train('unknown')
  for (const r of readLog(join(root, 'unknown', 'log.jsonl'))) assert.ok(!('mfu' in r), JSON.stringify(r))
  assert.doesNotMatch(formatStep(steps[0]!), /MFU/)
  assert.equal(mfu, undefined)
})
