// The DataLoader's open shard, counted in /proc/self/fd: one at most while batches are read over 100 shuffled shards,
// none after close() or a refused construction (no caller could close that one), and a closed loader reopens for
// next(), state() and restore() with the same batches. Also shardChanges with one name in two folders.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DataLoader, type LoaderState } from '../../src/data/loader.js'
import { listShards, writeShard } from '../../src/data/shards.js'
import { needsProcFd, openUnder } from '../helpers/fds.js'

const dir = mkdtempSync(join(tmpdir(), 'llmts-loader-close-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const ids = (n: number, salt: number): Uint16Array => Uint16Array.from({ length: n }, (_, i) => (i * 31 + salt) % 50257)

test('a loader refused at construction (a bad id in its first batch) leaves no shard open', needsProcFd, () => {
  const bad = join(dir, 'bad_train_000000.bin'), tokens = ids(100, 0)
  tokens[5] = 60000
  writeShard(bad, tokens)
  for (let i = 0; i < 3; i++) {
    assert.throws(() => new DataLoader({ files: [bad], B: 2, T: 8 }), /has token id 60000 at position 5, outside the vocabulary of 50257/)
  }
  assert.deepEqual(openUnder(dir), [])
})

test('100 shuffled shards over 3 epochs: one shard open at a time, none after close; a closed loader reads on as before', needsProcFd, () => {
  const sub = join(dir, 'many')
  mkdirSync(sub)
  const files = Array.from({ length: 100 }, (_, i) => {
    const p = join(sub, `m_train_${String(i).padStart(6, '0')}.bin`)
    writeShard(p, ids(40 + i, i))   // 2 to 8 windows of 17 tokens each: shards of different sizes
    return p
  })
  const opts = { files, B: 2, T: 8, shuffle: true, seed: 5 }
  const l = new DataLoader(opts), ref = new DataLoader(opts)
  const batch = (x: DataLoader): number[] => { const b = x.next(); return [...b.inputs, b.targets.at(-1)!] }
  let most = 0
  for (let i = 0; i < 3 * l.batchesPerPass; i++) {
    assert.deepEqual(batch(l), batch(ref), `batch ${i}`)
    if (i % 7 === 0) l.close()   // next() reopens
    most = Math.max(most, openUnder(sub).length)
  }
  assert.equal(most, 2, 'the two loaders, one shard each')
  l.close()
  const s = l.state() as LoaderState   // a closed loader's state and restore
  assert.equal(openUnder(sub).length, 1)
  l.restore(s)
  for (let i = 0; i < 20; i++) assert.deepEqual(batch(l), batch(ref), `after restore, batch ${i}`)
  l.close()
  ref.close()
  assert.deepEqual(openUnder(sub), [])
})

test('shardChanges pairs shards of one name in two folders (a glob over folders) in order: unchanged data, no change', () => {
  for (const [k, d] of ['a', 'b'].entries()) {
    mkdirSync(join(dir, d))
    writeShard(join(dir, d, 'x_train_000000.bin'), ids(500, 100 * k))
  }
  const files = listShards(join(dir, '*', 'x_train_000000.bin'))
  assert.deepEqual(files, ['a', 'b'].map(d => join(dir, d, 'x_train_000000.bin')))
  const l = new DataLoader({ files, B: 2, T: 8 })
  const s = JSON.parse(JSON.stringify(l.state({ prints: true }))) as LoaderState
  l.close()
  const changes = (): string[] => { const m = new DataLoader({ files, B: 2, T: 8 }); const c = m.shardChanges(s); m.close(); return c }
  assert.deepEqual(changes(), [])
  writeShard(files[1]!, ids(501, 100))
  assert.deepEqual(changes(), ['x_train_000000.bin has 2,026 bytes, 2,024 then'])
})
