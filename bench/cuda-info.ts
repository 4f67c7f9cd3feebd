// What the CUDA backend finds on this machine: the device, the library files it loaded (driver, NVRTC, cuBLASLt),
// the NVRTC target, how long compiling every kernel takes (into the kernel cache, so later stages find them
// compiled: cold when the cache was empty), how long loading them back from the cache takes, and a one-matmul
// smoke test. First thing scripts/gpu/run.sh runs; without a GPU it prints the backend's one-line error.
// Run: npx tsc && node dist/bench/cuda-info.js

import { readdirSync } from 'node:fs'
import { defaultCacheDir } from '../src/backend/cuda/compile.js'
import { CudaBackend } from '../src/backend/cuda/index.js'

function main(): number {
  let be: CudaBackend
  try { be = new CudaBackend() } catch (e) {
    console.log(`cuda-info: ${(e as Error).message}`)
    return 1
  }
  console.log(`device: ${be.describe()}`)
  const cache = defaultCacheDir()
  let entries = 0
  try { entries = readdirSync(cache, { recursive: true }).length } catch { /* no cache yet */ }
  let t0 = performance.now()
  be.warmup()
  const target = `${be.ctx.compileTarget.arch} (${be.ctx.compileTarget.kind})`
  console.log(`kernels: ready for ${target} in ${((performance.now() - t0) / 1000).toFixed(1)} s ` +
    `(${entries === 0 ? 'cold: the cache was empty' : `the cache held ${entries} entries`}; ${cache})`)
  t0 = performance.now()
  new CudaBackend().warmup()
  console.log(`kernels: ${((performance.now() - t0) / 1000).toFixed(2)} s through the disk cache`)
  const n = 256, a = be.alloc(n * n, { precision: 'compute' }), w = be.alloc(n * n), o = be.alloc(n * n)
  be.upload(a, new Float32Array(n * n).fill(1))
  be.upload(w, new Float32Array(n * n).fill(0.5))
  be.matmulForward(o, a, w, null, n, n, n)
  const got = be.download(o)[0]
  console.log(`matmul smoke test: ${got} (expected ${n * 0.5})`)
  for (const [k, v] of Object.entries(be.ctx.libraries)) console.log(`library ${k}: ${v}`)
  const m = be.ctx.memInfo()
  console.log(`memory: ${(m.free / 2 ** 30).toFixed(1)} GiB free of ${(m.total / 2 ** 30).toFixed(1)} GiB`)
  return got === n * 0.5 ? 0 : 1
}

process.exitCode = main()
