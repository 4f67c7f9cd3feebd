// Parquet tasks (src/data/sources/parquet.ts): planParquet merges small row groups and splits large ones at
// page boundaries, and the documents read back from the tasks are exactly the documents written (the truth),
// for v2 pages (hyparquet-writer: snappy, with and without a dictionary) and v1 pages (pyarrow's default, built
// by parquet-fixtures.ts: required + snappy, optional + uncompressed), from any resume row; split tasks tile the
// column chunk exactly (each page read once); bad rows and pages are InputErrors naming the file and rows.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parquetHeader } from 'hyparquet/src/column.js'
import { parquetWriteBuffer } from 'hyparquet-writer'
import { openParquet, parquetDocuments, planParquet, readTask, type ParquetTask } from '../../src/data/sources/parquet.js'
import { InputError } from '../../src/util/errors.js'
import { makeDocs, parquetV1 } from './parquet-fixtures.js'

const dir = mkdtempSync(join(tmpdir(), 'llmts-parquet-'))
after(() => rmSync(dir, { recursive: true, force: true }))

interface Variant { name: string; docs?: (docs: string[]) => string[]; bytes: (docs: string[]) => Uint8Array }

/** 300 distinct values of ~100 characters: a dictionary larger than a slice, pages of a few dozen rows. */
const fewDistinct = (docs: string[]): string[] => docs.map((_, i) => `value ${(i * 7) % 300}: ${'Queequeg é '.repeat(9)}`)

const GROUPS = [3, 5, 7, 600, 2, 1, 900]   // small groups (merged), large ones (split), then 900 each
const PAGE = 4096
const variants: Variant[] = [
  { name: 'v2 snappy', bytes: d => new Uint8Array(parquetWriteBuffer({
    columnData: [{ name: 'id', data: d.map((_, i) => i), type: 'INT32' }, { name: 'text', data: d, type: 'STRING' }],
    rowGroupSize: GROUPS, pageSize: PAGE })) },
  { name: 'v2 dictionary', docs: fewDistinct, bytes: d => new Uint8Array(parquetWriteBuffer({
    columnData: [{ name: 'text', data: d, type: 'STRING', encoding: 'RLE_DICTIONARY' }], rowGroupSize: GROUPS, pageSize: 64 })) },
  { name: 'v1 required snappy', bytes: d => parquetV1(d, { rowGroupSize: 600, pageSize: PAGE, nullable: false }) },
  { name: 'v1 optional uncompressed', bytes: d => parquetV1(d, { rowGroupSize: 600, pageSize: PAGE, nullable: true }) },
]

async function tasksOf(path: string, opts: { sliceBytes: number; fromRow?: number; fromPiece?: number }): Promise<ParquetTask[]> {
  const pq = await openParquet(path, 'text')
  try {
    const out: ParquetTask[] = []
    for await (const t of planParquet(pq, 'text', opts)) out.push(t)
    return out
  } finally {
    await pq.close()
  }
}

async function docsOf(path: string, tasks: ParquetTask[]): Promise<{ row: number; text: string }[]> {
  const pq = await openParquet(path, 'text')
  try {
    const out: { row: number; text: string }[] = []
    for (const t of tasks) for await (const d of readTask(pq.file, t)) out.push(d)
    return out
  } finally {
    await pq.close()
  }
}

for (const v of variants) {
  test(`${v.name}: tasks give back every document, in order, from any row; large row groups are split at page boundaries`, async () => {
    const docs = (v.docs ?? (d => d))(makeDocs(2500, 7))
    const path = join(dir, `${v.name.replace(/ /g, '-')}.parquet`)
    writeFileSync(path, v.bytes(docs))
    const sliceBytes = 20_000
    const tasks = await tasksOf(path, { sliceBytes })
    const got = await docsOf(path, tasks)
    assert.deepEqual(got.map(d => d.text), docs)
    assert.deepEqual(got.map(d => d.row), docs.map((_, i) => i))
    assert.ok(tasks.length >= 8, `${tasks.length} tasks`)
    if (!v.name.startsWith('v1')) assert.ok(tasks[0]!.parts.length >= 3, 'the small leading row groups share one task')
    // a split group's parts read disjoint page ranges that tile its column chunk (no page is read twice)
    const pq = await openParquet(path, 'text')
    let groupStart = 0
    let splitGroups = 0
    let dictionaryParts = 0
    for (const g of pq.metadata.row_groups) {
      const md = g.columns.find(c => c.meta_data?.path_in_schema[0] === 'text')!.meta_data!
      const parts = tasks.flatMap(t => t.parts).filter(p => p.rows[0] >= groupStart && p.rows[1] <= groupStart + Number(g.num_rows))
      if (parts.length > 1) {
        const start = Number(md.dictionary_page_offset || md.data_page_offset), end = start + Number(md.total_compressed_size)
        const first = parquetHeader({ view: new DataView(await pq.file.slice(Number(md.data_page_offset), end)), offset: 0 })
        assert.equal(first.type, v.name.startsWith('v1') ? 'DATA_PAGE' : 'DATA_PAGE_V2')
        const dataRanges = parts.map(p => p.ranges.at(-1)!) // the first part's starts with the dictionary page, if any
        assert.equal(dataRanges[0]![0], start)
        for (let i = 1; i < dataRanges.length; i++) assert.equal(dataRanges[i]![0], dataRanges[i - 1]![1], 'contiguous pages')
        assert.equal(dataRanges.at(-1)![1], end)
        for (const p of parts) if (p.ranges.length > 1) { dictionaryParts++; assert.equal(p.ranges[0]![0], start, 'the dictionary page comes along') }
        splitGroups++
      }
      groupStart += Number(g.num_rows)
    }
    await pq.close()
    assert.ok(splitGroups >= 2, `${splitGroups} row groups split`)
    assert.equal(dictionaryParts > 0, v.name.includes('dictionary'))
    for (const fromRow of [1, 4, 611, 1000, 2499]) {
      const from = await docsOf(path, await tasksOf(path, { sliceBytes, fromRow }))
      assert.deepEqual(from.map(d => d.text), docs.slice(fromRow), `from row ${fromRow}`)
    }
  })
}

test('one task per row group of at most sliceBytes; a resume piece is carried by the first task only', async () => {
  const docs = makeDocs(300, 3)
  const path = join(dir, 'plain.parquet')
  writeFileSync(path, new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'text', data: docs, type: 'STRING' }], rowGroupSize: 100 })))
  const whole = await tasksOf(path, { sliceBytes: 1 << 30 })
  assert.equal(whole.length, 1)
  assert.deepEqual(whole[0]!.parts.map(p => p.rows), [[0, 100], [100, 200], [200, 300]])
  const resumed = await tasksOf(path, { sliceBytes: 1, fromRow: 150, fromPiece: 2 })
  assert.deepEqual(resumed.map(t => [t.parts.map(p => p.rows), t.firstPiece]), [[[[150, 200]], 2], [[[200, 300]], 0]])
  let bytes = 0
  for await (const _ of parquetDocuments(await openParquet(path, 'text'), 'text', n => { bytes += n })) { /* count */ }
  assert.ok(bytes > 0)
})

test('a null text and a corrupt page are InputErrors naming the file and the rows, when planning or reading', async () => {
  const docs: (string | null)[] = makeDocs(800, 5)
  docs[523] = null
  const nulls = join(dir, 'nulls.parquet')
  writeFileSync(nulls, parquetV1(docs, { rowGroupSize: 800, pageSize: PAGE, nullable: true }))
  const isOneLine = (re: RegExp) => (e: unknown) => e instanceof InputError && re.test(e.message) && !e.message.includes('\n')
  await assert.rejects(docsOf(nulls, await tasksOf(nulls, { sliceBytes: 10_000 })),
    isOneLine(/nulls\.parquet: row 523 has no value in column "text", expected a string/))

  const good = parquetV1(makeDocs(800, 6), { rowGroupSize: 800, pageSize: PAGE, nullable: false })
  const goodPath = join(dir, 'good.parquet')
  writeFileSync(goodPath, good)
  const victim = (await tasksOf(goodPath, { sliceBytes: 10_000 }))[2]!.parts[0]!
  const bad = Uint8Array.from(good)
  bad.fill(0xff, victim.ranges[0]![0], victim.ranges[0]![0] + 8) // the first page header of the third slice
  const corrupt = join(dir, 'corrupt.parquet')
  writeFileSync(corrupt, bad)
  // split: the page headers are read when planning; whole: the pages are checked when the task is read
  await assert.rejects(tasksOf(corrupt, { sliceBytes: 10_000 }),
    isOneLine(/corrupt\.parquet: rows 0\.\.799: cannot read the page headers \(.* at byte \d+\)/))
  const whole = await tasksOf(corrupt, { sliceBytes: 1 << 30 })
  await assert.rejects(docsOf(corrupt, whole), isOneLine(/corrupt\.parquet: cannot read rows 0\.\.799 \(.* at byte \d+\)/))
})
