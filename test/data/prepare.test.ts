// prepare end to end (library level): shard contents equal [EOT, ...encode(doc)] per document split into val
// and train shards, for text, JSONL and Parquet inputs; identical bytes for 0, 1, 2 and 3 workers (Parquet row
// groups merged and split into tasks that the workers read themselves); huge documents cut without changing
// ids; llm.c's tinyshakespeare figures; ensureCorpus caching; bad inputs, from the main thread or a worker.

import { after, test } from 'node:test'
import { spawnSync } from 'node:child_process'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parquetWriteBuffer, parquetWriteFile } from 'hyparquet-writer'
import { prepare, type PrepareResult } from '../../src/data/prepare.js'
import { listShards, readShard, writeShard } from '../../src/data/shards.js'
import { ensureCorpus, openCorpus, splitTinyShakespeare } from '../../src/data/sources/corpora.js'
import { openInputs } from '../../src/data/sources/inputs.js'
import { documentsSource, MAX_PIECE_CHARS, type TextSource } from '../../src/data/sources/source.js'
import { encode, EOT } from '../../src/tokenizer.js'
import { InputError } from '../../src/util/errors.js'
import { makeDocs, parquetV1 } from './parquet-fixtures.js'

const dir = mkdtempSync(join(tmpdir(), 'llmts-prepare-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const tinyPath = resolve(process.cwd(), '../shared/data/tinyshakespeare.txt')

/** The expected token stream, built from the tokenizer alone. */
function stream(docs: string[]): number[] {
  return docs.flatMap(d => [EOT, ...encode(d)])
}

function readAll(r: PrepareResult): { val: number[]; train: number[][] } {
  return { val: r.val.flatMap(p => [...readShard(p)]), train: r.train.map(p => [...readShard(p)]) }
}

test('text, JSONL, NDJSON and Parquet documents land in val then train shards of shard-size tokens', async () => {
  const d = join(dir, 'in')
  mkdirSync(join(d, 'sub'), { recursive: true })
  const docs = ['First document.\nWith two lines.', 'Second: émoji 🎉 and <|endoftext|> as text', 'third', 'fourth one here',
    'fifth, from parquet', 'sixth 中文', 'seventh, NDJSON is JSONL', 'eighth']
  writeFileSync(join(d, 'a.txt'), docs[0]!)
  writeFileSync(join(d, 'sub', 'b.jsonl'), [JSON.stringify({ text: docs[1], id: 1 }), '', JSON.stringify({ text: docs[2] }) + '\r',
    JSON.stringify({ text: docs[3] })].join('\n') + '\n')
  parquetWriteFile({ filename: join(d, 'sub', 'c.parquet'), columnData: [{ name: 'id', data: [1, 2], type: 'INT32' },
    { name: 'text', data: [docs[4], docs[5]], type: 'STRING' }], rowGroupSize: 1 })
  // with a byte-order mark, as some Windows tools write one
  writeFileSync(join(d, 'sub', 'd.ndjson'), '\ufeff' + [JSON.stringify({ text: docs[6] }), JSON.stringify({ text: docs[7] })].join('\n'))
  writeFileSync(join(d, 'ignored.bin'), 'not a text input')
  const r = await prepare({ source: await openInputs([d]), outDir: join(dir, 'out1'), name: 'mix', valTokens: 7, shardSize: 10, workers: 1 })
  const want = stream(docs)
  const got = readAll(r)
  assert.deepEqual(got.val, want.slice(0, 7))
  assert.deepEqual(got.train.flat(), want.slice(7))
  assert.ok(got.train.slice(0, -1).every(s => s.length === 10) && got.train.at(-1)!.length <= 10)
  assert.deepEqual(r.train.map(p => p.split('/').pop()), got.train.map((_, i) => `mix_train_${String(i + 1).padStart(6, '0')}.bin`))
  assert.equal(r.val[0]!.split('/').pop(), 'mix_val_000000.bin')
  assert.equal(r.documents, 8)
  const meta = JSON.parse(readFileSync(r.meta, 'utf8'))
  assert.equal(meta.tokens, want.length)
  assert.equal(meta.valTokens, 7)
  assert.deepEqual(meta.inputs.map((p: string) => p.split('/').pop()), ['a.txt', 'b.jsonl', 'c.parquet', 'd.ndjson'])
})

test('output bytes are identical for 0, 1, 2 and 3 workers (many tasks, Parquet groups merged and split, documents cut into pieces)', async () => {
  const d = join(dir, 'big')
  mkdirSync(d)
  const moby = await openCorpus('moby-dick')
  const chapters: string[] = []
  for await (const p of moby.pieces()) chapters.push(p.text)
  const huge = chapters.slice(0, 70).join(' ')
  const rest = chapters.slice(70)
  assert.ok(huge.length > 2 * MAX_PIECE_CHARS, 'a document long enough to be cut')
  writeFileSync(join(d, 'huge.txt'), huge)
  writeFileSync(join(d, 'chapters.jsonl'), rest.map(text => JSON.stringify({ text })).join('\n'))
  const docs = makeDocs(3000, 11)
  writeFileSync(join(d, 'docs.parquet'), new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'text', data: docs, type: 'STRING' }],
    rowGroupSize: [3, 5, 7, 900, 1, 1200], pageSize: 4096 })))
  const outs: string[] = []
  for (const workers of [0, 1, 2, 3]) {
    const out = join(dir, `w${workers}`)
    const r = await prepare({ source: await openInputs([d], { sliceBytes: 20_000 }), outDir: out, name: 'm', valTokens: 1000,
      shardSize: 250_000, workers })
    assert.ok(r.train.length >= 3)
    outs.push(out)
  }
  const files = readdirSync(outs[0]!).sort()
  for (const out of outs.slice(1)) {
    assert.deepEqual(readdirSync(out).sort(), files)
    for (const f of files) assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(outs[0]!, f))), `${out}/${f}`)
  }
  const all = [...readShard(join(outs[0]!, 'm_val_000000.bin')),
    ...files.filter(f => f.includes('_train_')).flatMap(f => [...readShard(join(outs[0]!, f))])]
  assert.deepEqual(all, stream([...rest, ...docs, huge]), 'files in sorted order; the cut huge document equals one encode')
})

test('tinyshakespeare corpus reproduces llm.c: 32,768 val and 305,260 train tokens (66,560 and 611,544 bytes)', async t => {
  if (!existsSync(tinyPath)) { t.skip('../shared/data/tinyshakespeare.txt is absent'); return }
  const r = await prepare({ source: await openCorpus('tinyshakespeare', { tinyshakespearePath: tinyPath }), outDir: join(dir, 'tiny'),
    name: 'tiny_shakespeare', workers: 2 })
  assert.equal(r.valTokens, 32_768)
  assert.equal(r.trainTokens, 305_260)
  assert.equal(statSync(r.val[0]!).size, 66_560)
  assert.equal(statSync(r.train[0]!).size, 611_544)
  assert.deepEqual(splitTinyShakespeare('a\n\nb\n\n\nc\n\n'), ['a\n\n', 'b\n\n', '\nc\n\n', ''])
})

test('--val-tokens 0 writes no val shard (and removes an old one); a last train shard of one token is kept', async () => {
  const docs = ['one small document', 'and a second one, a little longer than the first']
  const want = stream(docs)
  const f = join(dir, 'noval.jsonl')
  writeFileSync(f, docs.map(text => JSON.stringify({ text })).join('\n'))
  const out = join(dir, 'noval')
  mkdirSync(out)
  writeShard(join(out, 'nv_val_000000.bin'), [1, 2, 3])   // an earlier prepare's val shard: stale now
  const r = await prepare({ source: await openInputs([f]), outDir: out, name: 'nv', valTokens: 0, shardSize: want.length - 1, workers: 0 })
  assert.deepEqual(r.val, [])
  assert.deepEqual(r.train.map(p => readShard(p).length), [want.length - 1, 1])
  assert.deepEqual(r.train.flatMap(p => [...readShard(p)]), want)
  assert.deepEqual(readdirSync(out).sort(), ['nv.json', 'nv_train_000001.bin', 'nv_train_000002.bin'])
  const meta = JSON.parse(readFileSync(r.meta, 'utf8'))
  assert.deepEqual([meta.val, meta.valTokens, meta.trainTokens, meta.tokens], [[], 0, want.length, want.length])
})

test('a second prepare into the same directory removes stale shards; NAME.json lists exactly the files', async () => {
  const out = join(dir, 'stale')
  mkdirSync(out)
  writeShard(join(out, 'x_train_000009.bin'), [1, 2])
  writeShard(join(out, 'other_train_000009.bin'), [1, 2])
  // temps a killed prepare left (its process is gone) go too; another name's and a live process's stay
  const dead = spawnSync(process.execPath, ['-e', '']).pid!
  const kept = [`.other_train_000001.bin.tmp-${dead}`, `.x_train_000002.bin.tmp-${process.ppid}`]
  const deadTemps = [`.x_train_000002.bin.tmp-${dead}`, `.x.json.tmp-${dead}`, `.x.incomplete.tmp-${dead}`]
  for (const n of [...deadTemps, ...kept]) writeFileSync(join(out, n), 'partial')
  const f = join(dir, 'one.txt')
  writeFileSync(f, 'just a little text for a test')
  const r = await prepare({ source: await openInputs([f]), outDir: out, name: 'x', valTokens: 2, workers: 0 })
  assert.deepEqual(readdirSync(out).sort(), [...kept, 'other_train_000009.bin', 'x.json', 'x_train_000001.bin', 'x_val_000000.bin'].sort())
  assert.deepEqual(JSON.parse(readFileSync(r.meta, 'utf8')).train, ['x_train_000001.bin'])
})

test('NAME.json that prepare did not write (a run\'s or a model\'s config.json) is refused, untouched; its own is replaced', async () => {
  const out = join(dir, 'holds-config')
  mkdirSync(out)
  const config = '{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}\n'
  writeFileSync(join(out, 'config.json'), config)
  writeFileSync(join(out, 'broken.json'), '{"format": ')
  const f = join(dir, 'config.txt')
  writeFileSync(f, 'a text whose default name would be config, and then some more words for training')
  for (const name of ['config', 'broken']) {
    await assert.rejects(prepare({ source: await openInputs([f]), outDir: out, name, valTokens: 2, workers: 0 }),
      (e: Error) => e instanceof InputError && e.message ===
        `prepare: ${join(out, name)}.json exists and is not an llmts prepare record (a model's or run's file?); ` +
        'the shards\' record would replace it: choose another --name or --out')
  }
  assert.deepEqual(readdirSync(out).sort(), ['broken.json', 'config.json'], 'nothing written')
  assert.equal(readFileSync(join(out, 'config.json'), 'utf8'), config)
  const first = await prepare({ source: await openInputs([f]), outDir: out, name: 'text', valTokens: 2, workers: 0 })
  const again = await prepare({ source: await openInputs([f]), outDir: out, name: 'text', valTokens: 3, workers: 0 })
  assert.equal(again.meta, first.meta)
  assert.equal(JSON.parse(readFileSync(again.meta, 'utf8')).valTokens, 3, 'a record of ours is replaced')
})

test('a failed prepare: before any shard, the old output stays complete; after one, NAME.incomplete until a re-run', async () => {
  const out = join(dir, 'midway')
  // 40 documents of ~16K characters: the pipeline hands on ~256K-character batches, so shards are written before doc 30
  const docs = Array.from({ length: 40 }, (_, i) => Array.from({ length: 4000 }, (_, j) => `w${(i * j) % 97}`).join(' '))
  const failing = (failAt: number): TextSource => documentsSource('test docs', ['mem'], function* () {
    for (const [i, d] of docs.entries()) {
      if (i === failAt) throw new Error('source failed')
      yield d
    }
  })
  const opts = { outDir: out, name: 'm', valTokens: 1000, shardSize: 20_000, workers: 0 }
  await prepare({ source: failing(-1), ...opts })
  const complete = new Map(readdirSync(out).map(f => [f, readFileSync(join(out, f))]))
  assert.ok(complete.has('m.json') && !complete.has('m.incomplete'), 'a complete prepare removes its marker')

  await assert.rejects(prepare({ source: failing(0), ...opts }), /source failed/)
  assert.deepEqual(new Map(readdirSync(out).map(f => [f, readFileSync(join(out, f))])), complete, 'nothing written, nothing lost')

  await assert.rejects(prepare({ source: failing(30), ...opts }), /source failed/)
  assert.ok(existsSync(join(out, 'm.incomplete')) && !existsSync(join(out, 'm.json')))
  const rewritten = readdirSync(out).filter(f => f.endsWith('.bin') && !readFileSync(join(out, f)).equals(complete.get(f)!))
  assert.ok(rewritten.length === 0, 'the same documents give the same shards')
  assert.throws(() => listShards(out, 'train'), /is part of an unfinished llmts prepare/)
  assert.throws(() => listShards(out, 'val'), /is part of an unfinished llmts prepare/)
  const r = await prepare({ source: failing(-1), ...opts })
  assert.deepEqual(listShards(out, 'train'), r.train)
  assert.deepEqual(readdirSync(out).filter(f => !f.endsWith('.bin')), ['m.json'])
})

test('ensureCorpus prepares once, reuses the shards, and prepares again when a shard is truncated or missing', async () => {
  const out = join(dir, 'cache', 'moby-dick')
  const a = await ensureCorpus('moby-dick', out, { workers: 1 })
  assert.equal(a.val.length, 1)
  assert.equal(a.train.length, 1)
  const mtime = statSync(a.train[0]!).mtimeMs
  const b = await ensureCorpus('moby-dick', out)
  assert.deepEqual(b, a)
  assert.equal(statSync(b.train[0]!).mtimeMs, mtime, 'not rewritten')
  const c = await ensureCorpus('moby-dick', out, { valTokens: 1000 })
  assert.equal(readShard(c.val[0]!).length, 1000, 'a different split is prepared again')
  // a cached shard that is truncated, or gone, makes the cache stale: the corpus is prepared again, byte for byte
  const trainBytes = readFileSync(c.train[0]!)
  const valBytes = readFileSync(c.val[0]!)
  truncateSync(c.train[0]!, trainBytes.length - 2)
  const d = await ensureCorpus('moby-dick', out, { valTokens: 1000 })
  assert.deepEqual(d, c)
  assert.ok(readFileSync(d.train[0]!).equals(trainBytes), 'a truncated train shard is written again')
  rmSync(d.val[0]!)
  const e = await ensureCorpus('moby-dick', out, { valTokens: 1000 })
  assert.deepEqual(e, c)
  assert.ok(existsSync(e.val[0]!) && readFileSync(e.val[0]!).equals(valBytes), 'a deleted val shard is written again')
  await assert.rejects(ensureCorpus('nope'), /unknown corpus "nope"/)
})

test('empty files among the inputs are skipped with a note; only empty files is an error', async () => {
  const d = mkdtempSync(join(tmpdir(), 'llmts-empty-'))
  writeFileSync(join(d, 'a.txt'), 'a document')
  writeFileSync(join(d, 'b.md'), '')
  writeFileSync(join(d, 'c.txt'), '')
  const notes: string[] = []
  const source = await openInputs([d], { note: line => notes.push(line) })
  assert.deepEqual(source.inputs, [join(d, 'a.txt')])
  assert.deepEqual(notes, [`prepare: skipping 2 empty files: ${join(d, 'b.md')}, ${join(d, 'c.txt')}`])
  const r = await prepare({ source, outDir: join(d, 'out'), name: 'e', valTokens: 0, workers: 0 })
  assert.equal(r.documents, 1)
  rmSync(d, { recursive: true, force: true })
})

test('bytes that are not UTF-8 are read as U+FFFD, with a note per file naming the count and the first bad byte', async () => {
  const d = mkdtempSync(join(tmpdir(), 'llmts-latin1-'))
  writeFileSync(join(d, 'a.txt'), Buffer.from('caf\xe9 na\xefve, \xa9 2024', 'latin1'))   // Latin-1: three bad bytes
  writeFileSync(join(d, 'b.txt'), 'plain UTF-8: café, and a real \ufffd')
  writeFileSync(join(d, 'c.jsonl'), Buffer.concat([Buffer.from('{"text": "a\xff"}\n', 'latin1'), Buffer.from('{"text": "ok"}\n')]))
  const notes: string[] = []
  const source = await openInputs([d], { note: line => notes.push(line) })
  const r = await prepare({ source, outDir: join(d, 'out'), name: 'l', valTokens: 0, workers: 0 })
  assert.equal(r.documents, 4)
  assert.deepEqual(notes, [
    `prepare: ${join(d, 'a.txt')}: 3 invalid UTF-8 sequences read as U+FFFD, the first at byte 3 (is the file in another encoding?)`,
    `prepare: ${join(d, 'c.jsonl')}: 1 invalid UTF-8 sequence read as U+FFFD, the first at byte 11 (is the file in another encoding?)`,
  ])
  // the tokens are those of the text with U+FFFD for each bad byte, as before the note
  const docs = ['caf\ufffd na\ufffdve, \ufffd 2024', 'plain UTF-8: café, and a real \ufffd', 'a\ufffd', 'ok']
  assert.deepEqual(Array.from(readShard(join(d, 'out', 'l_train_000001.bin'))), docs.flatMap(t => [EOT, ...encode(t)]))
  rmSync(d, { recursive: true, force: true })
})

test('Parquet values that are not UTF-8 are read as U+FFFD, with one note per file naming the count and the first row', async () => {
  const d = mkdtempSync(join(tmpdir(), 'llmts-latin1-pq-'))
  const bytes = (s: string): Uint8Array => Buffer.from(s, 'latin1')   // Latin-1: é, ï, © are one byte each, not UTF-8
  const rows = [Buffer.from('plain UTF-8: café'), bytes('caf\xe9'), Buffer.from('a real \ufffd, spelled'), bytes('na\xefve \xa9'),
    bytes('caf\xe9'), Buffer.from('ok')].map(b => new Uint8Array(b))   // row 4 repeats row 1: one dictionary entry, two rows
  for (const [name, encoding] of [['plain', 'PLAIN'], ['dict', undefined]] as const) {
    writeFileSync(join(d, `${name}.parquet`), new Uint8Array(parquetWriteBuffer({
      columnData: [{ name: 'text', data: rows, type: 'BYTE_ARRAY', ...(encoding !== undefined ? { encoding } : {}) }] })))
  }
  writeFileSync(join(d, 'clean.parquet'), new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'text', data: ['all good'], type: 'STRING' }] })))
  const docs = rows.map(b => new TextDecoder().decode(b))   // the WHATWG decoding: U+FFFD for each bad byte
  // files in name order: clean, dict, plain
  for (const workers of [0, 2]) {
    const notes: string[] = []
    const source = await openInputs([d], { note: line => notes.push(line) })
    const r = await prepare({ source, outDir: join(d, `out${workers}`), name: 'p', valTokens: 0, workers })
    assert.deepEqual(notes, ['dict', 'plain'].map(n => `prepare: ${join(d, `${n}.parquet`)}: 3 values of column "text" with invalid ` +
      'UTF-8 read as U+FFFD, the first in row 1 (is the column in another encoding?)'), `--workers ${workers}`)
    assert.deepEqual(Array.from(readShard(r.train[0]!)), ['all good', ...docs, ...docs].flatMap(t => [EOT, ...encode(t)]))
  }
  rmSync(d, { recursive: true, force: true })
})

test('bad inputs are one-line InputErrors and leave no shards', async () => {
  const d = join(dir, 'bad')
  mkdirSync(join(d, 'nothing'), { recursive: true })
  writeFileSync(join(d, 'nothing', 'x.bin'), 'x')
  writeFileSync(join(d, 'empty.txt'), '')
  writeFileSync(join(d, 'bad.jsonl'), '{"text": "ok"}\n{"text": broken}\n')
  writeFileSync(join(d, 'nofield.jsonl'), '{"text": "ok"}\n\n{"body": "x"}\n')
  writeFileSync(join(d, 'array.jsonl'), '{"text": "ok"}\n["x"]\n')
  writeFileSync(join(d, 'null.jsonl'), 'null\n')
  writeFileSync(join(d, 'blank.jsonl'), '\n  \n\n')
  writeFileSync(join(d, 'small.txt'), 'tiny')
  writeFileSync(join(d, 'fake.parquet'), 'PAR1 not really')
  parquetWriteFile({ filename: join(d, 'cols.parquet'),
    columnData: [{ name: 'body', data: ['a'], type: 'STRING' }, { name: 'n', data: [1], type: 'INT32' }] })
  const withNull: (string | null)[] = makeDocs(400, 2)
  withNull[321] = null
  writeFileSync(join(d, 'null.parquet'), parquetV1(withNull, { rowGroupSize: 100, pageSize: 1024, nullable: true }))
  const cases: [() => Promise<unknown>, RegExp][] = [
    [() => openInputs([join(d, 'missing.txt')]), /no such file or directory: .*missing\.txt/],
    [() => openInputs([join(d, 'empty.txt')]), /every input file is empty \(.*empty\.txt\)/],
    [() => openInputs([join(d, 'nothing')]), /directory .*nothing has no usable files/],
    [() => openInputs([join(d, '*.none')]), /no files match/],
    [() => openInputs([join(d, 'cols.parquet')]), /cols\.parquet has no column "text" \(columns: body, n;/],
    [() => openInputs([join(d, 'cols.parquet')], { textColumn: 'n' }), /column "n" holds INT32, expected strings/],
    [() => openInputs([join(d, 'fake.parquet')]), /fake\.parquet is not a readable Parquet file/],
    [async () => prepare({ source: await openInputs([join(d, 'bad.jsonl')]), outDir: join(d, 'o1'), name: 'b', workers: 0 }),
      /bad\.jsonl:2: invalid JSON/],
    [async () => prepare({ source: await openInputs([join(d, 'nofield.jsonl')]), outDir: join(d, 'o2'), name: 'b', workers: 1 }),
      /nofield\.jsonl:3: expected an object with a string "text" field, got no such field/],
    // a line that is not an object is named for what it is, not as an object without the field
    [async () => prepare({ source: await openInputs([join(d, 'array.jsonl')]), outDir: join(d, 'o7'), name: 'b', workers: 0 }),
      /array\.jsonl:2: expected an object with a string "text" field, got an array \(/],
    [async () => prepare({ source: await openInputs([join(d, 'null.jsonl')]), outDir: join(d, 'o7'), name: 'b', workers: 0 }),
      /null\.jsonl:1: expected an object with a string "text" field, got null \(/],
    // named by its path (the label "files: blank.jsonl" has only the base name)
    [async () => prepare({ source: await openInputs([join(d, 'blank.jsonl')]), outDir: join(d, 'o7'), name: 'b', workers: 0 }),
      new RegExp(`^prepare: ${join(d, 'blank.jsonl').replace(/[.]/g, '\\.')} holds no documents \\(only blank lines, or no rows\\?\\)$`)],
    [async () => prepare({ source: await openInputs([join(d, 'small.txt')]), outDir: join(d, 'o3'), name: 'b', workers: 0 }),
      /only 2 tokens, all taken by --val-tokens 32768/],
    ...['../x', '.x', '-x', '..', ''].map(name => [async () => prepare({ source: await openInputs([join(d, 'small.txt')]), outDir: join(d, 'o4'),
      name, workers: 0 }), /--name must be/] as [() => Promise<unknown>, RegExp]),
    ...[0, -1, 1.5].map(shardSize => [async () => prepare({ source: await openInputs([join(d, 'small.txt')]), outDir: join(d, 'o6'),
      name: 'b', shardSize, workers: 0 }), /shardSize must be in \[1, /] as [() => Promise<unknown>, RegExp]),
    [async () => prepare({ source: await openInputs([join(d, 'null.parquet')], { sliceBytes: 1 }), outDir: join(d, 'o5'), name: 'b',
      workers: 2 }), /null\.parquet: row 321 has no value in column "text", expected a string/],
  ]
  for (const [run, re] of cases) {
    await assert.rejects(run, (e: unknown) => e instanceof InputError && re.test(e.message) && !e.message.includes('\n'), String(re))
  }
  for (const o of ['o1', 'o2', 'o3', 'o5', 'o7']) assert.deepEqual(
    existsSync(join(d, o)) ? readdirSync(join(d, o)).filter(f => f.endsWith('.bin') || f.endsWith('.json')) : [], [], o)
})
