// The conformance suite on CpuBackend's pure-JS reference kernels (the default picks BLAS or WebAssembly:
// blas.test.ts and wasm.test.ts run the suite there). float64 accumulation everywhere, so the only differences
// from the float64 PyTorch reference are float32 rounding of inputs, saved statistics and outputs: 1e-5 relative.

import { CpuBackend } from '../../src/backend/cpu/index.js'
import { runConformance } from './conformance.js'

runConformance('cpu', () => new CpuBackend({ kernels: 'js' }), { rtol: 1e-5, atol: 1e-6 })
