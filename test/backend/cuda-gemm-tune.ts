// The opt-in cuBLASLt algorithm autotune (gemmTune > 1): a tuned backend writes what the untuned one writes, bit
// for bit (an accumulating GEMM's D is saved around the trials), and keeps the fastest candidate. On the emulator
// every candidate computes alike and LLMTS_EMU_LT_DELAY_MS makes chosen ones slow (cuda-emu/fake-lt.cpp).

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CudaBackend } from '../../src/backend/cuda/index.js'
import { withEnv } from '../helpers/env.js'
import { randn } from './cuda-mixed.js'

const N = 64, C = 48, OC = 80

/** A bf16 forward with bias, then a backward adding into existing dinp and dweight (accumulating GEMMs): what each wrote. */
function runMatmuls(be: CudaBackend, x: Float32Array[]): Float32Array[] {
  const [xin, xw, xb, xdout, xdinp, xdw] = x
  const put = (data: Float32Array, compute: boolean) => {
    const t = be.alloc(data.length, compute ? { precision: 'compute' } : undefined)
    be.upload(t, data)
    return t
  }
  const inp = put(xin!, true), w = put(xw!, false), bias = put(xb!, false), out = be.alloc(N * OC, { precision: 'compute' })
  const dout = put(xdout!, true), dinp = put(xdinp!, true), dw = put(xdw!, false)
  be.matmulForward(out, inp, w, bias, N, C, OC)
  be.matmulBackward(dinp, dw, null, dout, inp, w, N, C, OC)
  return [be.download(out), be.download(dinp), be.download(dw)]
}

const inputs = (): Float32Array[] => [randn(N * C), randn(OC * C, 0.2), randn(OC), randn(N * OC), randn(N * C), randn(OC * C)]

export function registerGemmTune(): void {
  test('gemmTune: forward and backward matmuls (accumulating ones too) write what the untuned backend writes, bit for bit', () => {
    const x = inputs(), plain = new CudaBackend(), tuned = new CudaBackend({ gemmTune: 3 })
    assert.deepEqual(runMatmuls(tuned, x), runMatmuls(plain, x))
    assert.deepEqual(plain.gemmTuning(), [], 'off by default: nothing timed')
    const t = tuned.gemmTuning()
    assert.equal(t.length, 3, 'one tuning per shape: forward, dinp, dweight')
    assert.equal(t.filter(s => s.gemm.endsWith(' +=')).length, 2, t.map(s => s.gemm).join('; '))
    for (const s of t) assert.equal(s.ms.length, 3, `three candidates timed for ${s.gemm}`)
  })

  test('gemmTune: the slow candidates are never kept; the fast one is, and what it wrote is the untuned result', () => {
    const x = inputs(), want = runMatmuls(new CudaBackend(), x)
    // candidates 0 and 2 sleep 30 ms a call: the heuristic's first loses to the second
    withEnv({ LLMTS_EMU_LT_DELAY_MS: '30,0,30' }, () => {
      const be = new CudaBackend({ gemmTune: 3 })
      assert.deepEqual(runMatmuls(be, x), want)
      const t = be.gemmTuning()
      assert.equal(t.length, 3)
      for (const s of t) {
        assert.equal(s.chosen, 1, `${s.gemm}: kept ${s.chosen}, medians ${s.ms.join(', ')} ms`)
        assert.ok(s.ms[0]! >= 30 && s.ms[2]! >= 30 && s.ms[1]! < 30, `${s.gemm}: medians ${s.ms.join(', ')} ms`)
      }
    })
  })

  test('gemmTune: a candidate the heuristic returns with a failed state is not timed (nor called)', () => {
    const x = inputs(), want = runMatmuls(new CudaBackend(), x)
    withEnv({ LLMTS_EMU_LT_UNUSABLE: '1' }, () => {
      const be = new CudaBackend({ gemmTune: 3 })
      assert.deepEqual(runMatmuls(be, x), want)
      assert.deepEqual(be.gemmTuning().map(s => s.ms.length), [2, 2, 2])
    })
  })

  test('gemmTune 2 on the environment (LLMTS_CUDA_GEMM_TUNE) times two candidates', () => {
    withEnv({ LLMTS_CUDA_GEMM_TUNE: '2' }, () => {
      const be = new CudaBackend()
      runMatmuls(be, inputs())
      assert.deepEqual(be.gemmTuning().map(s => s.ms.length), [2, 2, 2])
    })
  })
}
