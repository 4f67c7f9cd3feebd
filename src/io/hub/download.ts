// Resumable, verified, parallel downloads of a hub listing's files (FineWeb's Parquet files, a model's weights).
// A file grows as FILE.part; every attempt asks for "Range: bytes=HAVE-" so an interrupted file continues where
// it stopped (a server that ignores Range gets a clean restart). A file counts as complete only when its size
// matches the listing, its hash matches the listing's (the LFS sha256, else the git blob id) and its content
// check passes (by default, hyparquet reads its footer); then it is renamed to its final name.

import { createHash } from 'node:crypto'
import { createReadStream, existsSync, renameSync, rmSync, statSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { InputError } from '../../util/errors.js'
import { openParquet } from '../../data/sources/parquet.js'
import type { RemoteFile } from './hub.js'
import { checkStatus, httpDefaults, IdleTimer, labelOf, RetryableError, requestHeaders, withRetries, type RetryOptions } from './http.js'
import { RateMeter } from '../../util/progress.js'
import { makeDirs, OutOfSpaceError, spaceError } from '../../util/atomic.js'

export interface DownloadProgress {
  files: number              // complete files
  totalFiles: number
  bytes: number              // bytes on disk (complete files + parts)
  totalBytes: number
  bytesPerSecond: number     // over the last ~20 s
  rateKnown: boolean         // false until the rate has two samples 0.2 s apart (bytesPerSecond is then 0)
  etaSeconds?: number
  seconds: number
}

interface DownloadOptions extends RetryOptions {
  files: RemoteFile[]
  urlOf: (file: RemoteFile) => string
  cacheDir: string            // file.path is stored at cacheDir/file.path
  workers?: number            // parallel downloads
  progressIntervalMs?: number // onProgress at least this often while downloading (and at every file's end)
  onProgress?: (p: DownloadProgress) => void
  /** Throws an InputError unless the file at `path` is whole (default: a readable Parquet footer). */
  checkContent?: (path: string, file: RemoteFile) => Promise<void>
  staleHint?: string          // what to do when the server's file disagrees with the listing (default: FineWeb's manifest)
  rehashExisting?: boolean    // hash a complete file already there before keeping it (a folder the user chose, not our cache)
}

const downloadDefaults = {
  workers: 4,
  progressIntervalMs: 1000,
  writeChunkBytes: 1 << 20,  // body bytes are gathered into 1 MB writes
}

export function localPath(cacheDir: string, file: RemoteFile): string {
  return join(cacheDir, ...file.path.split('/'))
}

function sizeOf(path: string): number {
  try { return statSync(path).size } catch { return 0 }
}

/** Shared counters of one download run. */
class Tally {
  bytes = 0
  files = 0
  readonly meter = new RateMeter()
  private readonly start = performance.now()
  constructor(readonly totalFiles: number, readonly totalBytes: number) {}

  snapshot(): DownloadProgress {
    this.meter.add(this.bytes)
    const bytesPerSecond = this.meter.rate()
    const etaSeconds = this.files === this.totalFiles ? 0 : this.meter.eta(this.totalBytes - this.bytes)
    return { files: this.files, totalFiles: this.totalFiles, bytes: this.bytes, totalBytes: this.totalBytes, bytesPerSecond,
      rateKnown: this.meter.known, ...(etaSeconds === undefined ? {} : { etaSeconds }), seconds: (performance.now() - this.start) / 1000 }
  }
}

async function digestOf(path: string, algorithm: 'sha256' | 'sha1', prefix = ''): Promise<string> {
  const h = createHash(algorithm).update(prefix)
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer)
  return h.digest('hex')
}

/** Throws an InputError unless `path` is `file`: its listed hash (when `hash`) and its content check. */
async function verifyFile(path: string, file: RemoteFile,
                                 opts: Pick<DownloadOptions, 'checkContent' | 'label'> & { hash: boolean }): Promise<void> {
  const [what, want, got] = !opts.hash ? [] : file.sha256 !== undefined ? ['sha256', file.sha256, await digestOf(path, 'sha256')]
    : file.gitOid !== undefined ? ['git blob id', file.gitOid, await digestOf(path, 'sha1', `blob ${file.size}\0`)] : []
  if (got !== want) throw new InputError(`${labelOf(opts)}: ${file.path} has ${what} ${got}, the listing says ${want} ` +
    `(corrupted download or a changed file; it was removed, re-run to fetch it again)`)
  await (opts.checkContent ?? checkParquet)(path, file)
}

async function checkParquet(path: string, file: RemoteFile): Promise<void> {
  try {
    await (await openParquet(path, 'text')).close()
  } catch (e) {
    throw new InputError(`fineweb: ${file.path} (${file.size} bytes as listed) is not a complete Parquet file: ` +
      `${(e as Error).message.replace(/^prepare: /, '')} (truncated on the server? it was removed, re-run to fetch it again)`)
  }
}

const MANIFEST_HINT = 'truncated or changed on the server, or a stale manifest: delete manifest.json in the cache'

/** Parses "bytes START-END/TOTAL" (TOTAL may be "*"). */
function parseContentRange(v: string | null): { start: number; total?: number } | undefined {
  const m = v === null ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(v.trim())
  if (m === null) return undefined
  return { start: Number(m[1]), ...(m[3] === '*' ? {} : { total: Number(m[3]) }) }
}

/** One GET from byte `have` on, appended to `part`. Returns when the body ends; throws on any failure. */
async function fetchRest(url: string, file: RemoteFile, part: string, have: number, opts: DownloadOptions,
                         onBytes: (n: number) => void): Promise<void> {
  const idle = new IdleTimer(opts.idleTimeoutMs ?? httpDefaults.idleTimeoutMs, opts.signal)
  let fh: Awaited<ReturnType<typeof open>> | undefined
  let pending: Uint8Array[] = []
  let pendingBytes = 0
  const flush = async (): Promise<void> => {
    if (fh === undefined || pendingBytes === 0) return
    await fh.write(pending.length === 1 ? pending[0]! : Buffer.concat(pending))
    pending = []
    pendingBytes = 0
  }
  try {
    fh = await open(part, 'a') // opened first: a body cut while we waited for the file would lose what arrived
    const res = await fetch(url, {
      headers: requestHeaders(opts, { 'accept-encoding': 'identity', ...(have > 0 ? { range: `bytes=${have}-` } : {}) }),
      signal: idle.controller.signal
    })
    idle.touch()
    const start = bodyStart(res, url, file, have, opts)
    if (start === 0 && have > 0) { // the server ignored Range: start over
      await fh.truncate(0)
      onBytes(-have)
    }
    let pos = start
    for await (const chunk of res.body ?? []) {
      idle.touch()
      const c = chunk as Uint8Array
      if (pos + c.length > file.size) throw sizeMismatch(url, file, pos + c.length, opts)
      pending.push(c)
      pendingBytes += c.length
      pos += c.length
      onBytes(c.length)
      if (pendingBytes >= downloadDefaults.writeChunkBytes) await flush()
    }
  } catch (e) {
    throw idle.controller.signal.aborted && !opts.signal?.aborted ? idle.controller.signal.reason : e
  } finally {
    idle.dispose()
    if (fh !== undefined) {
      await flush() // what arrived before a cut is valid: keep it for the next Range request
      await fh.close()
    }
  }
}

/** Checks the answer to a request from byte `have` on (its status, that it is file content, its range or length
 *  against the listing) before any of its body is kept; answers the byte its body starts at: `have` for a 206 that
 *  continues the part, 0 for the whole file. Throws, having changed nothing, on an answer to refuse or retry. */
function bodyStart(res: Response, url: string, file: RemoteFile, have: number, opts: DownloadOptions): number {
  if (res.status === 416) {
    throw new InputError(`${labelOf(opts)}: ${url}: the server has no bytes after ${have}, but the listing says ${file.size} ` +
      `(${opts.staleHint ?? MANIFEST_HINT})`)
  }
  checkStatus(res, url, file.path, opts)
  const type = res.headers.get('content-type') ?? ''
  if (/text\/html/i.test(type) || (/application\/json/i.test(type) && !file.path.endsWith('.json'))) {   // an error or login page
    throw new InputError(`${labelOf(opts)}: ${url} answered with ${type}, not file content (a login or error page? check --base-url and HF_TOKEN)`)
  }
  if (res.status === 206) {
    const range = parseContentRange(res.headers.get('content-range'))
    if (range === undefined || range.start !== have) throw new RetryableError(
      `the server sent range ${res.headers.get('content-range')}, asked for bytes=${have}-`)
    if (range.total !== undefined && range.total !== file.size) throw sizeMismatch(url, file, range.total, opts)
    return have
  }
  const length = res.headers.get('content-length')
  if (length !== null && Number(length) !== file.size) throw sizeMismatch(url, file, Number(length), opts)
  return 0
}

function sizeMismatch(url: string, file: RemoteFile, got: number, opts: DownloadOptions): InputError {
  return new InputError(`${labelOf(opts)}: ${url} is ${got} bytes on the server, the listing says ${file.size} (${opts.staleHint ?? MANIFEST_HINT})`)
}

/** A full disk (or quota, or file-size limit) while appending to `part`: one line and exit 2, not a crash; the
 *  bytes that arrived stay in `part` for the next run's Range request. Any other error is returned as it is. */
function outOfSpace(e: unknown, part: string, opts: DownloadOptions): unknown {
  const err = spaceError(e, part)
  return err instanceof OutOfSpaceError ? new OutOfSpaceError(`${labelOf(opts)}: ${err.message}; the bytes so far are kept ` +
    '(free some space, then run the same command again to resume)') : err
}

/** Downloads one file unless it is already complete; see the file header. */
async function downloadFile(file: RemoteFile, opts: DownloadOptions, tally: { bytes: number }): Promise<string> {
  const dest = localPath(opts.cacheDir, file)
  const onBytes = (n: number): void => { tally.bytes += n }
  if (existsSync(dest)) {
    const size = sizeOf(dest)
    if (size === file.size) {
      try {
        await verifyFile(dest, file, { ...opts, hash: opts.rehashExisting === true }) // ours were hashed before they got their final name
        return dest
      } catch { /* fall through: fetch it again */ }
    }
    rmSync(dest, { force: true })
    onBytes(-size)
  }
  const part = `${dest}.part`
  makeDirs(dirname(dest))
  const url = opts.urlOf(file)
  // progress, which restarts the retry count, is a part file longer than ever before: a server that ignores Range
  // and cuts every response at the same byte restarts from 0 each time and never gets further
  let furthest = sizeOf(part)
  await withRetries(url, file.path, opts, async progressed => {
    let have = sizeOf(part)
    if (have > file.size) { rmSync(part); onBytes(-have); have = 0 }
    let at = have
    const grew = (n: number): void => {
      onBytes(n)
      at += n
      if (at > furthest) { furthest = at; progressed() }
    }
    if (have < file.size) {
      try { await fetchRest(url, file, part, have, opts, grew) } catch (e) { throw outOfSpace(e, part, opts) }
    }
    const got = sizeOf(part)
    if (got < file.size) throw new RetryableError(`the response ended at byte ${got} of ${file.size}`)
  })
  try {
    await verifyFile(part, file, { ...opts, hash: true })
  } catch (e) {
    rmSync(part, { force: true })
    onBytes(-file.size)
    throw e
  }
  renameSync(part, dest)
  return dest
}

interface DownloadRun {
  ready: Promise<string>[]   // (files.length) resolves with the local path once that file is complete
  done: Promise<void>        // all files complete; rejects with the first fatal error
}

/** Downloads all files with `workers` in parallel, in manifest order (so the first files are ready first). */
export function downloadAll(opts: DownloadOptions): DownloadRun {
  const files = opts.files
  const tally = new Tally(files.length, files.reduce((n, f) => n + f.size, 0))
  // files already there count from the first report, as their bytes do (a rerun said "1/7 files" at 100%)
  const present = files.map(f => {
    const p = localPath(opts.cacheDir, f), have = existsSync(p) ? sizeOf(p) : -1
    tally.bytes += have >= 0 ? have : sizeOf(`${p}.part`)
    return have === f.size
  })
  tally.files = present.filter(x => x).length
  const settle = files.map(() => ({ resolve: (_: string) => {}, reject: (_: unknown) => {} }))
  const ready = files.map((_, i) => new Promise<string>((resolve, reject) => { settle[i] = { resolve, reject } }))
  for (const r of ready) r.catch(() => { /* the caller sees the error through `done` */ })
  const abort = new AbortController()
  const signal = opts.signal === undefined ? abort.signal : AbortSignal.any([opts.signal, abort.signal])
  const fileOpts: DownloadOptions = { ...opts, signal }
  const report = (): void => opts.onProgress?.(tally.snapshot())
  const ticker = setInterval(report, opts.progressIntervalMs ?? downloadDefaults.progressIntervalMs)
  let next = 0
  let failure: unknown
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < files.length) {
      const i = next++
      try {
        const path = await downloadFile(files[i]!, fileOpts, tally)
        if (!present[i]) tally.files++
        report()
        settle[i]!.resolve(path)
      } catch (e) {
        failure ??= e
        abort.abort(e)
      }
    }
  }
  const n = Math.max(1, Math.min(opts.workers ?? downloadDefaults.workers, files.length))
  const done = Promise.all(Array.from({ length: n }, worker)).then(() => {
    clearInterval(ticker)
    report()
    if (failure !== undefined) {
      for (const s of settle) s.reject(failure)
      throw failure
    }
  }, e => { clearInterval(ticker); throw e })
  done.catch(() => { /* rethrown to whoever awaits `done` */ })
  return { ready, done }
}
