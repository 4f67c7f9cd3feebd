// The conformance suite on CpuBackend's pure-JS reference kernels (the default picks BLAS or WebAssembly:
// blas.test.ts and wasm.test.ts run the suite there). float64 accumulation everywhere, so the only differences
// from the float64 PyTorch reference are float32 rounding of inputs, saved statistics and outputs: 1e-5 relative.
// Then what only the CPU backend promises: a token outside [0, Vp) is an error (the CUDA backend gives a NaN row).

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { runConformance } from './conformance.js'

runConformance('cpu', () => new CpuBackend({ kernels: 'js' }), { rtol: 1e-5, atol: 1e-6 })

// encoderForward is the same JS loop on every kernel path. wte is a view into the parameters, as in the model, so
// token Vp would read the next parameter's first row: a wrong embedding and no NaN, unless it is refused.
test('cpu: encoderForward refuses a token outside [0, Vp) (Vp, the row past wte, and -1), naming it and its position', () => {
  const be = new CpuBackend({ kernels: 'js' })
  const Vp = 4, C = 3, B = 1, T = 2
  const params = be.alloc((Vp + 1) * C)                 // wte, then the next parameter's row
  be.upload(params, Float32Array.from({ length: (Vp + 1) * C }, (_, i) => i + 1))
  const wte = be.view(params, 0, Vp * C), out = be.alloc(B * T * C)
  const tokens = (a: number[]) => { const t = be.allocInt(a.length); be.uploadInt(t, Int32Array.from(a)); return t }
  be.encoderForward(out, tokens([0, Vp - 1]), wte, null, B, T, C, 0)
  assert.deepEqual(be.download(out), Float32Array.from([1, 2, 3, 10, 11, 12]))
  for (const bad of [Vp, -1]) {
    assert.throws(() => be.encoderForward(out, tokens([0, bad]), wte, null, B, T, C, 0),
      (e: Error) => e.message === `encoderForward: token ${bad} at (0,1) is outside [0, ${Vp})`)
  }
})
