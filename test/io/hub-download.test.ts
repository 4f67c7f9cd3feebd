// Hub downloads (FineWeb's listing and files) against a local fault-injecting hub
// (test/helpers/http-fault-server.ts): listing with pagination and HF_TOKEN, redirects, a connection cut mid-file
// resumed by Range (not restarted), however often it is cut if each try brings new bytes; 500s and 429s retried
// (Retry-After in seconds), 401/403/404 clear errors; truncated files detected (by size, by a resume's
// Content-Range total or 416, and by the Parquet footer), a slow server's progress, manifest reuse. Every
// downloaded file is compared byte for byte with what the server holds.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { downloadAll, localPath, type DownloadProgress } from '../../src/io/hub/download.js'
import { finewebSpec } from '../../src/data/fineweb/fineweb.js'
import { fileUrl, loadManifest, manifestPath, type RemoteFile } from '../../src/io/hub/hub.js'
import type { RetryOptions } from '../../src/io/hub/http.js'
import { InputError } from '../../src/util/errors.js'
import { OutOfSpaceError } from '../../src/util/atomic.js'
import { parquetOf, startFaultServer, type ServedFile } from '../helpers/http-fault-server.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-fineweb-dl-'))
after(() => rmSync(root, { recursive: true, force: true }))
const spec = finewebSpec()
const fast: RetryOptions = { backoffMs: 1, maxBackoffMs: 5, maxRetries: 4, idleTimeoutMs: 5000 }

function served(n: number, rows = 300): ServedFile[] {
  return Array.from({ length: n }, (_, i) => ({
    path: `${spec.dir}/${String(i).padStart(3, '0')}_00000.parquet`,
    data: parquetOf(Array.from({ length: rows }, (_, r) => `File ${i}, document ${r}: ${'some words here '.repeat(1 + (r % 7))}`), 64),
  }))
}

let dirs = 0
async function download(files: ServedFile[], opts: { token?: string; workers?: number; onProgress?: (p: DownloadProgress) => void;
  progressIntervalMs?: number; pageSize?: number; http?: RetryOptions; parts?: Map<ServedFile, number>;
  before?: (cacheDir: string) => void } = {}) {
  const server = await startFaultServer({ repo: spec.repo, dir: spec.dir, files,
    ...(opts.pageSize === undefined ? {} : { pageSize: opts.pageSize }) })
  const cacheDir = join(root, `c${dirs++}`)
  try {
    const http = { ...fast, ...opts.http, ...(opts.token === undefined ? {} : { token: opts.token }) }
    const { manifest } = await loadManifest(cacheDir, spec, server.baseUrl, http)
    for (const [f, n] of opts.parts ?? []) {   // left by an earlier run: the first n bytes as FILE.part
      const part = `${localPath(cacheDir, { path: f.path, size: 0 })}.part`
      mkdirSync(dirname(part), { recursive: true })
      writeFileSync(part, f.data.subarray(0, n))
    }
    opts.before?.(cacheDir)
    const run = downloadAll({ ...http, files: manifest.files, cacheDir, urlOf: (f: RemoteFile) => fileUrl(server.baseUrl, spec, f.path),
      workers: opts.workers ?? 2, progressIntervalMs: opts.progressIntervalMs ?? 1000,
      ...(opts.onProgress === undefined ? {} : { onProgress: opts.onProgress }) })
    const error = await run.done.then(() => undefined, (e: unknown) => e)
    return { server, cacheDir, manifest, error }
  } finally {
    await server.close()
  }
}

function assertSameBytes(cacheDir: string, f: ServedFile): void {
  const got = readFileSync(localPath(cacheDir, { path: f.path, size: 0 }))
  assert.ok(got.equals(f.data), `${f.path}: ${got.length} bytes downloaded, ${f.data.length} served`)
}

test('lists (paginated, sorted), sends HF_TOKEN, follows redirects and downloads every file intact', async () => {
  const files = served(5).reverse() // the listing order is not the tokenization order
  const { server, cacheDir, manifest, error } = await download(files, { token: 'hf_secret', pageSize: 2 })
  assert.equal(error, undefined)
  assert.deepEqual(manifest.files.map(f => f.path), files.map(f => f.path).sort())
  assert.ok(manifest.files.every(f => f.sha256?.length === 64), 'LFS oids kept for the sha256 check')
  assert.equal(server.requests.filter(r => r.url.includes('/tree/')).length, 3, '5 files + 1 directory at 2 per page')
  for (const f of files) assertSameBytes(cacheDir, f)
  assert.ok(server.requests.every(r => r.authorization === 'Bearer hf_secret'), 'every request carries the token')
  assert.ok(server.requests.some(r => r.status === 302), 'resolve/ redirects to the CDN path')
  assert.ok(existsSync(manifestPath(cacheDir, spec)))
})

test('a connection cut mid-file resumes with Range from the bytes already on disk, never restarting', async () => {
  const files = served(2, 2000)
  const size = files[1]!.data.length
  files[1]!.faults = { cutAfter: [Math.floor(size / 3), Math.floor(size / 3)] } // cut twice, then complete
  const { server, cacheDir, error } = await download(files)
  assert.equal(error, undefined)
  assertSameBytes(cacheDir, files[1]!)
  const reqs = server.cdnRequests(files[1]!.path)
  assert.equal(reqs.length, 3)
  assert.equal(reqs[0]!.range, undefined)
  assert.equal(reqs[1]!.range, `bytes=${reqs[0]!.bodyBytes}-`)
  assert.equal(reqs[2]!.range, `bytes=${reqs[0]!.bodyBytes + reqs[1]!.bodyBytes}-`)
  assert.equal(reqs.reduce((n, r) => n + r.bodyBytes, 0), size, 'every byte sent exactly once')
})

test('a new run continues a .part file left by an interrupted one', async () => {
  const files = served(1, 2000)
  const size = files[0]!.data.length
  files[0]!.faults = { cutAfter: [Math.floor(size / 2)], status: [undefined as never, 404] } // first run: cut, then 404 stops it
  const first = await download(files)
  assert.ok(first.error instanceof InputError)
  const part = `${localPath(first.cacheDir, { path: files[0]!.path, size })}.part`
  assert.equal(readFileSync(part).length, Math.floor(size / 2))
  files[0]!.faults = {}
  const server = await startFaultServer({ repo: spec.repo, dir: spec.dir, files })
  try {
    const { manifest, fromCache } = await loadManifest(first.cacheDir, spec, server.baseUrl, fast)
    assert.ok(fromCache, 'the manifest is reused, the listing not fetched again')
    await downloadAll({ ...fast, files: manifest.files, cacheDir: first.cacheDir, urlOf: f => fileUrl(server.baseUrl, spec, f.path) }).done
    assert.deepEqual(server.cdnRequests(files[0]!.path).map(r => r.range), [`bytes=${Math.floor(size / 2)}-`])
    assertSameBytes(first.cacheDir, files[0]!)
    assert.ok(!existsSync(part))
  } finally {
    await server.close()
  }
})

test('500s are retried with backoff; a server that keeps failing gives up after maxRetries with the status', async () => {
  const files = served(2)
  files[0]!.faults = { status: [500, 503] }
  const ok = await download(files)
  assert.equal(ok.error, undefined)
  assert.deepEqual(ok.server.cdnRequests(files[0]!.path).map(r => r.status), [500, 503, 200])
  assertSameBytes(ok.cacheDir, files[0]!)

  const bad = served(1)
  bad[0]!.faults = { status: Array(20).fill(500) }
  const t0 = performance.now()
  const failed = await download(bad)
  assert.ok(failed.error instanceof InputError)
  assert.match((failed.error as Error).message, /failed 5 times in a row, last: HTTP 500/)
  assert.equal(failed.server.cdnRequests(bad[0]!.path).length, 5, 'maxRetries 4: 5 attempts')
  assert.ok(performance.now() - t0 < 5000)
})

test('429 is retried after its Retry-After, read as seconds; the next wait is the backoff again', async () => {
  const files = served(1)
  files[0]!.faults = { status: [429, 429], retryAfter: ['1', undefined] }
  const waits: { attempt: number; reason: string; waitMs: number }[] = []
  const http: RetryOptions = { backoffMs: 1, maxBackoffMs: 2000, onRetry: r => waits.push(r) }
  const { server, cacheDir, error } = await download(files, { http })
  assert.equal(error, undefined)
  assert.deepEqual(server.cdnRequests(files[0]!.path).map(r => r.status), [429, 429, 200])
  assertSameBytes(cacheDir, files[0]!)
  assert.equal(waits.length, 2)
  assert.deepEqual(waits.map(w => [w.attempt, w.reason]), [[1, 'HTTP 429 Too Many Requests'], [2, 'HTTP 429 Too Many Requests']])
  assert.equal(waits[0]!.waitMs, 1000, 'Retry-After: 1 is one second (the backoff alone would be ~1 ms)')
  assert.ok(waits[1]!.waitMs >= 1.5 && waits[1]!.waitMs <= 2.5, `no Retry-After: 2 ms ±25%, got ${waits[1]!.waitMs}`)
})

test('401 and 403 are not retried and say to set HF_TOKEN', async () => {
  for (const [status, text] of [[401, 'Unauthorized'], [403, 'Forbidden']] as const) {
    const files = served(1)
    files[0]!.faults = { status: [status] }
    const { server, error } = await download(files)
    assert.ok(error instanceof InputError, String(error))
    assert.match(error.message, new RegExp(`failed with HTTP ${status} ${text} \\(access denied: set HF_TOKEN to a Hugging Face token`))
    assert.equal(server.cdnRequests(files[0]!.path).length, 1, `${status}: one request`)
  }
})

test('a connection cut after new bytes more often than maxRetries still completes: progress resets the count', async () => {
  const files = served(1, 2000)
  const size = files[0]!.data.length
  const cuts = 2 * (fast.maxRetries! + 1)   // 10 cuts in a row; each one brings new bytes
  const step = Math.floor(size / (cuts + 2))
  files[0]!.faults = { cutAfter: Array(cuts).fill(step) }
  const { server, cacheDir, error } = await download(files)
  assert.equal(error, undefined)
  assertSameBytes(cacheDir, files[0]!)
  const reqs = server.cdnRequests(files[0]!.path)
  assert.deepEqual(reqs.map(r => r.range), Array.from({ length: cuts + 1 }, (_, i) => i === 0 ? undefined : `bytes=${i * step}-`))
  assert.equal(reqs.reduce((n, r) => n + r.bodyBytes, 0), size, 'every byte sent exactly once')
})

test('a resume against a server whose file is now shorter than listed: its Content-Range total, or its 416, is named', async () => {
  const files = served(1, 2000)
  const size = files[0]!.data.length
  files[0]!.faults = { servedBytes: size - 1000 }
  const hint = '(truncated or changed on the server, or a stale manifest: delete manifest.json in the cache)'
  // a .part shorter than the server's copy: the 206's "bytes HAVE-END/TOTAL" disagrees with the listing
  const shorter = await download(files, { parts: new Map([[files[0]!, 5000]]) })
  assert.ok(shorter.error instanceof InputError, String(shorter.error))
  assert.ok(shorter.error.message.endsWith(`.parquet is ${size - 1000} bytes on the server, the listing says ${size} ${hint}`),
    shorter.error.message)
  assert.deepEqual(shorter.server.cdnRequests(files[0]!.path).map(r => [r.range, r.status]), [['bytes=5000-', 206]])
  // a .part longer than the server's copy (but not than the listing): the server answers 416
  const longer = await download(files, { parts: new Map([[files[0]!, size - 500]]) })
  assert.ok(longer.error instanceof InputError, String(longer.error))
  assert.ok(longer.error.message.endsWith(`.parquet: the server has no bytes after ${size - 500}, but the listing says ${size} ${hint}`),
    longer.error.message)
  assert.deepEqual(longer.server.cdnRequests(files[0]!.path).map(r => [r.range, r.status]), [[`bytes=${size - 500}-`, 416]])
})

test('a listing 5xx is retried; a 404 for a file is one clear error with no retries', async () => {
  const files = served(2)
  const server = await startFaultServer({ repo: spec.repo, dir: spec.dir, files, listingStatus: [502] })
  try {
    const { manifest } = await loadManifest(join(root, 'l404'), spec, server.baseUrl, fast)
    assert.equal(manifest.files.length, 2)
    const missing: RemoteFile = { path: `${spec.dir}/999_00000.parquet`, size: 10 }
    const run = downloadAll({ ...fast, files: [missing], cacheDir: join(root, 'l404'), urlOf: f => fileUrl(server.baseUrl, spec, f.path) })
    await assert.rejects(run.done,
      (e: Error) => e instanceof InputError && /HTTP 404 .*999_00000\.parquet|999_00000\.parquet.*HTTP 404/.test(e.message))
    assert.equal(server.requests.filter(r => r.url.includes('999_00000')).length, 1)
  } finally {
    await server.close()
  }
})

test('truncated files are detected: shorter than listed, or listed short with a broken Parquet footer', async () => {
  const a = served(1, 2000)
  a[0]!.faults = { servedBytes: a[0]!.data.length - 1000 }
  const r1 = await download(a)
  assert.ok(r1.error instanceof InputError)
  assert.match((r1.error as Error).message, /bytes on the server, the listing says \d+ \(truncated/)
  assert.ok(!existsSync(localPath(r1.cacheDir, { path: a[0]!.path, size: 0 })))

  const b = served(1, 2000)
  const cut = b[0]!.data.subarray(0, b[0]!.data.length - 1000)
  b[0] = { ...b[0]!, data: cut, sha256: null } // the listing agrees with the short file and has no hash
  const r2 = await download(b)
  assert.ok(r2.error instanceof InputError)
  assert.match((r2.error as Error).message, /not a complete Parquet file/)
  const dest = localPath(r2.cacheDir, { path: b[0]!.path, size: 0 })
  assert.ok(!existsSync(dest) && !existsSync(`${dest}.part`), 'nothing left that could pass for the file')

  const c = served(1)
  c[0]!.sha256 = 'a'.repeat(64)
  const r3 = await download(c)
  assert.match((r3.error as Error).message, /has sha256 [0-9a-f]{64}, the listing says a{64}/)
})

test('a stalled body is abandoned after the idle timeout and resumed', async () => {
  const files = served(1, 2000)
  files[0]!.faults = { stallAfter: [7000] }
  const server = await startFaultServer({ repo: spec.repo, dir: spec.dir, files })
  try {
    const cacheDir = join(root, 'stall')
    const http = { ...fast, idleTimeoutMs: 300 }
    const { manifest } = await loadManifest(cacheDir, spec, server.baseUrl, http)
    await downloadAll({ ...http, files: manifest.files, cacheDir, urlOf: f => fileUrl(server.baseUrl, spec, f.path) }).done
    assertSameBytes(cacheDir, files[0]!)
    assert.deepEqual(server.cdnRequests(files[0]!.path).map(r => r.range), [undefined, 'bytes=7000-'])
  } finally {
    await server.close()
  }
})

test('a server that ignores Range restarts the file cleanly', async () => {
  const files = served(1, 2000)
  files[0]!.faults = { cutAfter: [5000], ignoreRange: true }
  const { server, cacheDir, error } = await download(files)
  assert.equal(error, undefined)
  assertSameBytes(cacheDir, files[0]!)
  assert.deepEqual(server.cdnRequests(files[0]!.path).map(r => r.status), [200, 200])
})

test('a server that ignores Range and cuts every response at the same byte: given up after the retries, not forever', async () => {
  const files = served(1, 2000)
  files[0]!.faults = { cutAfter: Array(50).fill(5000), ignoreRange: true }   // 5,000 bytes each time, from byte 0
  const { server, error } = await download(files)
  assert.ok(error instanceof InputError, String(error))
  assert.match((error as Error).message, /failed 5 times in a row, last: /)
  assert.equal(server.cdnRequests(files[0]!.path).length, 1 + fast.maxRetries!, 'the first try, then maxRetries more')
})

test('a 206 from another offset than asked is retried, never appended; an HTML page instead of the file is refused', async () => {
  const files = served(1, 2000)
  const size = files[0]!.data.length
  files[0]!.faults = { cutAfter: [Math.floor(size / 3)], rangeFromZero: [false, true] }   // cut, then a resume answered from byte 0
  const { server, cacheDir, error } = await download(files)
  assert.equal(error, undefined)
  assertSameBytes(cacheDir, files[0]!)
  assert.deepEqual(server.cdnRequests(files[0]!.path).map(r => r.status), [200, 206, 206])
  const page = served(1, 2000)
  page[0]!.faults = { contentType: 'text/html; charset=utf-8' }
  const html = await download(page)
  assert.ok(html.error instanceof InputError, String(html.error))
  assert.match((html.error as Error).message, /answered with text\/html; charset=utf-8, not file content \(a login or error page\?/)
})

test('a slow server: progress keeps updating with bytes, rate and ETA while the file downloads', async () => {
  const files = served(1, 600)
  const size = files[0]!.data.length
  files[0]!.faults = { bytesPerSecond: Math.ceil(size / 1.2) } // about 1.2 s
  const seen: DownloadProgress[] = []
  const { error } = await download(files, { progressIntervalMs: 50, onProgress: p => seen.push(p) })
  assert.equal(error, undefined)
  const during = seen.filter(p => p.files === 0)
  assert.ok(during.length >= 10, `${during.length} progress reports before the file completed`)
  const distinct = new Set(during.map(p => p.bytes))
  assert.ok(distinct.size >= 5, `bytes advanced ${distinct.size} times`)
  for (let i = 1; i < during.length; i++) assert.ok(during[i]!.bytes >= during[i - 1]!.bytes)
  const late = during.at(-1)!
  assert.ok(late.bytesPerSecond > 0 && late.etaSeconds !== undefined && late.totalBytes === size)
  assert.equal(seen.at(-1)!.files, 1)
  assert.equal(seen.at(-1)!.bytes, size)
})

test('files already complete count from the first progress report, as their bytes do', async () => {
  const files = served(3)
  const seen: DownloadProgress[] = []
  const { error } = await download(files, { workers: 1, onProgress: p => seen.push(p), before: cacheDir => {
    for (const f of files.slice(0, 2)) {   // the first two complete from an earlier run
      const p = localPath(cacheDir, { path: f.path, size: 0 })
      mkdirSync(dirname(p), { recursive: true })
      writeFileSync(p, f.data)
    }
  } })
  assert.equal(error, undefined)
  assert.deepEqual([...new Set(seen.map(p => p.files))], [2, 3], 'never "0/3" or "1/3" with two files there')
  assert.equal(seen[0]!.bytes, files[0]!.data.length + files[1]!.data.length)
})

test('a full disk while a file downloads (its .part planted as a link to /dev/full): one line naming the file, not a crash', async t => {
  if (!existsSync('/dev/full')) { t.skip('no /dev/full on this system'); return }
  const files = served(1)
  let part = ''
  const { error } = await download(files, { before: cacheDir => {
    part = `${localPath(cacheDir, { path: files[0]!.path, size: 0 })}.part`
    mkdirSync(dirname(part), { recursive: true })
    symlinkSync('/dev/full', part)
  } })
  assert.ok(error instanceof OutOfSpaceError, `got ${String(error)}`)   // an InputError: exit 2, one line
  assert.equal(error.message, `fineweb: cannot write ${part}: no space left on device (ENOSPC); the bytes so far are kept ` +
    '(free some space, then run the same command again to resume)')
})
