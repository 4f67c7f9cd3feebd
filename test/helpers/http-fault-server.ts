// A hub look-alike on 127.0.0.1 for download tests (a dataset's folder or a model repository's top level): the
// tree API listing (paginated with Link headers), /resolve/ URLs that redirect to a "CDN" path with Range support,
// and per-file faults: connection cuts mid-body, error statuses (with Retry-After), a file shorter than listed, a
// slow body. It records every request (with its Range and Authorization headers) and closes itself after
// `lifetimeMs` even if a test forgets to.

import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parquetWriteBuffer } from 'hyparquet-writer'

/** A FineWeb-like Parquet file: columns text and id, `rowGroupSize` rows per row group. */
export function parquetOf(docs: string[], rowGroupSize: number): Uint8Array {
  return new Uint8Array(parquetWriteBuffer({
    columnData: [
      { name: 'text', data: docs, type: 'STRING' },
      { name: 'id', data: docs.map((_, i) => `<urn:uuid:${i}>`), type: 'STRING' },
    ],
    rowGroupSize,
  }))
}

export interface FileFaults {
  cutAfter?: number[]        // per CDN request, in order: send this many body bytes, then drop the connection
  stallAfter?: number[]      // per CDN request, in order: send this many body bytes, then go silent
  status?: number[]          // per CDN request, in order: answer with this status instead (e.g. 500)
  retryAfter?: (string | undefined)[]  // per CDN request, in order: the Retry-After header sent with that forced status
  servedBytes?: number       // the server's copy holds only the first N bytes (a truncated upload)
  bytesPerSecond?: number    // throttle the body
  ignoreRange?: boolean      // answer every request with 200 and the whole file
  rangeFromZero?: boolean[]  // per CDN request, in order: answer a Range request with the bytes from 0 (and say so)
  contentType?: string       // serve the body as this type (e.g. text/html: a login page)
}

export interface ServedFile {
  path: string               // repo path, e.g. sample/10BT/000_00000.parquet
  data: Uint8Array
  listedSize?: number        // size in the listing (default data.length)
  sha256?: string | null     // LFS oid in the listing (default: sha256 of data; null: omitted)
  faults?: FileFaults
}

export interface RecordedRequest { url: string; range?: string; authorization?: string; status: number; bodyBytes: number }

export interface FaultServer {
  baseUrl: string
  requests: RecordedRequest[]
  cdnRequests(path: string): RecordedRequest[]
  close(): Promise<void>
}

export interface FaultServerOptions {
  repo: string
  dir: string                // folder listed ('' with kind model: the top level)
  kind?: 'dataset' | 'model' // URL layout: /api/datasets/REPO/... and /datasets/REPO/resolve/..., or /api/models/REPO/... and /REPO/resolve/...
  revision?: string          // the only revision served (default main); a model's is resolved to COMMIT first
  trimmedInfo?: boolean      // model: revision info without "sha" (a trimming mirror): files are served under the revision name
  files: ServedFile[]
  pageSize?: number          // listing entries per page (default: one page)
  listingStatus?: number[]   // per listing request: answer with this status instead
  lifetimeMs?: number        // hard stop (default 60 s)
}

/** The commit a model server's revision resolves to (GET /api/models/REPO/revision/REV). */
export const COMMIT = '0123456789abcdef0123456789abcdef01234567'

function listing(opts: FaultServerOptions): object[] {
  return opts.files.map(f => {
    const size = f.listedSize ?? f.data.length
    const oid = f.sha256 === undefined ? createHash('sha256').update(f.data).digest('hex') : f.sha256
    // a file outside LFS is listed with its git blob id (sha1 of "blob SIZE\0" + content); an LFS file's oid is its pointer's
    const gitOid = createHash('sha1').update(`blob ${f.data.length}\0`).update(f.data).digest('hex')
    return { type: 'file', path: f.path, size, oid: oid === null ? gitOid : 'f'.repeat(40),
      ...(oid === null ? {} : { lfs: { oid, size, pointerSize: 134 } }) }
  }).concat([{ type: 'directory', path: opts.dir === '' ? 'nested' : `${opts.dir}/nested`, size: 0, oid: '0'.repeat(40) } as never])
}

export async function startFaultServer(opts: FaultServerOptions): Promise<FaultServer> {
  const requests: RecordedRequest[] = []
  const counters = new Map<string, number>()
  let listingCalls = 0
  const model = opts.kind === 'model'
  const rev = model && opts.trimmedInfo !== true ? COMMIT : encodeURIComponent(opts.revision ?? 'main')
  const revisionPath = `/api/models/${opts.repo}/revision/${encodeURIComponent(opts.revision ?? 'main')}`
  const treePrefix = model ? `/api/models/${opts.repo}/tree/${rev}${opts.dir === '' ? '' : `/${opts.dir}`}`
    : `/api/datasets/${opts.repo}/tree/${rev}/${opts.dir}`
  const resolvePrefix = model ? `/${opts.repo}/resolve/${rev}/` : `/datasets/${opts.repo}/resolve/${rev}/`

  const server = createServer((req, res) => {
    const rec: RecordedRequest = { url: req.url ?? '', status: 0, bodyBytes: 0,
      ...(req.headers.range === undefined ? {} : { range: req.headers.range }),
      ...(req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization }) }
    requests.push(rec)
    const send = (status: number, body: string, headers: Record<string, string> = {}): void => {
      rec.status = status
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body)
    }
    const url = new URL(req.url ?? '/', 'http://x')
    if (model && url.pathname === revisionPath) {
      send(200, JSON.stringify(opts.trimmedInfo === true ? { id: opts.repo } : { id: opts.repo, sha: COMMIT, siblings: [] }))
      return
    }
    if (url.pathname === treePrefix) {
      const forced = opts.listingStatus?.[listingCalls++]
      if (forced !== undefined) { send(forced, '{"error":"injected"}'); return }
      const all = listing(opts)
      const size = opts.pageSize ?? all.length
      const cursor = Number(url.searchParams.get('cursor') ?? 0)
      const more = cursor + size < all.length
      send(200, JSON.stringify(all.slice(cursor, cursor + size)), more ? { link: `<${treePrefix}?cursor=${cursor + size}>; rel="next"` } : {})
      return
    }
    if (model && url.pathname.startsWith('/api/models/')) {   // the hub's answer to an anonymous request for a repo it does not show
      send(401, '{"error":"Repository not found"}', { 'x-error-code': 'RepoNotFound' })
      return
    }
    if (url.pathname.startsWith(resolvePrefix)) {
      const path = decodeURIComponent(url.pathname.slice(resolvePrefix.length))
      if (!opts.files.some(f => f.path === path)) { send(404, '{"error":"Entry not found"}', { 'x-error-code': 'EntryNotFound' }); return }
      rec.status = 302
      res.writeHead(302, { location: `/cdn/${encodeURIComponent(path)}?signed=1` }).end()
      return
    }
    if (url.pathname.startsWith('/cdn/')) { serveFile(decodeURIComponent(url.pathname.slice(5)), req, res, rec); return }
    send(404, '{"error":"not found"}')
  })

  function serveFile(path: string, req: IncomingMessage, res: ServerResponse, rec: RecordedRequest): void {
    const file = opts.files.find(f => f.path === path)
    if (file === undefined) { rec.status = 404; res.writeHead(404).end(); return }
    const n = counters.get(path) ?? 0
    counters.set(path, n + 1)
    const faults = file.faults ?? {}
    const forced = faults.status?.[n]
    if (forced !== undefined) {
      const after = faults.retryAfter?.[n]
      rec.status = forced
      res.writeHead(forced, { 'content-type': 'text/plain', ...(after === undefined ? {} : { 'retry-after': after }) }).end('injected')
      return
    }
    const data = file.data.subarray(0, faults.servedBytes ?? file.data.length)
    const type = faults.contentType ?? (path.endsWith('.json') ? 'application/json' : 'application/octet-stream')   // as the hub
    const m = faults.ignoreRange ? null : /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
    let start = 0
    let end = data.length
    if (m !== null) {
      start = faults.rangeFromZero?.[n] === true ? 0 : Number(m[1])
      end = m[2] ? Math.min(Number(m[2]) + 1, data.length) : data.length
      if (start >= data.length) { rec.status = 416; res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end(); return }
      rec.status = 206
      res.writeHead(206, { 'content-type': type, 'content-length': String(end - start),
        'content-range': `bytes ${start}-${end - 1}/${data.length}`, 'accept-ranges': 'bytes' })
    } else {
      rec.status = 200
      res.writeHead(200, { 'content-type': type, 'content-length': String(data.length), 'accept-ranges': 'bytes' })
    }
    const cut = faults.cutAfter?.[n]
    const stall = faults.stallAfter?.[n]
    const stopAt = Math.min(end, start + (cut ?? stall ?? end))
    writeBody(res, data, start, stopAt, faults.bytesPerSecond, rec, () => {
      if (stopAt === end) res.end()
      else if (cut !== undefined) res.socket?.destroy() // the client sees a body shorter than Content-Length
      // a stall leaves the connection open and silent until the client gives up (or close())
    })
  }

  function writeBody(res: ServerResponse, data: Uint8Array, from: number, to: number, bps: number | undefined, rec: RecordedRequest,
                     done: () => void): void {
    const tickMs = 20
    const step = bps === undefined ? 64 * 1024 : Math.max(1, Math.round(bps * tickMs / 1000))
    let pos = from
    const next = (): void => {
      if (res.destroyed) return
      if (pos >= to) { done(); return }
      const chunk = data.subarray(pos, Math.min(to, pos + step))
      pos += chunk.length
      rec.bodyBytes += chunk.length
      res.write(chunk, () => { if (bps === undefined) next(); else setTimeout(next, tickMs).unref() })
    }
    next()
  }

  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  let closed: Promise<void> | undefined
  const close = (): Promise<void> => {
    closed ??= new Promise<void>(resolve => {
      clearTimeout(timer)
      server.closeAllConnections()
      server.close(() => resolve())
    })
    return closed
  }
  const timer = setTimeout(() => { void close() }, opts.lifetimeMs ?? 60_000)
  timer.unref()
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    cdnRequests: path => requests.filter(r => r.url.startsWith(`/cdn/${encodeURIComponent(path)}`)),
    close,
  }
}
