// What the CUDA backend finds on this machine: the device, the library files it loaded (driver, NVRTC, cuBLASLt),
// the NVRTC target, how long compiling every kernel takes (cold: LLMTS_CACHE pointed at an empty folder) and a
// one-matmul smoke test. First thing scripts/gpu/run.sh runs; without a GPU it prints the backend's one-line error.
// Run: npx tsc && node dist/bench/cuda-info.js

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CudaBackend } from '../src/backend/cuda/index.js'

function main(): number {
  let be: CudaBackend
  try { be = new CudaBackend() } catch (e) {
    console.log(`cuda-info: ${(e as Error).message}`)
    return 1
  }
  console.log(`device: ${be.describe()}`)
  const cold = mkdtempSync(join(tmpdir(), 'llmts-kernels-'))
  try {
    const fresh = new CudaBackend({ cacheDir: cold })
    let t0 = performance.now()
    fresh.warmup()
    console.log(`kernels: compiled for ${fresh.ctx.compileTarget.arch} (${fresh.ctx.compileTarget.kind}) in ${((performance.now() - t0) / 1000).toFixed(1)} s cold`)
    t0 = performance.now()
    be.warmup()
    console.log(`kernels: ${((performance.now() - t0) / 1000).toFixed(2)} s through the disk cache`)
  } finally { rmSync(cold, { recursive: true, force: true }) }
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
