// The windowed DataLoader against a reference built from the shard files' bytes alone (readFileSync, little-endian
// uint16 after the 1024-byte header, llm.c's window rule and the shuffle spec driven by hand): every batch of three
// epochs, for every rank, in order and shuffled, and after restore() from states taken anywhere (with and without
// the shard fingerprints older checkpoints lack). Also: ids are checked in the windows read, not the whole shard;
// the fingerprints tell a shard changed under its name.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Rng } from '../../src/util/rng.js'
import { DataLoader, type LoaderState } from '../../src/data/loader.js'
import { writeShard } from '../../src/data/shards.js'
import { InputError } from '../../src/util/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'llmts-loader-windows-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i)
const ids = new Rng(3)
const files = [157, 64, 301, 90].map((n, i) => {
  const p = join(dir, `w_train_00000${i}.bin`)
  writeShard(p, Uint16Array.from({ length: n }, () => ids.int(50257)))
  return p
})

/** The file's tokens, read from its bytes: uint16 little-endian from byte 1024 (the 256-int32 header). */
function fileTokens(path: string): number[] {
  const b = readFileSync(path)
  return Array.from({ length: (b.length - 1024) / 2 }, (_, i) => b.readUInt16LE(1024 + 2 * i))
}

/** Rank r's first `n` batches, each its B·T+1 tokens, by the header comment's rule from the file bytes. */
function expected(c: { B: number; T: number; W: number; r: number; shuffle: boolean; seed: number }, n: number): number[][] {
  const toks = files.map(fileTokens), WBT = c.W * c.B * c.T
  const windows = toks.map(t => Math.floor((t.length - 1) / WBT))
  const rng = new Rng(c.seed), order = range(0, files.length)
  if (c.shuffle) rng.shuffle(order)
  const out: number[][] = []
  while (out.length < n) {
    for (const f of order) {
      const ws = range(0, windows[f]!)
      for (const w of c.shuffle ? rng.shuffle(ws) : ws) {
        const start = w * WBT + c.r * c.B * c.T
        out.push(toks[f]!.slice(start, start + c.B * c.T + 1))
      }
    }
    if (c.shuffle) rng.shuffle(order)
  }
  return out.slice(0, n)
}

const got = (l: DataLoader): number[] => { const b = l.next(); return [...b.inputs, b.targets[b.targets.length - 1]!] }
const shifted = (b: { inputs: Int32Array; targets: Int32Array }): boolean =>
  [...b.inputs.subarray(1)].every((v, i) => v === b.targets[i])

const configs = [
  { B: 2, T: 3, W: 1, shuffle: false }, { B: 2, T: 3, W: 1, shuffle: true }, { B: 1, T: 4, W: 3, shuffle: false },
  { B: 2, T: 2, W: 2, shuffle: true }, { B: 3, T: 5, W: 1, shuffle: true }, { B: 1, T: 7, W: 4, shuffle: true },
]

for (const { B, T, W, shuffle } of configs) {
  test(`every batch of three epochs as the file bytes say, and after restore from anywhere (B=${B} T=${T} W=${W} shuffle ${shuffle})`, () => {
    const seed = 17
    for (let r = 0; r < W; r++) {
      const opts = { files, B, T, rank: r, worldSize: W, shuffle, seed }
      const l = new DataLoader(opts), epoch = l.batchesPerPass, want = expected({ B, T, W, r, shuffle, seed }, 3 * epoch + 5)
      const states: LoaderState[] = []
      for (let i = 0; i < want.length; i++) {
        states.push(JSON.parse(JSON.stringify(l.state({ prints: true }))) as LoaderState)
        const b = l.next()
        assert.ok(shifted(b), 'targets are the inputs shifted by one')
        assert.deepEqual([...b.inputs, b.targets[b.targets.length - 1]!], want[i], `rank ${r} batch ${i}`)
      }
      for (const k of [0, 1, epoch - 1, epoch, epoch + 2, 2 * epoch + 1]) {
        for (const withPrints of [true, false]) {
          const s = { ...states[k]! }
          if (!withPrints) delete s.shards   // a checkpoint from before the fingerprints
          const m = new DataLoader(opts)
          got(m)
          m.restore(s)
          for (let i = k; i < Math.min(k + epoch + 2, want.length); i++) assert.deepEqual(got(m), want[i], `rank ${r} restored at ${k}, batch ${i}`)
          m.close()
        }
      }
      l.close()
    }
  })
}

test('ids are checked in the windows read: a bad one no batch reads is no error; one in a window is, with its place', () => {
  // 40 tokens, B=2 T=4: windows [0, 9) and [8, 17) ... 4 windows, the last ending at 33; tokens 33..39 are never read
  const path = join(dir, 'bad_train_000000.bin'), tokens = range(0, 40)
  tokens[38] = 60000
  writeShard(path, tokens)
  const l = new DataLoader({ files: [path], B: 2, T: 4 })
  for (let i = 0; i < 9; i++) l.next()   // over two passes
  l.close()
  tokens[38] = 38
  tokens[20] = 50257
  writeShard(path, tokens)
  const m = new DataLoader({ files: [path], B: 2, T: 4 })
  m.next()
  m.next()
  assert.throws(() => m.next(), (e: unknown) => e instanceof InputError &&
    e.message === `shards: ${path} has token id 50257 at position 20, outside the vocabulary of 50257 (corrupted shard or another tokenizer?)`)
  m.close()
  tokens[3] = 50300   // in the first batch: refused when the loader is made, before a run starts
  writeShard(path, tokens)
  assert.throws(() => new DataLoader({ files: [path], B: 2, T: 4 }), /has token id 50300 at position 3, outside the vocabulary/)
})

test('state({ prints }) fingerprints every shard (a plain state(), the per-step one, does not); shardChanges names one rewritten under its name (size, or sampled bytes)', () => {
  const big = join(dir, 'fp_train_000001.bin'), small = join(dir, 'fp_train_000002.bin')
  const bigTokens = Uint16Array.from({ length: 200_000 }, (_, i) => i % 50000)   // 400 KB: three 64 KiB samples
  writeShard(big, bigTokens)
  writeShard(small, range(0, 500))
  const l = new DataLoader({ files: [big, small], B: 2, T: 8 })
  assert.equal(l.state().shards, undefined, 'no fingerprint read for a position the trainer only rewinds to')
  const s = JSON.parse(JSON.stringify(l.state({ prints: true }))) as LoaderState
  assert.deepEqual(s.shards!.map(p => [p.name, p.bytes, /^[0-9a-f]{16}$/.test(p.sample)]),
    [['fp_train_000001.bin', 1024 + 400_000, true], ['fp_train_000002.bin', 1024 + 1000, true]])
  l.close()
  const changes = (): string[] => { const m = new DataLoader({ files: [big, small], B: 2, T: 8 }); const c = m.shardChanges(s); m.close(); return c }
  assert.deepEqual(changes(), [])
  assert.deepEqual(new DataLoader({ files: [big, small], B: 2, T: 8 }).shardChanges({ shard: 0, pos: 0 }), [], 'no fingerprints: nothing to say')
  const bytes = readFileSync(big)
  const middle = Buffer.from(bytes)
  middle[Math.floor(bytes.length / 2)]! ^= 1   // one bit in the middle sample
  writeFileSync(big, middle)
  const [c] = changes()
  assert.match(c!, /^fp_train_000001\.bin has other contents \(same size; sampled sha256 [0-9a-f]{16}, [0-9a-f]{16} then\)$/)
  assert.ok(c!.endsWith(`, ${s.shards![0]!.sample} then)`), c)
  writeFileSync(big, bytes)
  writeShard(small, range(0, 501))
  assert.deepEqual(changes(), ['fp_train_000002.bin has 2,026 bytes, 2,024 then'])
  writeShard(small, range(0, 500))
  assert.deepEqual(changes(), [])
  const m = new DataLoader({ files: [big, small], B: 2, T: 8 })
  assert.throws(() => m.restore({ ...s, shards: [{ name: 'x' }] as never }), /shards must be a list of \{"name", "bytes", "sample"\}/)
})

test('a shard deleted after the loader listed it: its fingerprint, as its open, is an InputError naming it as gone during the run', () => {
  const kept = join(dir, 'gone_train_000001.bin'), gone = join(dir, 'gone_train_000002.bin')
  writeShard(kept, range(0, 40))
  writeShard(gone, range(0, 40))
  const l = new DataLoader({ files: [kept, gone], B: 2, T: 8 })   // 2 windows in the first shard
  rmSync(gone)
  const missing = (e: unknown): boolean => e instanceof InputError &&
    /^shards: no such file: .*gone_train_000002\.bin \(deleted or moved during the run\?\)$/.test(e.message)
  assert.throws(() => l.state({ prints: true }), missing, 'the first checkpoint\'s fingerprints')
  l.next(); l.next()
  assert.throws(() => l.next(), missing, 'the next shard\'s open')
  l.close()
  // missing when the loader is made: a plain 'no such file' (it was never listed and measured)
  assert.throws(() => new DataLoader({ files: [kept, gone], B: 2, T: 8 }), (e: unknown) =>
    e instanceof InputError && /^shards: no such file: .*gone_train_000002\.bin$/.test(e.message))
})
