// Test tooling: runs one kernel of selftest.cu on the emulator (LLMTS_CUDA_KERNELS names a folder holding it) and
// prints its 64 outputs as JSON. Usage: node selftest-run.js KERNEL ARG [SHARED_BYTES]   (cuda-emu.test.ts)

import { CudaBackend } from '../../../src/backend/cuda/index.js'
import { asDevice } from '../../../src/backend/cuda/memory.js'

const [name, arg, shared] = process.argv.slice(2)
const be = new CudaBackend({ storage: 'f32' })
const inputLength = name === 'selftest_past_end' ? 61 : 64
const out = be.alloc(64), input = be.alloc(inputLength)
be.upload(out, new Float32Array(64).fill(-1))
be.upload(input, Float32Array.from({ length: inputLength }, (_, i) => i + 0.5))
const ptr = (t: typeof out): number => asDevice(t, 'selftest', 'tensor').ptr
const withInput = ['selftest_cp_async', 'selftest_load8', 'selftest_cp_async_from', 'selftest_past_end'].includes(name!)
const args = withInput ? [ptr(out), ptr(input), Number(arg)] : [ptr(out), Number(arg)]
be.ctx.launch(name!, [1, 1, 1], [name === 'selftest_wgmma' ? 128 : 64, 1, 1], Number(shared ?? 0), args)   // wgmma: a warpgroup
console.log(JSON.stringify(Array.from(be.download(out))))
