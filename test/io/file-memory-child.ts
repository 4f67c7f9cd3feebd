// Child of file-memory.test.ts: writes or reads one checkpoint, or exports a Hugging Face directory, in a fresh
// process (or imports one: loadHfDir) and prints, as JSON, how far the stage raised the peak RSS above the RSS it started from, and the SHA-256
// of the weights (and moments); an import also the largest single read of the files. Usage:
// node file-memory-child.js write|read|export-bf16|export-f32|import DIR

import { createHash } from 'node:crypto'
import fs from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { configFromJson } from '../../src/config.js'
import { exportHf, loadHfDir } from '../../src/io/hf.js'
import { ParamLayout } from '../../src/model/params.js'
import { readCheckpoint, writeCheckpoint } from '../../src/train/checkpoint.js'
import { Rng } from '../../src/util/rng.js'

// ~14M floats: a 56 MB model file and a 112 MB optimizer file, its wte (51 MB) over the reader's 16 MiB chunk
export const memoryConfig = configFromJson({ preset: 'gpt2-124m', layers: 1, channels: 256, heads: 4 }, 'test')

const sha = (a: Float32Array): string => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex')

function random(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n)
  for (let i = 0; i < n; i++) a[i] = rng.nextU32() / 2 ** 32 - 0.5
  return a
}

function main(stage: string, dir: string): void {
  let arrays: () => Float32Array[]
  if (stage === 'write') {
    const rng = new Rng(7), total = new ParamLayout(memoryConfig).total
    const [params, m, v] = [random(total, rng), random(total, rng), random(total, rng)]
    const ck = { modelConfig: memoryConfig, trainConfig: null, params: params!, optimizer: { m: m!, v: v!, step: 3 },
      progress: { step: 3, loader: null, rng: [1, 2, 3, 4] as [number, number, number, number], valLoss: null, bestValLoss: null } }
    arrays = () => { writeCheckpoint(dir, ck); return [params!, m!, v!] }
  } else if (stage.startsWith('export')) {
    const layout = new ParamLayout(memoryConfig), params = random(layout.total, new Rng(7))
    const wte = layout.specs.find(s => s.name === 'wte')!   // padded vocabulary rows are not exported: zero, as import makes them
    params.fill(0, wte.offset + memoryConfig.vocabSize * memoryConfig.channels, wte.offset + wte.size)
    arrays = () => { exportHf(dir, memoryConfig, params, { dtype: stage === 'export-bf16' ? 'bf16' : 'f32', tokenizer: 'none' }); return [params] }
  } else if (stage === 'import') {
    arrays = () => [loadHfDir(dir).params]
  } else {
    arrays = () => { const ck = readCheckpoint(dir, { withOptimizer: true }); return [ck.params, ck.optimizer!.m, ck.optimizer!.v] }
  }
  // every read the code under test makes, through the ESM bindings of node:fs it imported
  let maxRead = 0
  const readSync = fs.readSync
  fs.readSync = ((fd: number, buf: NodeJS.ArrayBufferView, ...rest: unknown[]) => {
    const n = (readSync as (...a: unknown[]) => number)(fd, buf, ...rest)
    maxRead = Math.max(maxRead, n)
    return n
  }) as typeof fs.readSync
  syncBuiltinESMExports()
  const before = process.memoryUsage().rss
  const out = arrays()
  const extraMiB = (process.resourceUsage().maxRSS * 1024 - before) / 2 ** 20
  console.log(JSON.stringify({ extraMiB, sha256: out.map(sha), maxRead }))
}

if (process.argv[2] !== undefined) main(process.argv[2], process.argv[3]!)
