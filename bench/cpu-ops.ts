// Benchmark of the CPU backend's hot ops at a tiny-model training shape (B·T = 2048 rows, C = 256): matmul
// forward/backward in GFLOP/s, attention, and the fused classifier over the padded GPT-2 vocabulary.
// Run: npx tsc && node dist/bench/cpu-ops.js   (single-threaded; prints a table, best of 3 runs)

import { CpuBackend } from '../src/backend/cpu/index.js'
import type { Tensor } from '../src/backend/backend.js'
import { bestMs } from './timing.js'

const be = new CpuBackend()
const rand = (n: number): Tensor => {
  const a = new Float32Array(n)
  for (let i = 0; i < n; i++) a[i] = Math.random() - 0.5
  const t = be.alloc(n)
  be.upload(t, a)
  return t
}

/** Best ms of `reps` runs after one warm-up run (first-call costs: kernel compiles, page faults). */
function best(f: () => void, reps = 3): number {
  f()
  return bestMs(reps, f)
}

const rows: [string, number, number][] = []   // [name, ms, GFLOP]
function run(name: string, gflop: number, f: () => void, reps = 3): void {
  rows.push([name, best(f, reps), gflop])
}

const N = 2048, C = 256, OC = 768
{
  const inp = rand(N * C), w = rand(OC * C), b = rand(OC), out = be.alloc(N * OC), dout = rand(N * OC)
  const dinp = be.alloc(N * C), dw = be.alloc(OC * C), db = be.alloc(OC)
  run(`matmul forward N=${N} C=${C} OC=${OC}`, 2 * N * C * OC / 1e9, () => be.matmulForward(out, inp, w, b, N, C, OC))
  run(`matmul backward N=${N} C=${C} OC=${OC}`, 4 * N * C * OC / 1e9, () => be.matmulBackward(dinp, dw, db, dout, inp, w, N, C, OC))
}
{
  const B = 8, T = 256, NH = 8, KVH = 4, HS = 32, QKV = (NH + 2 * KVH) * HS
  const qkv = rand(B * T * QKV), out = be.alloc(B * T * NH * HS), lse = be.alloc(B * NH * T), dqkv = be.alloc(B * T * QKV)
  const flop = B * NH * T * (T + 1) / 2 * HS * 4 / 1e9
  run(`attention forward B=${B} T=${T} NH=${NH} KVH=${KVH} HS=${HS}`, flop, () => be.attentionForward(out, lse, qkv, B, T, NH, KVH, HS))
  run(`attention backward (same)`, 2 * flop, () => be.attentionBackward(dqkv, out, qkv, out, lse, B, T, NH, KVH, HS))
}
{
  const rowsCE = 256, V = 50_257, Vp = 50_304
  const logits = rand(rowsCE * Vp), probs = be.alloc(rowsCE * Vp), losses = be.alloc(rowsCE)
  const targets = be.allocInt(rowsCE)
  run(`crossentropy forward N=${rowsCE} Vp=${Vp}`, 0, () => be.crossEntropyForward(losses, probs, logits, targets, rowsCE, V, Vp))
  run(`crossentropy backward N=${rowsCE} Vp=${Vp}`, 0, () => be.crossEntropyBackward(probs, probs, targets, 1, rowsCE, V, Vp))
}

console.log(`| op | ms | GFLOP/s |\n|---|---:|---:|`)
for (const [name, ms, gflop] of rows) console.log(`| ${name} | ${ms.toFixed(1)} | ${gflop > 0 ? (gflop / (ms / 1e3)).toFixed(2) : '-'} |`)
