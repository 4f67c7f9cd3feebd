// The data loader against llm.c's semantics, with batches written out by hand: the exact sequence across a
// shard boundary and the wrap to the first shard, data-parallel striding, bit-exact state save/restore
// (plain and shuffled, also at a shard boundary), shuffle determinism and coverage, and its errors.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Rng } from '../../src/util/rng.js'
import { DataLoader, ReadAhead, type BatchSource, type LoaderState } from '../../src/data/loader.js'
import { writeShard } from '../../src/data/shards.js'
import { InputError } from '../../src/util/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'llmts-loader-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i)

// shard 0: tokens 0..17 (18 tokens), shard 1: 1000..1013 (14 tokens), shard 2: 2000..2024 (25 tokens)
const files = [[0, 18], [1000, 1014], [2000, 2025]].map(([a, b], i) => {
  const p = join(dir, `t_train_00000${i + 1}.bin`)
  writeShard(p, range(a!, b!))
  return p
})

const batches = (l: BatchSource, n: number): { inputs: number[]; targets: number[] }[] =>
  Array.from({ length: n }, () => { const b = l.next(); return { inputs: [...b.inputs], targets: [...b.targets] } })

test('exact batch sequence across shard boundaries and back to the first shard (B=2, T=3)', () => {
  const l = new DataLoader({ files: files.slice(0, 2), B: 2, T: 3 })
  // shard 0 has floor(17/6) = 2 windows (0, 6): a third at 12 would need token 18 as its last target.
  // shard 1 has floor(13/6) = 2 (0, 6); tokens 12..17 and 1012, 1013 are never inputs
  assert.deepEqual(batches(l, 5), [
    { inputs: [0, 1, 2, 3, 4, 5], targets: [1, 2, 3, 4, 5, 6] },
    { inputs: [6, 7, 8, 9, 10, 11], targets: [7, 8, 9, 10, 11, 12] },
    { inputs: [1000, 1001, 1002, 1003, 1004, 1005], targets: [1001, 1002, 1003, 1004, 1005, 1006] },
    { inputs: [1006, 1007, 1008, 1009, 1010, 1011], targets: [1007, 1008, 1009, 1010, 1011, 1012] },
    { inputs: [0, 1, 2, 3, 4, 5], targets: [1, 2, 3, 4, 5, 6] },
  ])
  const b = l.next()
  assert.ok(b.inputs instanceof Int32Array && b.targets instanceof Int32Array && b.inputs.length === 6)
  l.reset()
  assert.deepEqual([...l.next().inputs], [0, 1, 2, 3, 4, 5])
})

test('data-parallel striding: rank r starts at r·B·T and advances W·B·T; ranks switch shards together', () => {
  const cases: { W: number; B: number; T: number; rank1: number[][] }[] = [
    // rank 1 of 3, B=1: shard 0 windows of 6 at 0, 6 -> reads at 2, 8; shard 1 (2 windows) -> 1002, 1008; shard 2 (4 windows)
    { W: 3, B: 1, T: 2, rank1: [[2, 3], [8, 9], [1002, 1003], [1008, 1009], [2002, 2003], [2008, 2009], [2014, 2015], [2020, 2021], [2, 3]] },
    // rank 1 of 2, B=2 (the offset is r·B·T, not r·T): windows of 8: shard 0 at 0, 8; shard 1 at 0; shard 2 at 0, 8, 16
    { W: 2, B: 2, T: 2, rank1: [[4, 5, 6, 7], [12, 13, 14, 15], [1004, 1005, 1006, 1007], [2004, 2005, 2006, 2007],
      [2012, 2013, 2014, 2015], [2020, 2021, 2022, 2023], [4, 5, 6, 7]] },
  ]
  for (const { W, B, T, rank1 } of cases) {
    const ranks = (): DataLoader[] => range(0, W).map(rank => new DataLoader({ files, B, T, rank, worldSize: W }))
    assert.deepEqual(batches(ranks()[1]!, rank1.length).map(b => b.inputs), rank1, `W=${W} B=${B}`)
    // together the W ranks read exactly what one loader with B·W rows reads
    const single = new DataLoader({ files, B: B * W, T })
    const all = ranks()
    for (let step = 0; step < 25; step++) {
      const want = single.next()
      const got = all.map(r => r.next())
      assert.deepEqual(got.flatMap(g => [...g.inputs]), [...want.inputs], `W=${W} B=${B} step ${step}`)
      assert.deepEqual(got.flatMap(g => [...g.targets]), [...want.targets], `W=${W} B=${B} step ${step}`)
    }
  }
})

for (const shuffle of [false, true]) {
  test(`state() / restore() continue bit-exactly (shuffle ${shuffle}), also at a shard boundary`, () => {
    for (const k of [0, 1, 2, 4, 8, 13]) {
      const a = new DataLoader({ files, B: 2, T: 3, shuffle, seed: 5 })
      batches(a, k)
      const saved = JSON.parse(JSON.stringify(a.state())) as LoaderState
      const want = batches(a, 20)
      const b = new DataLoader({ files, B: 2, T: 3, shuffle, seed: 5 })
      batches(b, 2) // somewhere else entirely
      b.restore(saved)
      assert.deepEqual(batches(b, 20), want, `restored after ${k} batches`)
    }
  })
}

test('shuffle: deterministic per seed, different from the plain order, each epoch covers every window once', () => {
  const starts = (l: DataLoader, n: number): number[] => batches(l, n).map(b => b.inputs[0]!)
  const epoch = 2 + 2 + 4 // windows of 6 tokens in shards 0, 1, 2
  const a = starts(new DataLoader({ files, B: 2, T: 3, shuffle: true, seed: 1 }), 3 * epoch)
  assert.deepEqual(starts(new DataLoader({ files, B: 2, T: 3, shuffle: true, seed: 1 }), 3 * epoch), a)
  assert.notDeepEqual(starts(new DataLoader({ files, B: 2, T: 3, shuffle: true, seed: 2 }), 3 * epoch), a)
  const plain = starts(new DataLoader({ files, B: 2, T: 3 }), epoch)
  assert.notDeepEqual(a.slice(0, epoch), plain)
  for (let e = 0; e < 3; e++) assert.deepEqual([...a.slice(e * epoch, (e + 1) * epoch)].sort((x, y) => x - y),
    [...plain].sort((x, y) => x - y), `epoch ${e}`)
  const used = new DataLoader({ files, B: 2, T: 3, shuffle: true, seed: 1 })   // reset() is a fresh loader, shuffle included
  starts(used, epoch + 3)
  used.reset()
  assert.deepEqual(starts(used, 3 * epoch), a)
})

test('shuffle follows its spec: shard order drawn at start and again each epoch, each shard\'s windows drawn at load', () => {
  // the header's rule, driven by hand with the same seeded Rng: shards (first tokens 0, 1000, 2000) hold 2, 2
  // and 4 windows of 6 tokens
  const first = [0, 1000, 2000], windows = [2, 2, 4], rng = new Rng(11)
  const want: number[] = [], epochStarts: number[] = []
  const order = rng.shuffle([0, 1, 2])
  for (let e = 0; e < 10; e++) {
    epochStarts.push(order[0]!)
    for (const f of order) for (const w of rng.shuffle(range(0, windows[f]!))) want.push(first[f]! + 6 * w)
    rng.shuffle(order)
  }
  const l = new DataLoader({ files, B: 2, T: 3, shuffle: true, seed: 11 })
  assert.deepEqual(batches(l, want.length).map(b => b.inputs[0]!), want)
  assert.ok(new Set(epochStarts).size > 1, 'over 10 epochs the first shard changes')
})

test('loader errors are InputErrors naming the problem', () => {
  assert.throws(() => new DataLoader({ files: [files[1]!], B: 2, T: 7 }), (e: unknown) =>
    e instanceof InputError && /t_train_000002\.bin has 14 tokens, fewer than the 15 that one batch needs/.test(e.message))
  assert.throws(() => new DataLoader({ files, B: 1, T: 2, rank: 2, worldSize: 2 }), /rank must be in \[0, 2\)/)
  assert.throws(() => new DataLoader({ files: [], B: 1, T: 2 }), /no shard files/)
  const l = new DataLoader({ files, B: 2, T: 3 })
  assert.throws(() => l.restore({ shard: 0, pos: 5 }), /pos must be a multiple of W·B·T = 6/)
  assert.throws(() => l.restore({ shard: 7, pos: 0 }), /shard must be in \[0, 3\)/)
  assert.throws(() => l.restore(null as never), (e: unknown) => e instanceof InputError && /it must be an object/.test(e.message))
  assert.throws(() => l.restore({ shard: 0, pos: 0, order: [0, 1, 2], rng: [1, 2, 3, 4] }), /does not shuffle/)
  const s = new DataLoader({ files, B: 2, T: 3, shuffle: true })
  assert.throws(() => s.restore({ shard: 0, pos: 0, order: [0, 0, 1], rng: [1, 2, 3, 4] }), /order must be a permutation/)
})

test('ReadAhead serves the batches it read, then the loader after them; its states and restores are the plain loader\'s', () => {
  const plain = new DataLoader({ files, B: 2, T: 3 }), loader = new DataLoader({ files, B: 2, T: 3 })
  const ahead = new ReadAhead(loader, 3)
  assert.deepEqual(loader.state(), { shard: 1, pos: 6 }, 'the loader stands after the 3 batches read')
  assert.deepEqual(ahead.state(), plain.state(), 'the source: at the start')
  const want = batches(plain, 5)
  assert.deepEqual(batches(ahead, 5), want, 'the read batches, then the loader')
  ahead.restore({ shard: 0, pos: 0 })
  assert.deepEqual(batches(ahead, 5), want, 'once served, they are read again from the shards')
  const partway = new ReadAhead(new DataLoader({ files, B: 2, T: 3 }), 3)
  batches(partway, 2)
  assert.deepEqual(partway.state(), { shard: 0, pos: 12 }, 'a state taken partway: the position after 2 batches')
  assert.deepEqual(batches(partway, 3), want.slice(2))
})

// restore is atomic: each state is refused at restore's last check (pos, after shard, order, rng, shards passed;
// or the open of a shard deleted since), and the loader then reads what it would after the state A it stood at
test('a refused restore leaves the loader (and a ReadAhead) at the state it had', () => {
  const A = (() => { const l = new DataLoader({ files, B: 2, T: 3, shuffle: true, seed: 3 }); batches(l, 5); return l.state() })()
  const want = (() => { const l = new DataLoader({ files, B: 2, T: 3, shuffle: true, seed: 3 }); l.restore(A); return batches(l, 30) })()
  const other = { shard: 1, order: [...A.order!].reverse(), rng: [1, 2, 3, 4] as [number, number, number, number] }
  const l = new DataLoader({ files, B: 2, T: 3, shuffle: true, seed: 3 })
  l.restore(A)
  assert.throws(() => l.restore({ ...other, pos: 7 }), /pos must be a multiple of W·B·T = 6/)
  assert.deepEqual(batches(l, 30), want, 'after a refused pos (30 batches: over 3 epochs, so order and rng count)')

  const ahead = new ReadAhead(new DataLoader({ files, B: 2, T: 3, shuffle: true, seed: 3 }), 3)
  ahead.restore(ahead.state())   // A: the start, the read batches kept
  assert.throws(() => ahead.restore({ ...other, pos: 7 }), /pos must be a multiple/)
  assert.deepEqual(batches(ahead, 30), batches(new DataLoader({ files, B: 2, T: 3, shuffle: true, seed: 3 }), 30),
    'a ReadAhead keeps its read batches')
})

test('a restore to a shard deleted since is refused and leaves the loader at the state it had', () => {
  const own = mkdtempSync(join(dir, 'deleted-'))
  const copies = files.map((f, i) => { const p = join(own, `t_train_00000${i + 1}.bin`); copyFileSync(f, p); return p })
  const l = new DataLoader({ files: copies, B: 2, T: 3 })
  const want = (() => { const p = new DataLoader({ files: copies, B: 2, T: 3 }); batches(p, 1); return batches(p, 3) })()
  batches(l, 1)
  rmSync(copies[2]!)
  assert.throws(() => l.restore({ shard: 2, pos: 6 }), (e: unknown) => e instanceof InputError &&
    e.message.includes(`no such file: ${copies[2]}`))
  assert.deepEqual(batches(l, 3), want, 'shard 0\'s second window, then shard 1\'s two')
})
