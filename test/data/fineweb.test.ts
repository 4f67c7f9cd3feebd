// `prepare fineweb` end to end against a local fault-injecting hub: the shards equal, byte for byte, those
// `prepare` writes from the same Parquet files (val = first shard) and the token stream built from the
// tokenizer alone; identical for 0 and 2 workers; a run killed after every single shard still ends with the
// same bytes (resume points mid-task included); a resume point inside a document cut into pieces (as earlier
// versions wrote them) continues exactly; complete output is not redone; the disk-space check (which counts the
// bytes already downloaded); the CLI.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runPrepareFineweb } from '../../src/cli/prepare-fineweb.js'
import { localPath } from '../../src/io/hub/download.js'
import { finewebSpec, prepareFineweb, type FinewebOptions } from '../../src/data/fineweb/fineweb.js'
import { resumePath, tokenizeToShards, type ShardInput, type ShardsProgress } from '../../src/data/fineweb/tokenize.js'
import { prepare } from '../../src/data/prepare.js'
import { readShard, readShardHeader } from '../../src/data/shards.js'
import { openCorpus } from '../../src/data/sources/corpora.js'
import { openInputs } from '../../src/data/sources/inputs.js'
import { documentPieces, MAX_PIECE_CHARS } from '../../src/data/sources/source.js'
import { encode, EOT } from '../../src/tokenizer.js'
import { InputError } from '../../src/util/errors.js'
import { parquetOf, startFaultServer, type FaultServer, type ServedFile } from '../helpers/http-fault-server.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-fineweb-'))
const spec = finewebSpec()
const SHARD = 20_000
const fast = { backoffMs: 1, maxBackoffMs: 5, maxRetries: 4, idleTimeoutMs: 5000 }
let docs: string[] = []
let files: ServedFile[] = []
let server: FaultServer
let reference = ''     // prepare's output directory for the same files

before(async () => {
  const moby = await openCorpus('moby-dick')
  const chapters: string[] = []
  for await (const p of moby.pieces()) chapters.push(p.text)
  const paragraphs = chapters.slice(0, 40).flatMap(c => c.split('\n\n')) // many short documents, some empty
  const huge = chapters.slice(40, 110).join('\n')                         // one document cut into several pieces
  assert.ok(huge.length > 2 * MAX_PIECE_CHARS)
  const parts = [paragraphs.slice(0, 400), [...paragraphs.slice(400, 500), huge, ...paragraphs.slice(500, 700)], paragraphs.slice(700)]
  assert.ok(parts[2]!.length > 100)
  docs = parts.flat()
  files = parts.map((d, i) => ({ path: `${spec.dir}/${String(i).padStart(3, '0')}_00000.parquet`, data: parquetOf(d, 128) }))
  files[0]!.faults = { status: [500] }
  files[1]!.faults = { cutAfter: [Math.floor(files[1]!.data.length / 2)] }
  server = await startFaultServer({ repo: spec.repo, dir: spec.dir, files, lifetimeMs: 120_000 })
})
after(async () => {
  await server?.close()
  rmSync(root, { recursive: true, force: true })
})

function options(name: string, extra: Partial<FinewebOptions> = {}): FinewebOptions {
  return { outDir: join(root, name), cacheDir: join(root, 'cache'), baseUrl: server.baseUrl, shardSize: SHARD, workers: 2,
    downloadWorkers: 2, http: fast, ...extra }
}

function binFiles(dir: string): string[] {
  return readdirSync(dir).filter(f => f.endsWith('.bin')).sort()
}

function assertSameShards(dir: string, want: string): void {
  assert.deepEqual(binFiles(dir), binFiles(want))
  for (const f of binFiles(want)) assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(want, f))), `${dir}/${f} differs from ${want}/${f}`)
}

test('download + tokenize equals prepare of the same files and the tokenizer\'s own stream', async () => {
  let last: ShardsProgress | undefined
  const r = await prepareFineweb(options('full', { onTokenizeProgress: p => { last = p } }))
  const local = files.map(f => localPath(r.cacheDir, { path: f.path, size: 0 }))
  local.forEach((p, i) => assert.ok(readFileSync(p).equals(files[i]!.data)))
  assert.equal(existsSync(join(r.cacheDir, spec.dir, '.download.lock')), false, 'the cache lock is released')
  assert.equal(server.cdnRequests(files[0]!.path)[0]!.status, 500, 'the 500 was retried')
  assert.equal(server.cdnRequests(files[1]!.path)[1]!.range?.startsWith('bytes='), true, 'the cut file resumed')
  reference = join(root, 'reference')
  await prepare({ source: await openInputs(local), outDir: reference, name: 'fineweb', valTokens: SHARD, shardSize: SHARD, workers: 1 })
  assertSameShards(join(root, 'full'), reference)

  const stream = docs.flatMap(d => [EOT, ...encode(d)])
  const s = r.shards!
  assert.equal(s.tokens, stream.length)
  assert.equal(s.documents, docs.length)
  assert.ok(s.train.length >= 8, `${s.train.length} train shards`)
  assert.deepEqual([...s.val, ...s.train].flatMap(p => [...readShard(p)]), stream)
  assert.ok([...s.val, ...s.train.slice(0, -1)].every(p => readShard(p).length === SHARD))
  assert.equal(s.val[0]!.split('/').pop(), 'fineweb_val_000000.bin')
  assert.equal(s.train[0]!.split('/').pop(), 'fineweb_train_000001.bin')
  const meta = JSON.parse(readFileSync(join(root, 'full', 'fineweb.json'), 'utf8'))
  assert.deepEqual(meta.inputs, files.map(f => f.path))
  assert.equal(meta.valTokens, SHARD)
  assert.ok(!existsSync(resumePath(join(root, 'full'), 'fineweb')))
  // the last progress report is the end state: every shard, the short last one included
  assert.deepEqual([last?.shards, last?.tokens, last?.bytes], [s.val.length + s.train.length, stream.length, last?.totalBytes])
})

test('a second run finds the output complete: no request, no shard rewritten', async () => {
  const before = server.requests.length
  const mtimes = binFiles(join(root, 'full')).map(f => statSync(join(root, 'full', f)).mtimeMs)
  const r = await prepareFineweb(options('full'))
  assert.equal(server.requests.length, before)
  assert.equal(r.shards!.resumedShards, mtimes.length)
  assert.deepEqual(binFiles(join(root, 'full')).map(f => statSync(join(root, 'full', f)).mtimeMs), mtimes)
})

test('killed after every batch that completes a shard, resumed each time (alternating 0 and 2 workers): the same bytes', async () => {
  const out = join(root, 'killed')
  const inputs: ShardInput[] = files.map(f => ({ label: f.path, size: f.data.length,
    ready: async () => localPath(join(root, 'cache'), { path: f.path, size: 0 }) }))
  const points: { piece: number; skip: number }[] = []
  let shardTimes: number[] = []
  let kept = 0
  for (let run = 0; ; run++) {
    assert.ok(run < 40, 'bounded: at least one new shard per run')
    const stop = new AbortController()
    try {
      const r = await tokenizeToShards({ inputs, outDir: out, name: 'fineweb', source: 'test', shardSize: SHARD,
        workers: run % 2 === 0 ? 0 : 2, signal: stop.signal,
        onProgress: p => { if (p.shards > kept) stop.abort(new Error('killed')) } })
      assert.equal(r.resumedShards, kept)
      break
    } catch (e) {
      assert.equal((e as Error).message, 'killed')
    }
    const state = JSON.parse(readFileSync(resumePath(out, 'fineweb'), 'utf8'))
    assert.ok(state.shards.length > kept, 'progress in every run')
    points.push(state.next)
    const times = state.shards.slice(0, kept).map((f: string) => statSync(join(out, f)).mtimeMs)
    assert.deepEqual(times, shardTimes, 'complete shards are kept, not rewritten')
    shardTimes = state.shards.map((f: string) => statSync(join(out, f)).mtimeMs)
    kept = state.shards.length
  }
  assertSameShards(out, reference)
  assert.ok(points.some(p => p.skip > 0), 'a resume in the middle of a task')
})

test('a resume point inside a document cut into pieces continues with the same bytes', async () => {
  const hugeIndex = 500 // file 1, row 100
  const pieces = [...documentPieces(docs[hugeIndex]!)]
  assert.ok(pieces.length >= 3)
  let at = docs.slice(0, hugeIndex).reduce((n, d) => n + 1 + encode(d).length, 0)
  const starts = pieces.map((p, i) => { const s = at; at += (i === 0 ? 1 : 0) + encode(p.text).length; return s })
  const k = Math.ceil((starts[1]! + 1) / SHARD)                 // the first shard boundary inside piece 1 or later
  const piece = starts.filter(s => s <= k * SHARD).length - 1
  assert.ok(piece >= 1 && k * SHARD < at, 'the boundary lies inside the cut document')
  const out = join(root, 'resume-piece')
  mkdirSync(out)
  const names = binFiles(reference).sort((a, b) => Number(a.slice(-10, -4)) - Number(b.slice(-10, -4))).slice(0, k)
  for (const f of names) copyFileSync(join(reference, f), join(out, f))
  const inputs: ShardInput[] = files.map(f => ({ label: f.path, size: f.data.length,
    ready: async () => localPath(join(root, 'cache'), { path: f.path, size: 0 }) }))
  const state = { version: 1, name: 'fineweb', shardSize: SHARD, inputs: inputs.map(x => ({ label: x.label, size: x.size })), shards: names,
    next: { file: 1, row: 100, piece, skip: k * SHARD - starts[piece]! }, documents: hugeIndex + 1 }
  writeFileSync(resumePath(out, 'fineweb'), JSON.stringify(state))
  const r = await tokenizeToShards({ inputs, outDir: out, name: 'fineweb', source: 'test', shardSize: SHARD, workers: 2 })
  assert.equal(r.resumedShards, k)
  assert.equal(r.documents, docs.length)
  assertSameShards(out, reference)
})

test('an unfinished run resumed with another --shard-size is made again, with a note saying why', async () => {
  const out = join(root, 'other-size')
  const inputs: ShardInput[] = files.map(f => ({ label: f.path, size: f.data.length,
    ready: async () => localPath(join(root, 'cache'), { path: f.path, size: 0 }) }))
  const stop = new AbortController(), notes: string[] = []
  const run = (shardSize: number, signal?: AbortSignal): ReturnType<typeof tokenizeToShards> => tokenizeToShards({ inputs, outDir: out,
    name: 'fineweb', source: 'test', shardSize, workers: 0, onNote: n => notes.push(n), ...(signal ? { signal } : {}),
    onProgress: p => { if (p.shards >= 2) stop.abort(new Error('killed')) } })
  await assert.rejects(run(SHARD, stop.signal), /killed/)
  const kept = JSON.parse(readFileSync(resumePath(out, 'fineweb'), 'utf8')).shards.length
  assert.ok(kept >= 2)
  assert.deepEqual(notes, [], 'no note while nothing is dropped')
  const r = await run(2 * SHARD)
  assert.equal(r.resumedShards, 0)
  assert.deepEqual(notes, [`fineweb: ${resumePath(out, 'fineweb')} is an unfinished run with --shard-size ${SHARD}; its ${kept} shards ` +
    `are made again with --shard-size ${2 * SHARD} (give --shard-size ${SHARD} to continue it instead)`])
  assert.equal(readShardHeader(r.val[0]!).tokens, 2 * SHARD)
})

test('not enough disk space is an InputError before any download', async () => {
  const before = server.requests.filter(r => r.url.startsWith('/cdn/')).length
  const tiny = (): { bavail: number; bsize: number } => ({ bavail: 10, bsize: 4096 })
  await assert.rejects(prepareFineweb(options('nospace', { cacheDir: join(root, 'cache2'), statfs: tiny })),
    (e: Error) => e instanceof InputError && /not enough disk space on .*need about .* for downloads.*41\.0 kB free/.test(e.message))
  assert.equal(server.requests.filter(r => r.url.startsWith('/cdn/')).length, before)
})

test('the disk-space check counts what is already downloaded: a resume needs only the rest', async () => {
  const cacheDir = join(root, 'cache3')
  const [done, half] = [files[0]!, files[1]!]
  const at = (f: ServedFile): string => localPath(cacheDir, { path: f.path, size: 0 })
  mkdirSync(join(at(done), '..'), { recursive: true })
  writeFileSync(at(done), done.data)                                   // complete
  writeFileSync(`${at(half)}.part`, half.data.subarray(0, 10_000))    // 10,000 bytes of the second file
  const rest = files.reduce((n, f) => n + f.data.length, 0) - done.data.length - 10_000
  let seen: { needBytes: number; freeBytes: number } | undefined
  const exact = (): { bavail: number; bsize: number } => ({ bavail: rest, bsize: 1 })   // free: exactly the rest
  const from = server.requests.length
  await prepareFineweb(options('resume-space', { cacheDir, downloadOnly: true, statfs: exact, onManifest: (_, i) => { seen = i } }))
  assert.deepEqual(seen && [seen.needBytes, seen.freeBytes], [rest, rest])
  for (const f of files) assert.ok(readFileSync(at(f)).equals(f.data), `${f.path} downloaded intact`)
  const fetched = server.requests.slice(from).filter(r => r.url.startsWith('/cdn/') && r.status < 300)
  assert.deepEqual(fetched.map(r => [decodeURIComponent(r.url.slice(5).split('?')[0]!), r.range]),
    [[half.path, 'bytes=10000-'], [files[2]!.path, undefined]], 'only the rest was fetched')
})

test('CLI: flags reach the pipeline; bad flags are one-line InputErrors', async () => {
  let out = ''
  const code = await runPrepareFineweb(['--base-url', server.baseUrl, '--cache', join(root, 'cache'), '--out', join(root, 'cli'),
    '--shard-size', String(SHARD), '--workers', '1', '--json'],
    { write: (s: string) => { out += s } })
  assert.equal(code, 0)
  assert.equal(JSON.parse(out).shards.tokens, docs.flatMap(d => [EOT, ...encode(d)]).length)
  assertSameShards(join(root, 'cli'), reference)
  let text = ''   // the human summary counts its nouns ("1 workers" before)
  await runPrepareFineweb(['--base-url', server.baseUrl, '--cache', join(root, 'cache'), '--out', join(root, 'cli-text'),
    '--shard-size', String(SHARD), '--workers', '1'], { write: (s: string) => { text += s } })
  assert.match(text, / tokens\/s with 1 worker\)\n/)
  await assert.rejects(runPrepareFineweb(['--size', '7B', '--out', 'x']), /--size expects one of 10B, 100B, got "7B"/)
  await assert.rejects(runPrepareFineweb(['--base-url', server.baseUrl]), /--out DIR is required/)
  let listed = ''   // --download-only needs no --out: it writes no shards
  assert.equal(await runPrepareFineweb(['--base-url', server.baseUrl, '--cache', join(root, 'cache'), '--download-only'],
    { write: (s: string) => { listed += s } }), 0)
  assert.equal(listed, `fineweb: ${files.length} Parquet files in ${join(root, 'cache')}\n`)
  await assert.rejects(runPrepareFineweb(['--out', 'x', '--base-url', 'ftp://x']), /must be http or https/)
})

test('CLI: the note that an unfinished run with another --shard-size is made again reaches stderr', async () => {
  const out = join(root, 'cli-other-size')
  const inputs: ShardInput[] = files.map(f => ({ label: f.path, size: f.data.length,
    ready: async () => localPath(join(root, 'cache'), { path: f.path, size: 0 }) }))
  const stop = new AbortController()
  await assert.rejects(tokenizeToShards({ inputs, outDir: out, name: 'fineweb', source: 'test', shardSize: SHARD, workers: 0,
    signal: stop.signal, onProgress: p => { if (p.shards >= 2) stop.abort(new Error('killed')) } }), /killed/)
  let stderr = ''
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((s: string) => { stderr += s; return true }) as typeof process.stderr.write
  try {
    assert.equal(await runPrepareFineweb(['--base-url', server.baseUrl, '--cache', join(root, 'cache'), '--out', out,
      '--shard-size', String(2 * SHARD), '--workers', '0', '--json'], { write: () => {} }), 0)
  } finally { process.stderr.write = write }
  assert.match(stderr, new RegExp(`^llmts prepare fineweb: .+ is an unfinished run with --shard-size ${SHARD}; .+ made again with --shard-size ${2 * SHARD} `, 'm'))
})
