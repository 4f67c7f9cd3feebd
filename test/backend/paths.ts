// What every fast CPU path (native BLAS, WebAssembly) must pass, registered once per path: the op conformance
// suite with the fast kernels forced on even for the fixtures' tiny shapes, the same with every op split across
// two threads and across three (two worker slices, each with its own partial sums), a check that those backends
// really have their workers, and the PyTorch model goldens (forward logits/loss, every parameter's gradient).

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { CpuBackend, type CpuOptions } from '../../src/backend/cpu/index.js'
import { GPT } from '../../src/model/gpt.js'
import { assertClose, maxAbs } from '../model/close.js'
import { goldenNames, loadGolden } from '../model/golden.js'
import { runConformance } from './conformance.js'

export function registerPathSuites(name: string, kernels: CpuOptions['kernels']): void {
  // The fast GEMMs accumulate in float32 (the JS loops in float64): a sum of K products of size ~1 that cancels
  // to ~1e-3 keeps an absolute error of ~sqrt(K)·6e-8·|terms| — measured 1.9e-6 at K = 70 (matmul 'tiles')
  const tol = { rtol: 1e-5, atol: 5e-6 }
  runConformance(`cpu/${name}`, () => new CpuBackend({ kernels, threads: 1, minWork: { gemm: 0 } }), tol)
  runConformance(`cpu/${name}, 2 threads`, () => new CpuBackend({ kernels, threads: 2, minWork: { gemm: 0, split: 0 } }), tol)
  // at 2 threads there is one worker slice; a bug in how several worker slices share state shows only from 3
  runConformance(`cpu/${name}, 3 threads`, () => new CpuBackend({ kernels, threads: 3, minWork: { gemm: 0, split: 0 } }), tol)
  registerThreadChecks(name, kernels)
  registerGoldens(name, { kernels, threads: 2, minWork: { gemm: 0, split: 0 } })
}

/** The threaded suites above split their ops: a `threads: n` backend has n - 1 workers, and a row op over n rows runs
 *  one slice on each of them (counted at the shared pool's run(); one thread would pass every suite unnoticed). */
function registerThreadChecks(name: string, kernels: CpuOptions['kernels']): void {
  test(`cpu/${name}: 2 and 3 threads mean 1 and 2 workers, each running a slice of an op`, () => {
    for (const threads of [2, 3]) {
      const be = new CpuBackend({ kernels, threads, minWork: { gemm: 0, split: 0 } })
      const pool = be.accel.pool
      assert.equal(be.accel.threads, threads)
      assert.ok(pool !== null, `threads: ${threads} has no worker pool`)
      assert.equal(pool.size, threads - 1)
      const slices: number[] = [], run = pool.run
      pool.run = (tasks, local) => { slices.push(tasks.length); run.call(pool, tasks, local) }
      const N = threads, C = 4, out = be.alloc(N * C), rstd = be.alloc(N), inp = be.alloc(N * C), w = be.alloc(C)
      try {
        be.rmsnormForward(out, rstd, inp, w, N, C, 1e-5)
      } finally {
        pool.run = run
      }
      assert.deepEqual(slices, [threads - 1], `threads: ${threads}: tasks handed to the workers per op`)
    }
  })
}

/** The model goldens of test/model/golden.test.ts (same tolerances, measured there) on one path. */
function registerGoldens(name: string, opts: CpuOptions): void {
  describe(`model goldens on cpu/${name}`, () => {
    for (const gname of goldenNames()) {
      test(`${gname}: forward logits and loss, backward gradients`, () => {
        const g = loadGolden(gname)
        const model = new GPT(new CpuBackend(opts), g.config, { maxBatch: g.B, maxSeqLen: g.T })
        model.setParams(g.params)
        model.zeroGrad()
        const loss = model.forward(g.tokens, g.targets, g.B, g.T)
        assertClose('logits', model.lastLogits(), g.logits, { atol: 1e-5 * maxAbs(g.logits), rtol: 1e-5 })
        assertClose('loss', [loss], [g.loss], { atol: 0, rtol: 1e-5 })
        model.backward(1)
        const grads = model.getGrads()
        for (const [pname, , refOffset] of g.layout) {
          const spec = model.layout.get(pname)
          const ref = g.grads.subarray(refOffset, refOffset + spec.size)
          assertClose(`grad ${pname}`, grads.subarray(spec.offset, spec.offset + spec.size), ref, { atol: 1e-5 * maxAbs(ref), rtol: 1e-4 })
        }
      })
    }
  })
}
