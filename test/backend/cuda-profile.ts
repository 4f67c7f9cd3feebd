// The per-op profiler ({ profile: true } or LLMTS_CUDA_PROFILE=1): report() counts every call of every op, times
// non-negative and slowest first, reset() clears, and the wrapped ops return and write what unprofiled ones do.
// The events must bracket the op's work: checked by the order of the host calls (event, kernel, event), which holds
// on a GPU and on the emulator alike, where a timing threshold would be flaky on a loaded machine.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CudaBackend } from '../../src/backend/cuda/index.js'
import { withEnv } from '../helpers/env.js'
import { randn } from './cuda-mixed.js'

/** Runs a fixed mix of ops on `be`: what they wrote and returned. */
function runOps(be: CudaBackend, x: Float32Array): { out: Float32Array; copied: Float32Array; squares: number[] } {
  const n = x.length, a = be.alloc(n), out = be.alloc(n), copied = be.alloc(n)
  be.upload(a, x)
  be.residualForward(out, a, a, n)
  be.geluForward(out, out, n)
  be.residualForward(out, out, a, n)
  be.copy(copied, out)
  be.zero(a)
  const squares = [be.sumSquares(out), be.sumSquares(copied)]
  return { out: be.download(out), copied: be.download(copied), squares }
}

export function registerProfiler(): void {
  test('profiler: call counts per op, times slowest first, reset, results unchanged, events around the op', () => {
    const x = randn(5000), plain = runOps(new CudaBackend(), x)
    const be = new CudaBackend({ profile: true }), profiler = be.profiler!
    assert.deepEqual(runOps(be, x), plain, 'profiling changes no result (and passes return values through)')
    const report = profiler.report()
    assert.deepEqual(Object.fromEntries(report.map(r => [r.op, r.calls])),
      { residualForward: 2, geluForward: 1, copy: 1, zero: 1, sumSquares: 2 })
    assert.ok(report.every(r => r.ms >= 0), JSON.stringify(report))
    assert.ok(report.every((r, i) => i === 0 || report[i - 1]!.ms >= r.ms), `not slowest first: ${JSON.stringify(report)}`)
    profiler.reset()
    assert.deepEqual(profiler.report(), [])
    // the host order of a profiled op: its start event, its kernel, its end event (on the one stream, so the events
    // bracket the kernel's GPU time)
    const calls: string[] = [], ctx = be.ctx, { recordEvent, launch } = ctx
    ctx.recordEvent = () => { calls.push('event'); return recordEvent.call(ctx) }
    ctx.launch = (name, ...rest) => { calls.push(name); launch.call(ctx, name, ...rest) }
    const t = be.alloc(10)
    try { be.geluForward(t, t, 10) } finally { ctx.recordEvent = recordEvent; ctx.launch = launch }
    assert.deepEqual(calls, ['event', 'gelu_forward', 'event'])
    assert.deepEqual(profiler.report().map(r => [r.op, r.calls]), [['geluForward', 1]], 'counting again after reset')
  })

  test('profiler: off by default, on with LLMTS_CUDA_PROFILE=1, and the option wins over the environment', () => {
    withEnv({ LLMTS_CUDA_PROFILE: undefined }, () => assert.equal(new CudaBackend().profiler, null))
    withEnv({ LLMTS_CUDA_PROFILE: '1' }, () => {
      assert.notEqual(new CudaBackend().profiler, null)
      assert.equal(new CudaBackend({ profile: false }).profiler, null)
    })
  })
}
