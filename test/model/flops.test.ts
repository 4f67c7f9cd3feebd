// MFU's parts: training FLOPs per token (6·N + 12·L·C·T, N the README's parameter counts, computed by hand below),
// the utilization arithmetic, and the spec peaks of NVIDIA's datasheets by the names nvidia-smi and the driver give.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { specPeakTflops } from '../../src/backend/cuda/peak.js'
import { presetConfig } from '../../src/config.js'
import { modelFlopsUtilization, trainingFlopsPerToken } from '../../src/model/flops.js'

test('training FLOPs per token: 6·N + 12·L·C·T with the presets\' parameter counts', () => {
  // README: gpt2-124m 124,439,808 parameters, variant-350m 334,628,864
  assert.equal(trainingFlopsPerToken(presetConfig('gpt2-124m'), 1024), 6 * 124_439_808 + 12 * 12 * 768 * 1024)
  assert.equal(trainingFlopsPerToken(presetConfig('variant-350m'), 1024), 6 * 334_628_864 + 12 * 24 * 1024 * 1024)
  assert.equal(trainingFlopsPerToken(presetConfig('variant-350m'), 256), 6 * 334_628_864 + 12 * 24 * 1024 * 256)
})

test('MFU: tokens/s × FLOPs/token over the peak of every device', () => {
  // llm.c's H100 figure for GPT-2 124M: ~468K tokens/s at 6·N + 12·L·C·T = 859,885,056 FLOPs a token (T=1024)
  assert.equal(trainingFlopsPerToken(presetConfig('gpt2-124m'), 1024), 859_885_056)
  assert.ok(Math.abs(modelFlopsUtilization(468_000, 859_885_056, 989.5e12) - 0.40670) < 1e-5)
  assert.equal(modelFlopsUtilization(8 * 468_000, 859_885_056, 989.5e12, 8), modelFlopsUtilization(468_000, 859_885_056, 989.5e12))
})

test('spec dense peaks by device name: SXM, PCIe and NVL told apart; unknown devices have none', () => {
  const cases: [string, number | null, number | null, number | null][] = [
    ['NVIDIA H100 80GB HBM3', 989.5, 494.5, 67], ['NVIDIA H100 PCIe', 756.5, 378, 51], ['NVIDIA H100 NVL', 835.5, 417.5, 60],
    ['NVIDIA H200', 989.5, 494.5, 67], ['NVIDIA H200 NVL', 835.5, 417.5, 60], ['NVIDIA GH200 480GB', 989.5, 494.5, 67],
    ['NVIDIA A100-SXM4-80GB', 312, 156, 19.5], ['NVIDIA A100 80GB PCIe', 312, 156, 19.5], ['NVIDIA L40S', 362, 183, 91.6],
    ['NVIDIA B200', 2250, 1100, null], ['NVIDIA GeForce RTX 4090', null, null, null], ['llm.ts CPU emulator', null, null, null],
  ]
  for (const [name, bf16, tf32, fp32] of cases) {
    assert.deepEqual([specPeakTflops(name, 'bf16'), specPeakTflops(name, 'tf32'), specPeakTflops(name, 'fp32')], [bf16, tf32, fp32], name)
  }
})
