// A Hugging Face model repository -> a local directory that --model / --init-from read: config.json, the safetensors
// weights (one file, or an index and its shards) and the tokenizer and generation files when present; other weights
// (pytorch_model.bin, TF/Flax/ONNX) and README are never fetched. The revision is pinned to its commit, and an
// architecture llm.ts cannot load is refused before any weight is fetched or any file in the directory replaced.

import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { downloadAll, type DownloadProgress } from './hub/download.js'
import { fetchTree, resolveBaseUrl, type RemoteFile } from './hub/hub.js'
import { fetchWithRetry, type RetryOptions } from './hub/http.js'
import type { ModelConfig } from '../config.js'
import type { HfFamily } from '../model/params.js'
import { newFolders, removeEmptyFolders } from '../util/atomic.js'
import { InputError } from '../util/errors.js'
import { configFromHfJson } from './hf-config.js'
import { DOWNLOAD_STAGING, readWeightMap } from './hf.js'
import { checkSafetensorsFile } from './safetensors.js'

const LABEL = 'download'
/** Files fetched besides config.json and the weights, when the repository has them. */
const OPTIONAL_FILES = ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt',
  'special_tokens_map.json']
const INDEX = 'model.safetensors.index.json'

export interface ModelDownloadOptions {
  repo: string                // e.g. openai-community/gpt2
  revision?: string           // branch, tag or commit (default main)
  outDir: string
  baseUrl?: string            // hub or mirror (default $HF_ENDPOINT, else https://huggingface.co)
  token?: string              // default $HF_TOKEN
  workers?: number            // files downloaded in parallel
  http?: RetryOptions         // retry policy, signal, onRetry
  onListing?: (l: ModelListing) => void
  onProgress?: (p: DownloadProgress) => void
}

/** What onListing gets once config.json (and a shard index) are read: those, and the files onProgress then counts. */
export interface ModelListing { read: RemoteFile[]; rest: RemoteFile[]; config: ModelConfig; family: HfFamily }

export interface ModelDownloadResult {
  repo: string; revision: string; commit: string; dir: string; family: HfFamily
  files: { path: string; bytes: number }[]
  seconds: number
}

/** Hub repository names: "name" (legacy, e.g. gpt2) or "owner/name", letters, digits, "-", "_" and ".". */
export function checkRepoName(repo: string): void {
  if (!/^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/.test(repo) || repo.includes('..')) {
    throw new InputError(`${LABEL}: "${repo}" is not a Hugging Face model repository name (expected OWNER/NAME, e.g. openai-community/gpt2)`)
  }
}

/** Downloads the files of `repo` that llm.ts and transformers need into outDir; see the file header. */
export async function downloadHfModel(o: ModelDownloadOptions): Promise<ModelDownloadResult> {
  checkRepoName(o.repo)
  const t0 = performance.now()
  const revision = o.revision ?? 'main'
  const base = resolveBaseUrl(o.baseUrl, LABEL)
  const token = o.token ?? process.env['HF_TOKEN']
  const http: RetryOptions = {
    ...o.http, label: LABEL, ...(token ? { token } : {}),
    missingHint: `check the repository name ${o.repo}, --revision ${revision} and --base-url ${base}`,
  }
  const quick = { ...http, maxRetries: Math.min(http.maxRetries ?? 10, 3) }   // offline or a typo: fail fast
  // one commit for every request, so a branch that moves mid-download (or before a resume) cannot mix two
  const commit = await resolveCommit(`${base}/api/models/${o.repo}/revision/${encodeURIComponent(revision)}`, revision, quick)
  const pinned = encodeURIComponent(commit)
  const byPath = new Map((await fetchTree(`${base}/api/models/${o.repo}/tree/${pinned}`, quick)).map(f => [f.path, f]))
  const { config, single, index } = checkListing(o, byPath)
  // FineWeb's resumable, hash-checked machinery: a file already in the directory is kept only when its hash is the
  // listing's
  const download = (files: RemoteFile[], dir: string, opts: { progress: boolean }): Promise<void> => downloadAll({
    ...http, files, cacheDir: dir, workers: o.workers ?? 4, checkContent, rehashExisting: true,
    urlOf: f => `${base}/${o.repo}/resolve/${pinned}/${f.path.split('/').map(encodeURIComponent).join('/')}`,
    staleHint: 'changed on the server during the download? run the command again',
    ...(o.onProgress === undefined || !opts.progress ? {} : { onProgress: o.onProgress }),
  }).done

  // the architecture (and the shard list) is checked in a staging folder, before any weight and before a file
  // in --out is replaced: a refused repository leaves --out as it was
  const first = [config, ...(single === undefined ? [index!] : [])]
  const staging = join(o.outDir, DOWNLOAD_STAGING), created = newFolders(o.outDir)
  rmSync(staging, { recursive: true, force: true })
  let parsed: ReturnType<typeof configFromHfJson>, weights: RemoteFile[]
  try {
    await download(first, staging, { progress: false })
    parsed = configFromHfJson(JSON.parse(readFileSync(join(staging, 'config.json'), 'utf8')) as unknown, `${o.repo}/config.json`)
    weights = single !== undefined ? [single] : shardsOf(o.repo, join(staging, INDEX), byPath)
  } catch (e) {
    rmSync(staging, { recursive: true, force: true })
    removeEmptyFolders(created)   // a refusal leaves no trace
    throw e
  }
  // until the weights are in, --out has no config.json: another model's there would describe the new weights, and
  // the new one, moved in first, the old weights (the same shapes load silently); the staging folder left meanwhile
  // tells a reader of --out that it is an unfinished download (src/model/load.ts)
  for (const f of first) rmSync(join(o.outDir, f.path), { force: true })
  const rest = [...weights, ...OPTIONAL_FILES.flatMap(p => byPath.get(p) ?? [])]
  const all = [...first, ...rest]
  o.onListing?.({ read: first, rest, config: parsed.config, family: parsed.family })
  await download(rest, o.outDir, { progress: true })
  for (const f of first) renameSync(join(staging, f.path), join(o.outDir, f.path))
  rmSync(staging, { recursive: true, force: true })
  return {
    repo: o.repo, revision, commit, dir: o.outDir, family: parsed.family,
    files: all.map(f => ({ path: f.path, bytes: f.size })), seconds: (performance.now() - t0) / 1000,
  }
}

/** The listing's config.json and weights (model.safetensors, else the shard index), refused before anything is
 *  fetched when either is missing, or when sharded weights would go to an --out whose model.safetensors (not the
 *  repository's) would be loaded instead of them. */
function checkListing(o: ModelDownloadOptions, byPath: Map<string, RemoteFile>):
  { config: RemoteFile; single: RemoteFile | undefined; index: RemoteFile | undefined } {
  const config = byPath.get('config.json')
  if (config === undefined) throw new InputError(`${LABEL}: ${o.repo} has no config.json at its top level (not a transformers model?)`)
  const single = byPath.get('model.safetensors'), index = byPath.get(INDEX)
  if (single === undefined && index === undefined) noWeights(o.repo, byPath)
  if (single === undefined && existsSync(join(o.outDir, 'model.safetensors'))) {
    throw new InputError(`${LABEL}: ${o.outDir} holds a model.safetensors that ${o.repo} (sharded weights) does not have; ` +
      'it would be loaded instead of the shards (remove it, or choose another --out)')
  }
  return { config, single, index }
}

/** The commit a revision (branch, tag or commit) names: GET /api/models/REPO/revision/REV answers model info
 *  JSON with its "sha". Info without one (a mirror that trims fields) leaves the revision unpinned. */
async function resolveCommit(url: string, revision: string, http: RetryOptions): Promise<string> {
  let info: unknown
  try { info = await (await fetchWithRetry(url, { ...http, what: 'the revision' })).json() } catch (e) {
    if (e instanceof InputError) throw e
    throw new InputError(`${LABEL}: ${url} did not answer JSON (${(e as Error).message}; wrong --base-url?)`)
  }
  const sha = (info as { sha?: unknown } | null)?.sha
  return typeof sha === 'string' && /^[0-9a-f]{40}$/.test(sha) ? sha : revision
}

/** The shard files model.safetensors.index.json names, each of which must be in the listing. */
function shardsOf(repo: string, indexPath: string, byPath: Map<string, RemoteFile>): RemoteFile[] {
  return [...new Set(Object.values(readWeightMap(indexPath)))].map(n => {
    const f = byPath.get(n)
    if (f === undefined) throw new InputError(`${LABEL}: ${repo}/${INDEX} names the shard ${JSON.stringify(n)}, which the repository does not hold`)
    return f
  })
}

function noWeights(repo: string, byPath: Map<string, RemoteFile>): never {
  const other = ['pytorch_model.bin', 'pytorch_model.bin.index.json', 'tf_model.h5', 'flax_model.msgpack'].filter(p => byPath.has(p))
  throw new InputError(`${LABEL}: ${repo} has no safetensors weights (model.safetensors or ${INDEX})` +
    (other.length > 0 ? `; it holds ${other.join(', ')}, which llm.ts does not read (pick a revision or a copy with safetensors)` : ''))
}

/** A fetched file is whole: JSON parses; a safetensors header parses and its data ends at the file's end. */
async function checkContent(path: string, file: RemoteFile): Promise<void> {
  const bad = (what: string): never => {
    throw new InputError(`${LABEL}: ${file.path} ${what} (it was removed, run the command again to fetch it again)`)
  }
  if (file.path.endsWith('.json')) {
    try { JSON.parse(readFileSync(path, 'utf8')) } catch (e) { bad(`is not valid JSON: ${(e as Error).message}`) }
  } else if (file.path.endsWith('.safetensors')) {
    try { checkSafetensorsFile(path) } catch (e) {
      bad(`is not a whole safetensors file: ${(e as Error).message.replace(/^safetensors: [^:]*: /, '')}`)
    }
  }
}
