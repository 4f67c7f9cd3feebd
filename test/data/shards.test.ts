// llm.c token shards: byte layout written by hand (header ints, little-endian uint16 tokens), write/read
// round trip, each validation error naming the file, atomic writes, and listShards' file/dir/glob rules.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { listShards, readShard, readShardHeader, writeShard } from '../../src/data/shards.js'
import { InputError } from '../../src/util/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'llmts-shards-'))
after(() => rmSync(dir, { recursive: true, force: true }))

/** A shard built byte by byte from the llm.c spec, independent of writeShard. */
function handMade(magic: number, version: number, ntok: number, tokens: number[]): Buffer {
  const b = Buffer.alloc(1024 + 2 * tokens.length)
  b.writeInt32LE(magic, 0)
  b.writeInt32LE(version, 4)
  b.writeInt32LE(ntok, 8)
  tokens.forEach((t, i) => b.writeUInt16LE(t, 1024 + 2 * i))
  return b
}

test('writeShard produces exactly the llm.c bytes and readShard reads them back', () => {
  const tokens = [50256, 0, 1, 258, 65535 - 15280, 50255]
  const p = join(dir, 'a.bin')
  writeShard(p, tokens)
  assert.deepEqual(readFileSync(p), handMade(20240520, 1, tokens.length, tokens))
  assert.deepEqual([...readShard(p)], tokens)
  writeShard(p, [Uint16Array.of(1, 2), Uint16Array.of(3)])
  assert.deepEqual([...readShard(p)], [1, 2, 3])
  assert.equal(readShardHeader(p).tokens, 3)
  writeShard(p, new Uint16Array(0))
  assert.equal(readShard(p).length, 0)
  assert.deepEqual(readdirSync(dir).filter(f => f.includes('tmp')), [], 'no temp files left')
})

test('readShard rejects bad shards with one message naming the file', () => {
  const cases: [string, Buffer, RegExp][] = [
    ['short.bin', Buffer.alloc(100), /short\.bin is truncated: 100 bytes/],
    ['magic.bin', handMade(1234, 1, 2, [1, 2]), /magic\.bin has magic 1234, expected 20240520 \(not an llm\.c token shard\?\)$/],
    ['text.txt', Buffer.from('First Citizen:\nBefore we proceed any further, hear me speak.\n'.repeat(30)),
      /text\.txt has magic \d+, expected 20240520 \(it looks like text: make token shards of it with llmts prepare .*text\.txt --out DIR\)$/],
    ['version.bin', handMade(20240520, 2, 2, [1, 2]), /version\.bin has version 2, expected 1/],
    ['trunc.bin', handMade(20240520, 1, 5, [1, 2]), /trunc\.bin header says 5 tokens \(1034 bytes\) but the file has 1028 bytes/],
    ['long.bin', handMade(20240520, 1, 1, [1, 2]), /long\.bin header says 1 tokens/],
    ['negative.bin', handMade(20240520, 1, -1, []), /negative\.bin header says -1 tokens/],
    ['vocab.bin', handMade(20240520, 1, 3, [1, 50257, 2]), /vocab\.bin has token id 50257 at position 1, outside the vocabulary of 50257/],
  ]
  for (const [name, bytes, re] of cases) {
    const p = join(dir, name)
    writeFileSync(p, bytes)
    assert.throws(() => readShard(p), (e: unknown) => e instanceof InputError && re.test(e.message) && !e.message.includes('\n'), name)
  }
  assert.throws(() => readShard(join(dir, 'missing.bin')), /no such file: .*missing\.bin/)
  assert.deepEqual([...readShard(join(dir, 'vocab.bin'), { vocabSize: 60000 })], [1, 50257, 2])
  assert.throws(() => readShard(join(dir, 'vocab.bin')), /50257 \(corrupted shard or another tokenizer\?\)$/)
  assert.throws(() => readShard(join(dir, 'vocab.bin'), { vocabSize: 100 }),   // a model's vocabulary, not GPT-2's
    /id 50257 at position 1, outside the vocabulary of 100 \(corrupted shard, another tokenizer, or a model whose vocabSize 100 is too small/)
})

test('writeShard refuses ids that do not fit in uint16 and leaves no file', () => {
  const p = join(dir, 'range.bin')
  for (const bad of [65536, -1, 1.5, NaN]) {
    assert.throws(() => writeShard(p, [7, bad]), new RegExp(`token ${bad} at position 1 does not fit in uint16`), String(bad))
    assert.deepEqual(readdirSync(dir).filter(f => f.includes('range')), [], String(bad))
  }
  writeShard(p, [0, 65535])
  assert.deepEqual([...readShard(p, { vocabSize: 65536 })], [0, 65535])
})

test('listShards: file, directory with split filter, glob, sorted, errors when empty', () => {
  const d = join(dir, 'ls')
  mkdirSync(d)
  for (const f of ['x_train_000002.bin', 'x_train_000001.bin', 'x_val_000000.bin', 'tiny_shakespeare_val.bin', 'notes.txt'])
    writeShard(join(d, f), [1])
  assert.deepEqual(listShards(d, 'train'), ['x_train_000001.bin', 'x_train_000002.bin'].map(f => join(d, f)))
  assert.deepEqual(listShards(d, 'val'), ['tiny_shakespeare_val.bin', 'x_val_000000.bin'].map(f => join(d, f)))
  assert.equal(listShards(d).length, 4)
  const bare = join(dir, 'ls-bare')   // shards named without a dataset prefix: train_000001.bin, val_000000.bin
  mkdirSync(bare)
  for (const f of ['train_000001.bin', 'val_000000.bin', 'trainer.bin']) writeShard(join(bare, f), [1])
  assert.deepEqual(listShards(bare, 'train'), [join(bare, 'train_000001.bin')])
  assert.deepEqual(listShards(bare, 'val'), [join(bare, 'val_000000.bin')])
  assert.deepEqual(listShards(join(d, 'x_*_00000[12].bin')), ['x_train_000001.bin', 'x_train_000002.bin'].map(f => join(d, f)))
  assert.deepEqual(listShards(join(d, 'x_val_000000.bin'), 'train'), [join(d, 'x_val_000000.bin')])
  assert.throws(() => listShards(join(d, 'nothing_*.bin')), /no files match .*nothing_\*\.bin/)
  assert.throws(() => listShards(join(dir, 'nope')), /no such file or directory/)
  const empty = join(dir, 'empty')
  mkdirSync(empty)
  assert.throws(() => listShards(empty, 'train'), /has no train shards/)
})

test('listShards refuses the shards of an unfinished prepare (NAME.incomplete without NAME.json), however they are named', () => {
  const d = join(dir, 'unfinished')
  mkdirSync(d)
  for (const f of ['a_train_000001.bin', 'a_val_000000.bin', 'b_train_000001.bin', 'llmc_shakespeare_val.bin']) writeShard(join(d, f), [1])
  writeFileSync(join(d, 'a.incomplete'), 'being written')
  const refused = new RegExp(`shards: ${d}/a_(train_000001|val_000000)\\.bin is part of an unfinished llmts prepare ` +
    `\\(${d}/a\\.incomplete exists, a\\.json does not\\)`)
  for (const spec of [d, join(d, 'a_train_000001.bin'), join(d, '*_train_*.bin')]) {
    assert.throws(() => listShards(spec, 'train'), (e: Error) => e instanceof InputError && refused.test(e.message), spec)
  }
  assert.throws(() => listShards(d, 'val'), refused)
  // another name's shards and a foreign (llm.c-named) shard are not affected
  assert.deepEqual(listShards(join(d, 'b_*.bin')), [join(d, 'b_train_000001.bin')])
  assert.deepEqual(listShards(join(d, 'llmc_shakespeare_val.bin')), [join(d, 'llmc_shakespeare_val.bin')])
  // a.json, written last by prepare, marks the output complete even if the marker was left (killed between the two)
  writeFileSync(join(d, 'a.json'), '{}')
  assert.equal(listShards(join(d, '*_train_*.bin'), 'train').length, 2)
})

test('listShards refuses a directory holding two datasets (they would be mixed unsaid); a glob mixes them on purpose', () => {
  const d = join(dir, 'two-datasets')   // prepare fineweb, then prepare fineweb --edu, into one --out
  mkdirSync(d)
  for (const f of ['fineweb_val_000000.bin', 'fineweb_train_000001.bin', 'edu_fineweb_val_000000.bin', 'edu_fineweb_train_000001.bin',
    'edu_fineweb_train_000002.bin']) writeShard(join(d, f), [1])
  for (const split of ['train', 'val', undefined] as const) {
    assert.throws(() => listShards(d, split), (e: Error) => e instanceof InputError && e.message ===
      `shards: directory ${d} holds the shards of 2 datasets (edu_fineweb, fineweb); name one with a glob, ` +
      `e.g. '${join(d, `edu_fineweb_${split ?? '*'}_*.bin`)}'`, String(split))
  }
  assert.deepEqual(listShards(join(d, 'edu_fineweb_train_*.bin'), 'train'), ['1', '2'].map(k => join(d, `edu_fineweb_train_00000${k}.bin`)))
  assert.equal(listShards(join(d, '*_train_*.bin'), 'train').length, 3)
  const one = join(dir, 'one-dataset')   // one dataset beside a file of another naming: no refusal
  mkdirSync(one)
  for (const f of ['x_train_000001.bin', 'x_val_000000.bin', 'tiny_shakespeare_val.bin']) writeShard(join(one, f), [1])
  assert.equal(listShards(one).length, 3)
})
