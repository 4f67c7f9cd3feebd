// What every fast CPU path (native BLAS, WebAssembly) must pass, registered once per path: the op conformance
// suite with the fast kernels forced on even for the fixtures' tiny shapes, the same with every op split across
// two threads, and the PyTorch model goldens (forward logits/loss, every parameter's gradient) on that path.

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
  registerGoldens(name, { kernels, threads: 2, minWork: { gemm: 0, split: 0 } })
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
