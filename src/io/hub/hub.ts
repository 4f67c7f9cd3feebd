// The Hugging Face hub: a dataset folder's file listing (GET /api/datasets/REPO/tree/REV/DIR, paginated by Link
// headers) and its cached copy, the manifest (FineWeb's, and the model downloads' tree listing). Once a manifest exists the
// listing is never fetched again, so a re-run works offline and always sees the same files in the same order.

import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { makeDirs, writeFileAtomic } from '../../util/atomic.js'
import { InputError } from '../../util/errors.js'
import { compare } from '../../data/files.js'
import { fetchWithRetry, httpDefaults, labelOf, type RetryOptions } from './http.js'

const DEFAULT_BASE_URL = 'https://huggingface.co'
const REVISION = 'main'

export interface DatasetSpec {
  repo: string       // e.g. HuggingFaceFW/fineweb
  dir: string        // folder in the repo, e.g. sample/10BT
  name: string       // shard file prefix, as llm.c's fineweb.py: fineweb or edufineweb
}

export interface RemoteFile {
  path: string        // path in the repo, e.g. sample/10BT/000_00000.parquet
  size: number        // bytes, from the listing
  sha256?: string     // the LFS object id (sha256 of the content) when the listing gives one
  gitOid?: string     // otherwise the git blob id: sha1 of "blob SIZE\0" + the content
}

export interface Manifest {
  repo: string
  revision: string
  dir: string
  files: RemoteFile[] // sorted by path: the order documents are tokenized in
}

/** The base URL: --base-url, else $HF_ENDPOINT (the hub libraries' mirror variable), else huggingface.co. */
export function resolveBaseUrl(given?: string, label = 'fineweb'): string {
  const env = process.env['HF_ENDPOINT'] || undefined   // set but empty: unset
  const base = given ?? env ?? DEFAULT_BASE_URL
  const what = given !== undefined ? `--base-url "${base}"` : `$HF_ENDPOINT="${base}"`   // the user gave one or the other
  let url: URL
  try { url = new URL(base) } catch { throw new InputError(`${label}: ${what} is not a URL (expected e.g. https://huggingface.co)`) }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InputError(`${label}: ${what} must be http or https`)
  return base.replace(/\/+$/, '')
}

function listingUrl(base: string, spec: DatasetSpec): string {
  return `${base}/api/datasets/${spec.repo}/tree/${REVISION}/${spec.dir}`
}

export function fileUrl(base: string, spec: DatasetSpec, path: string): string {
  return `${base}/datasets/${spec.repo}/resolve/${REVISION}/${path.split('/').map(encodeURIComponent).join('/')}`
}

export function manifestPath(cacheDir: string, spec: DatasetSpec): string {
  return join(cacheDir, spec.dir, 'manifest.json')
}

interface TreeEntry { type?: unknown; path?: unknown; size?: unknown; oid?: unknown; lfs?: { oid?: unknown; size?: unknown } }

function nextLink(link: string | null): string | undefined {
  return link?.split(',').map(s => /<([^>]+)>\s*;\s*rel="?next"?/.exec(s)?.[1]).find(u => u !== undefined)
}

/** Every file of a hub tree listing (GET .../tree/REV[/DIR]), following Link rel="next" pages; `label` names
 *  the module in messages. */
export async function fetchTree(firstUrl: string, http: RetryOptions): Promise<RemoteFile[]> {
  const label = labelOf(http)
  const files: RemoteFile[] = []
  let url: string | undefined = firstUrl
  for (let page = 0; url !== undefined; page++) {
    if (page >= 1000) throw new InputError(`${label}: the listing at ${firstUrl} has more than 1000 pages (a Link loop?)`)
    const res = await fetchWithRetry(url, { ...http, what: 'the file listing' })
    let entries: unknown
    try { entries = await res.json() } catch (e) {
      throw new InputError(`${label}: the listing at ${url} is not JSON (${(e as Error).message}; wrong --base-url?)`)
    }
    if (!Array.isArray(entries)) throw new InputError(`${label}: the listing at ${url} is not a JSON array of files (wrong --base-url?)`)
    for (const e of entries as TreeEntry[]) {
      if (e.type !== 'file' || typeof e.path !== 'string') continue
      const size = typeof e.lfs?.size === 'number' ? e.lfs.size : e.size
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new InputError(
        `${label}: the listing gives no size for ${e.path}`)
      const oid = e.lfs?.oid
      files.push({ path: e.path, size, ...(typeof oid === 'string' && /^[0-9a-f]{64}$/.test(oid) ? { sha256: oid }
        : e.lfs === undefined && typeof e.oid === 'string' && /^[0-9a-f]{40}$/.test(e.oid) ? { gitOid: e.oid } : {}) })
    }
    const next = nextLink(res.headers.get('link'))
    url = next === undefined ? undefined : new URL(next, url).toString()
  }
  return files
}

/** The Parquet files of spec.dir from the hub's tree API, sorted by path. */
async function fetchListing(base: string, spec: DatasetSpec, http: RetryOptions): Promise<RemoteFile[]> {
  const files = (await fetchTree(listingUrl(base, spec), http)).filter(f => f.path.endsWith('.parquet'))
  if (files.length === 0) throw new InputError(`fineweb: ${spec.repo} has no Parquet files under ${spec.dir} (listing ${listingUrl(base, spec)})`)
  return files.sort((a, b) => compare(a.path, b.path))
}

function readManifest(path: string, spec: DatasetSpec): Manifest | undefined {
  if (!existsSync(path)) return undefined
  let m: Manifest
  try { m = JSON.parse(readFileSync(path, 'utf8')) as Manifest } catch (e) {
    throw new InputError(`fineweb: cannot read the manifest ${path} (${(e as Error).message}; delete it to list the files again)`)
  }
  const ok = m.repo === spec.repo && m.dir === spec.dir && Array.isArray(m.files) && m.files.length > 0 &&
    m.files.every(f => typeof f.path === 'string' && Number.isSafeInteger(f.size))
  if (!ok) throw new InputError(`fineweb: the manifest ${path} is not for ${spec.repo} ${spec.dir} or is malformed ` +
    `(delete it to list the files again)`)
  return m
}

/** The manifest in the cache, or the hub's listing saved as the manifest. */
export async function loadManifest(cacheDir: string, spec: DatasetSpec, base: string,
                                   http: RetryOptions): Promise<{ manifest: Manifest; fromCache: boolean }> {
  const path = manifestPath(cacheDir, spec)
  const cached = readManifest(path, spec)
  if (cached !== undefined) return { manifest: cached, fromCache: true }
  // A few quick retries only: failing here usually means offline or a wrong --base-url, and nothing is lost.
  const files = await fetchListing(base, spec, { ...http, maxRetries: Math.min(http.maxRetries ?? httpDefaults.maxRetries, 3) })
  const manifest: Manifest = { repo: spec.repo, revision: REVISION, dir: spec.dir, files }
  makeDirs(dirname(path))
  writeFileAtomic(path, JSON.stringify(manifest, null, 2) + '\n')
  return { manifest, fromCache: false }
}
