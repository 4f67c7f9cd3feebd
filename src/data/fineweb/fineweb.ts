// `llmts prepare fineweb` as a library call: manifest (cached hub listing) -> disk-space check -> parallel
// resumable downloads -> resumable tokenization into llm.c shards. Tokenization starts on file i as soon as
// it is complete, while later files are still downloading; either side failing stops the other.

import { existsSync, readdirSync, statfsSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { availableParallelism } from 'node:os'
import { cacheRoot } from '../../util/cache.js'
import { InputError } from '../../util/errors.js'
import { prepareDefaults } from '../prepare.js'
import { downloadAll, localPath, type DownloadProgress } from '../../io/hub/download.js'
import { fileUrl, loadManifest, resolveBaseUrl, type DatasetSpec, type Manifest } from '../../io/hub/hub.js'
import type { RetryOptions } from '../../io/hub/http.js'
import { formatBytes } from '../../util/progress.js'
import { lockOutput, type Lock } from '../../util/lock.js'
import { findCompleteOutput, tokenizeToShards, type ShardInput, type ShardsProgress, type ShardsResult } from './tokenize.js'

type SampleSize = '10B' | '100B'

/** llm.c's two FineWeb datasets: sample/10BT or sample/100BT of fineweb or fineweb-edu. */
export function finewebSpec(opts: { edu?: boolean; size?: SampleSize } = {}): DatasetSpec {
  const size = opts.size ?? '10B'
  return {
    repo: opts.edu === true ? 'HuggingFaceFW/fineweb-edu' : 'HuggingFaceFW/fineweb',
    dir: `sample/${size}T`,
    name: opts.edu === true ? 'edufineweb' : 'fineweb',
  }
}

export interface FinewebOptions {
  edu?: boolean
  size?: SampleSize
  outDir: string
  cacheDir?: string            // where the Parquet files go (default CACHE/datasets/REPO)
  baseUrl?: string             // hub or mirror (default $HF_ENDPOINT or https://huggingface.co)
  token?: string               // default $HF_TOKEN
  workers?: number             // tokenizer threads (default: all cores)
  downloadWorkers?: number     // parallel downloads (default 4)
  shardSize?: number           // tokens per shard (default 100M)
  downloadOnly?: boolean
  http?: Omit<RetryOptions, 'token' | 'signal'>
  progressIntervalMs?: number
  signal?: AbortSignal
  onManifest?: (m: Manifest, info: { fromCache: boolean; cacheDir: string; needBytes: number; freeBytes: number }) => void
  onDownloadProgress?: (p: DownloadProgress) => void
  onTokenizeProgress?: (p: ShardsProgress) => void
  onNote?: (line: string) => void
  statfs?: (path: string) => { bavail: number; bsize: number }   // tests
}

export interface FinewebResult {
  spec: DatasetSpec
  cacheDir: string
  files: string[]              // local Parquet paths, in document order
  shards?: ShardsResult        // absent with downloadOnly
}

/** Shard bytes per Parquet byte: FineWeb is 15T GPT-2 tokens in 44 TB of Parquet, 2 bytes per token; +10%. */
const SHARD_BYTES_PER_PARQUET_BYTE = 0.75

function sizeOf(path: string): number {
  try { return statSync(path).size } catch { return 0 }
}

function existingDir(path: string): string {
  let p = resolve(path)
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p)
  return p
}

interface SpaceNeed { dir: string; bytes: number; what: string }

/** Throws an InputError when a filesystem lacks the space its needs add up to. */
function checkDiskSpace(needs: SpaceNeed[], statfs: (path: string) => { bavail: number; bsize: number } = statfsSync):
  { needBytes: number; freeBytes: number } {
  const byDevice = new Map<number, { dir: string; bytes: number; what: string[] }>()
  for (const n of needs) {
    const dir = existingDir(n.dir)
    const dev = statSync(dir).dev
    const e = byDevice.get(dev) ?? { dir, bytes: 0, what: [] }
    e.bytes += n.bytes
    e.what.push(`${formatBytes(n.bytes)} for ${n.what}`)
    byDevice.set(dev, e)
  }
  let needBytes = 0
  let freeBytes = Infinity
  for (const e of byDevice.values()) {
    const s = statfs(e.dir)
    const free = s.bavail * s.bsize
    needBytes += e.bytes
    freeBytes = Math.min(freeBytes, free)
    if (free < e.bytes) {
      throw new InputError(`fineweb: not enough disk space on ${e.dir}: need about ${formatBytes(e.bytes)} (${e.what.join(', ')}), ` +
        `${formatBytes(free)} free (free some space, or put --cache/--out on a bigger disk)`)
    }
  }
  return { needBytes, freeBytes }
}

function spaceNeeds(manifest: Manifest, cacheDir: string, outDir: string, name: string, shardSize: number, downloadOnly: boolean): SpaceNeed[] {
  let download = 0
  for (const f of manifest.files) {
    const p = localPath(cacheDir, f)
    download += Math.max(0, f.size - (existsSync(p) ? sizeOf(p) : sizeOf(`${p}.part`)))
  }
  const needs: SpaceNeed[] = [{ dir: cacheDir, bytes: download, what: 'downloads' }]
  if (downloadOnly) return needs
  const total = manifest.files.reduce((n, f) => n + f.size, 0)
  const re = new RegExp(`^${name}_(train|val)_\\d{6}\\.bin$`)
  const existing = existsSync(outDir) ? readdirSync(outDir).filter(f => re.test(f)).reduce((n, f) => n + sizeOf(join(outDir, f)), 0) : 0
  const shards = Math.max(0, Math.ceil(total * SHARD_BYTES_PER_PARQUET_BYTE) - existing) + 2 * shardSize // + one shard being written
  needs.push({ dir: outDir, bytes: shards, what: 'shards (estimated)' })
  return needs
}

/** Takes CACHE/DIR/.download.lock when a file of `manifest` is still to be fetched: two processes fetching into one
 *  cache append to the same FILE.part (each from the length it saw), and the first to verify it finds a corrupted
 *  download. A cache whose files are all there (each was verified before it got its final name) is only read:
 *  no lock, so any number of full prepares may tokenize from it while one holds the lock elsewhere. */
function lockDownloads(cacheDir: string, spec: DatasetSpec, manifest: Manifest, onNote?: (line: string) => void): Lock | undefined {
  if (manifest.files.every(f => sizeOf(localPath(cacheDir, f)) === f.size)) return undefined
  return lockOutput(join(cacheDir, spec.dir), {
    command: 'llmts prepare fineweb', flag: '--cache', name: '.download.lock', note: onNote ?? (() => {}),
  })
}

/** Downloads (resuming) and tokenizes (resuming) a FineWeb sample; see the file header. */
export async function prepareFineweb(opts: FinewebOptions): Promise<FinewebResult> {
  const spec = finewebSpec({ ...(opts.edu === undefined ? {} : { edu: opts.edu }), ...(opts.size === undefined ? {} : { size: opts.size }) })
  const base = resolveBaseUrl(opts.baseUrl)
  const cacheDir = resolve(opts.cacheDir ?? join(cacheRoot(), 'datasets', spec.repo))
  const outDir = resolve(opts.outDir)
  const shardSize = opts.shardSize ?? prepareDefaults.shardSize
  const token = opts.token ?? (process.env['HF_TOKEN'] || undefined)
  const http: RetryOptions = { ...opts.http, ...(token === undefined ? {} : { token }),
    ...(opts.signal === undefined ? {} : { signal: opts.signal }) }
  const { manifest, fromCache } = await loadManifest(cacheDir, spec, base, http)
  const source = `${spec.repo} ${spec.dir} (hub revision ${manifest.revision})`
  const files = manifest.files.map(f => localPath(cacheDir, f))
  const inputsOf = (ready: (i: number) => Promise<string>): ShardInput[] =>
    manifest.files.map((f, i) => ({ label: f.path, size: f.size, ready: () => ready(i) }))
  if (opts.downloadOnly !== true) {
    const done = findCompleteOutput(outDir, { name: spec.name, source, inputs: inputsOf(async i => files[i]!) }, shardSize)
    if (done !== undefined) return { spec, cacheDir, files, shards: done }
  }
  const lock = lockDownloads(cacheDir, spec, manifest, opts.onNote)
  try {
    const space = checkDiskSpace(spaceNeeds(manifest, cacheDir, outDir, spec.name, shardSize, opts.downloadOnly === true), opts.statfs)
    opts.onManifest?.(manifest, { fromCache, cacheDir, ...space })
  } catch (e) { lock?.release(); throw e }

  const stop = new AbortController()
  const signal = opts.signal === undefined ? stop.signal : AbortSignal.any([opts.signal, stop.signal])
  const run = downloadAll({
    ...http, signal, files: manifest.files, cacheDir, urlOf: f => fileUrl(base, spec, f.path),
    ...(opts.downloadWorkers === undefined ? {} : { workers: opts.downloadWorkers }),
    ...(opts.progressIntervalMs === undefined ? {} : { progressIntervalMs: opts.progressIntervalMs }),
    ...(opts.onDownloadProgress === undefined ? {} : { onProgress: opts.onDownloadProgress }),
  })
  run.done.then(() => lock?.release(), () => lock?.release())   // the cache is free again while tokenization goes on
  if (opts.downloadOnly === true) {
    await run.done
    return { spec, cacheDir, files }
  }
  try {
    const shards = await tokenizeToShards({
      inputs: inputsOf(i => run.ready[i]!), outDir, name: spec.name, source, shardSize, signal,
      workers: opts.workers ?? availableParallelism(),
      ...(opts.onTokenizeProgress === undefined ? {} : { onProgress: opts.onTokenizeProgress }),
      ...(opts.onNote === undefined ? {} : { onNote: opts.onNote }),
    })
    await run.done
    return { spec, cacheDir, files, shards }
  } catch (e) {
    stop.abort(e)
    await run.done.catch(() => { /* the first error is the one to report */ })
    throw e
  }
}
