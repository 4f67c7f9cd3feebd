// The CUDA backend on a GPU: the shared op conformance suite twice (float32 storage with full-fp32 matmuls at
// near-float32 tolerances; the default TF32 matmuls at bf16-appropriate ones), the mixed-precision paths the
// model really takes (bf16 activations against the CPU backend), and the model itself (PyTorch goldens and a
// training trajectory against the CPU backend), the per-op profiler, the cuBLASLt autotune, and NCCL's binding on one rank. Without a
// usable GPU every test is skipped with the reason.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Collective } from '../../src/backend/backend.js'
import { CudaBackend, type CudaBackendOptions } from '../../src/backend/cuda/index.js'
import { specPeakTflops, type MatmulPrecision } from '../../src/backend/cuda/peak.js'
import { InputError } from '../../src/util/errors.js'
import { withEnv } from '../helpers/env.js'
import { recordReadings } from './cuda-emu/record.js'
import { runConformance } from './conformance.js'
import { registerMixedMemory } from './cuda-mixed-memory.js'
import { registerMixedPrecisionOps } from './cuda-mixed.js'
import { registerMixedSequenceOps } from './cuda-mixed-sequence.js'
import { registerGemmTune } from './cuda-gemm-tune.js'
import { registerModelChecks } from './cuda-model.js'
import { registerProfiler } from './cuda-profile.js'

/** The first backend, or why there is none (no library, no driver, no GPU: always an InputError). */
function probe(): { ok: true } | { ok: false; reason: string; error: unknown } {
  try {
    new CudaBackend()
    return { ok: true }
  } catch (e) {
    return { ok: false, reason: (e as Error).message, error: e }
  }
}

const record = process.env['LLMTS_EMU_RECORD']
if (record !== undefined && record !== '') recordReadings(record)   // the emulator's race check (cuda-emu.test.ts)

const p = probe()
if (!p.ok) {
  test('cuda backend', (t) => t.skip(`no NVIDIA GPU: ${p.reason}`))
  test('without a GPU the backend fails with one InputError line naming what is missing', () => {
    assert.ok(p.error instanceof InputError, `expected an InputError, got ${String(p.error)}`)
    assert.ok(!p.reason.includes('\n'))
    assert.match(p.reason, /^cuda: /)
  })
} else {
  const make = (o: CudaBackendOptions) => () => new CudaBackend(o)
  // float32 storage, fp32 (not TF32) matmuls: f32 arithmetic against the float64 reference
  runConformance('cuda (f32, fp32 matmuls)', make({ storage: 'f32', tf32: false }), { rtol: 1e-4, atol: 1e-5 })
  // TF32 tensor-core matmuls (10-bit mantissa inputs): 1e-2
  runConformance('cuda (f32, TF32 matmuls)', make({ storage: 'f32' }), { rtol: 1e-2, atol: 1e-2 })
  test('f32 matmuls are TF32 by default (inputs keep 10 mantissa bits), fp32 with tf32: false', (t) => {
    // every product is (1 + 2^-12)·1: exact in fp32 (64 of them sum to 64 + 2^-6), 1 once rounded to TF32
    const C = 64, x = 1 + 2 ** -12
    const run = (be: CudaBackend): Float32Array => {
      const inp = be.alloc(C * C), w = be.alloc(C * C), out = be.alloc(C * C)
      be.upload(inp, new Float32Array(C * C).fill(x))
      be.upload(w, new Float32Array(C * C).fill(1))
      be.matmulForward(out, inp, w, null, C, C, C)
      return be.download(out)
    }
    assert.deepEqual(run(new CudaBackend({ storage: 'f32', tf32: false })), new Float32Array(C * C).fill(C * x))
    const byDefault = new CudaBackend({ storage: 'f32' }), got = run(byDefault)
    // FAST_TF32 lets cuBLASLt use TF32 but does not oblige it: strict on the emulator, which always rounds
    if (byDefault.ctx.info.name.includes('emulator')) assert.deepEqual(got, new Float32Array(C * C).fill(C))
    else t.diagnostic(`default f32 matmul on this GPU: ${got[0]} (TF32: ${C}, fp32: ${C * x})`)
  })
  test('peakFlops: the spec peak of the device at the matmuls\' precision (bf16 mixed, TF32 or fp32 with f32 storage)', (t) => {
    const peaks = (): (number | null)[] => [new CudaBackend().peakFlops(), new CudaBackend({ storage: 'f32' }).peakFlops(),
      new CudaBackend({ storage: 'f32', tf32: false }).peakFlops()]
    const name = new CudaBackend().ctx.info.name
    if (name.includes('emulator')) {   // no peak of its own; as an H100 SXM, the datasheet's dense figures
      assert.deepEqual(peaks(), [null, null, null])
      withEnv({ LLMTS_EMU_DEVICE_NAME: 'NVIDIA H100 80GB HBM3' }, () => assert.deepEqual(peaks(), [989.5e12, 494.5e12, 67e12]))
    } else {
      const spec = (p: MatmulPrecision): number | null => { const v = specPeakTflops(name, p); return v === null ? null : v * 1e12 }
      assert.deepEqual(peaks(), [spec('bf16'), spec('tf32'), spec('fp32')])
      t.diagnostic(`${name}: peak ${peaks().map(v => v === null ? 'unknown' : `${v / 1e12} TFLOP/s`).join(', ')} (bf16, TF32, fp32)`)
    }
  })
  registerMixedPrecisionOps()
  registerMixedMemory()
  registerMixedSequenceOps()
  registerModelChecks()
  registerProfiler()
  registerGemmTune()
  test('NCCL on this GPU: a one-rank communicator (the real library\'s binding; ranks on several GPUs need several GPUs)', async (t) => {
    const backend = new CudaBackend()
    const one: Collective = {   // the host side of a world of one: nothing to send anywhere
      rank: 0, world: 1, allReduceSum: async () => {}, sumHost: async v => [...v], broadcast: async b => b!, describe: () => 'one', close: () => {},
    }
    let coll: Collective
    try { coll = await backend.openCollective(one) } catch (e) {
      if (e instanceof InputError) { t.skip(`NCCL not found: ${e.message}`); return }
      throw e
    }
    assert.match(coll.describe(), /^1 ranks, gradients summed by NCCL \d+\.\d+\.\d+ \(/)
    const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3)
    const f32 = backend.alloc(x.length), bf16 = backend.alloc(x.length, { precision: 'compute' })
    backend.upload(f32, x)
    backend.upload(bf16, x)
    const bf16Before = backend.download(bf16)
    await coll.allReduceSum(f32)
    await coll.allReduceSum(bf16)
    assert.deepEqual(backend.download(f32), x, 'the sum over one rank is the tensor itself')
    assert.deepEqual(backend.download(bf16), bf16Before)
    coll.close()
  })
}
