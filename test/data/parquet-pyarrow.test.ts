// Parquet files written by pyarrow — the library FineWeb's files come from — with FineWeb's columns
// (reference/parquet_fixtures.py): data page v1 + snappy in row groups of 7 (as FineWeb), page v2 + zstd +
// dictionaries, gzip + plain with several pages per row group. The texts pyarrow wrote (texts.json) are the truth:
// our reader returns them in order, and `prepare` (on the calling thread, and on 2 workers with the files cut
// into small page tasks) writes exactly EOT + encode(text) for each.

import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test } from 'node:test'
import { listShards, readShard } from '../../src/data/shards.js'
import { prepare } from '../../src/data/prepare.js'
import { openInputs } from '../../src/data/sources/inputs.js'
import { openParquet, parquetDocuments } from '../../src/data/sources/parquet.js'
import { encode, EOT } from '../../src/tokenizer.js'

const dir = resolve(process.cwd(), 'test/fixtures/parquet')
const { texts } = JSON.parse(readFileSync(join(dir, 'texts.json'), 'utf8')) as { texts: string[] }
const files = ['fineweb-v1-snappy', 'fineweb-v2-zstd', 'fineweb-gzip-plain'].map(f => join(dir, `${f}.parquet`))
const root = mkdtempSync(join(tmpdir(), 'llmts-pyarrow-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

const expected = (): number[] => texts.flatMap(t => [EOT, ...encode(t)])

for (const file of files) {
  test(`${file.split('/').pop()}: the documents pyarrow wrote, in order`, async () => {
    const docs: string[] = []
    for await (const d of parquetDocuments(await openParquet(file, 'text'), 'text', () => {})) docs.push(d)
    assert.equal(docs.length, texts.length)
    docs.forEach((d, i) => assert.equal(d, texts[i], `document ${i}`))
  })

  test(`${file.split('/').pop()}: prepare writes EOT + encode(text) per document, 0 and 2 workers`, async () => {
    for (const workers of [0, 2]) {
      const out = join(root, `${file.split('/').pop()}-${workers}`)
      const source = await openInputs([file], { sliceBytes: 2048 })   // several page tasks per file
      await prepare({ source, outDir: out, name: 'fw', workers, valTokens: 1000 })
      const got = [...listShards(out, 'val'), ...listShards(out, 'train')].flatMap(p => [...readShard(p)])
      assert.deepEqual(got, expected(), `${workers} workers`)
    }
  })
}
