// Benchmark of the WebAssembly sgemm alone (src/backend/cpu/wasm/gemm.ts) at the tiny models' training shapes
// (B·T = 2048 rows, C = 256): each matmul's forward (NT) and backward (NN for dinp, TN for dweight) form, the
// classifier over the padded GPT-2 vocabulary included. Copies into module memory and packing count.
// Run: npm run build && node dist/bench/cpu-gemm.js [--reps N] [--filter a,b]   (one thread; best of N, default 3;
// --filter keeps the products whose name contains one of the comma-separated texts)

import { parseArgs } from 'node:util'
import { loadWasmGemm } from '../src/backend/cpu/wasm/gemm.js'
import { wasmVariant } from '../src/backend/cpu/wasm/module.js'
import type { Trans } from '../src/backend/cpu/gemm.js'

const { values } = parseArgs({ options: { reps: { type: 'string', default: '3' }, filter: { type: 'string', default: '' } } })
const reps = Number(values.reps)
const gemm = loadWasmGemm()
if (gemm === null) throw new Error('bench/cpu-gemm: this engine has no WebAssembly SIMD')

const NT = 2048, C = 256, V = 50_304
// [name, ta, tb, M, N, K]: out (M,N) = op(A) (M,K) · op(B) (K,N)
const shapes: [string, Trans, Trans, number, number, number][] = []
for (const [name, OC, IC] of [['qkv', 3 * C, C], ['fc', 4 * C, C], ['proj', C, 4 * C], ['classifier', V, C]] as const) {
  shapes.push([`${name} forward`, 'N', 'T', NT, OC, IC])
  shapes.push([`${name} dinp`, 'N', 'N', NT, IC, OC])
  shapes.push([`${name} dweight`, 'T', 'N', OC, IC, NT])
}

const rand = (n: number): Float32Array => Float32Array.from({ length: n }, () => Math.random() - 0.5)

// GFLOP/s per wall-clock second, and per CPU second of this process: on a shared machine the second is the steadier
console.log(`wasm build: ${wasmVariant()}\n\n| product | form | M×N×K | ms | GFLOP/s | GFLOP/CPU-s |\n|---|---|---|---:|---:|---:|`)
for (const [name, ta, tb, M, N, K] of shapes) {
  if (!values.filter.split(',').some(f => name.includes(f))) continue
  const a = rand(M * K), b = rand(K * N), c = new Float32Array(M * N)
  const lda = ta === 'N' ? K : M, ldb = tb === 'N' ? N : K
  let ms = Infinity, cpuMs = Infinity
  for (let r = 0; r <= reps; r++) {   // the first run warms up
    const t0 = performance.now(), u0 = process.cpuUsage()
    gemm.sgemm(ta, tb, M, N, K, a, 0, lda, b, 0, ldb, 1, c, 0, N)
    const u = process.cpuUsage(u0)
    if (r > 0) ms = Math.min(ms, performance.now() - t0)
    if (r > 0) cpuMs = Math.min(cpuMs, (u.user + u.system) / 1e3)
  }
  const gflop = 2 * M * N * K / 1e9
  console.log(`| ${name} | ${ta}${tb} | ${M}×${N}×${K} | ${ms.toFixed(1)} | ${(gflop / ms * 1e3).toFixed(1)} | ${(gflop / cpuMs * 1e3).toFixed(1)} |`)
}
