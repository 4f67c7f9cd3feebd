// Benchmark of the training DataLoader on FineWeb-sized shards (100M tokens, 200 MB each, random ids): tokens/s it
// yields at B=8, T=1024 in order and with shuffle, the time of the next() that changes shards (every shard holds as
// many windows here, so those are known by count), the construction (first shard opened, its first batch read)
// and the peak RSS, per rank process. Run: npx tsc && node dist/bench/loader-io.js --dir DIR [--shards 3]
// [--tokens 100000000] [--batches 40000] [--shuffle] [--rank 0 --world 1]   (DIR/bench_train_*.bin made once)

import { existsSync, mkdirSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { batchesIn, DataLoader } from '../src/data/loader.js'
import { listShards, shardPath, writeShard } from '../src/data/shards.js'
import { Rng } from '../src/util/rng.js'

const args = process.argv.slice(2)
const opt = (name: string, dflt: string): string => { const i = args.indexOf(name); return i < 0 ? dflt : args[i + 1]! }
const dir = opt('--dir', '/tmp/llmts-bench-loader'), shards = Number(opt('--shards', '3')), tokens = Number(opt('--tokens', '100000000'))

mkdirSync(dir, { recursive: true })
const rng = new Rng(5)
for (let i = 0; i < shards; i++) {
  const path = shardPath(dir, 'bench', 'train', i + 1)
  if (existsSync(path)) continue
  const t = new Uint16Array(tokens)
  for (let j = 0; j < tokens; j++) t[j] = rng.nextU32() % 50257
  writeShard(path, t)
}
const B = 8, T = 1024, batches = Number(opt('--batches', '40000'))
const t0 = performance.now()
const loader = new DataLoader({ files: listShards(dir, 'train'), B, T, shuffle: args.includes('--shuffle'),
  rank: Number(opt('--rank', '0')), worldSize: Number(opt('--world', '1')) })
const first = performance.now() - t0
const perShard = batchesIn(tokens, loader.worldSize * B * T)   // the next() after each perShard batches changes shards
let slowest = 0, changes = 0, changeMs = 0, otherMs = 0, sum = 0
const t1 = performance.now()
for (let i = 0; i < batches; i++) {
  const s = performance.now()
  const b = loader.next()
  const ms = performance.now() - s
  sum += b.inputs[0]!
  if (i > 0 && i % perShard === 0) { changes++; changeMs += ms; slowest = Math.max(slowest, ms) } else otherMs = Math.max(otherMs, ms)
}
const s = (performance.now() - t1) / 1000
console.log(JSON.stringify({ shuffle: args.includes('--shuffle'), firstLoadMs: Math.round(first), batches, seconds: +s.toFixed(2),
  tokensPerS: Math.round(batches * B * T / s), shardChanges: changes,
  meanChangeMs: +(changeMs / Math.max(1, changes)).toFixed(2), slowestChangeMs: +slowest.toFixed(2), slowestOtherMs: +otherMs.toFixed(2),
  peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024), check: sum }))
