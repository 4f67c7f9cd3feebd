// A Hugging Face model repository -> a local directory that --model / --init-from read: config.json first (an
// architecture llm.ts cannot load is refused before any weight is fetched), then the safetensors weights (one
// file, or an index and its shards) and the tokenizer and generation files when present. Other files
// (pytorch_model.bin, TF/Flax/ONNX weights, README) are never fetched. Downloads reuse FineWeb's resumable,
// sha256-checked machinery, so an interrupted download continues where it stopped when run again.

import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { downloadAll, type DownloadProgress } from '../data/fineweb/download.js'
import { fetchTree, resolveBaseUrl, type RemoteFile } from '../data/fineweb/hub.js'
import type { RetryOptions } from '../data/fineweb/http.js'
import type { ModelConfig } from '../config.js'
import type { HfFamily } from '../model/params.js'
import { InputError } from '../util/errors.js'
import { configFromHfJson } from './hf-config.js'

const LABEL = 'download'
/** Files fetched besides config.json and the weights, when the repository has them. */
export const OPTIONAL_FILES = ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt', 'special_tokens_map.json']
const INDEX = 'model.safetensors.index.json'

export interface ModelDownloadOptions {
  repo: string                // e.g. openai-community/gpt2
  revision?: string           // branch, tag or commit (default main)
  outDir: string
  baseUrl?: string            // hub or mirror (default $HF_ENDPOINT, else https://huggingface.co)
  token?: string              // default $HF_TOKEN
  workers?: number            // files downloaded in parallel
  http?: RetryOptions         // retry policy, signal, onRetry
  onListing?: (files: RemoteFile[], config: ModelConfig, family: HfFamily) => void   // the files to fetch
  onProgress?: (p: DownloadProgress) => void
}

export interface ModelDownloadResult {
  repo: string; revision: string; dir: string; family: HfFamily
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
  const rev = encodeURIComponent(revision)
  const tree = await fetchTree(`${base}/api/models/${o.repo}/tree/${rev}`, { ...http, maxRetries: Math.min(http.maxRetries ?? 10, 3) })
  const byPath = new Map(tree.map(f => [f.path, f]))
  const download = (files: RemoteFile[], progress: boolean): Promise<void> => downloadAll({
    ...http, files, cacheDir: o.outDir, workers: o.workers ?? 4, checkContent,
    urlOf: f => `${base}/${o.repo}/resolve/${rev}/${f.path.split('/').map(encodeURIComponent).join('/')}`,
    staleHint: 'changed on the server during the download? run the command again',
    ...(o.onProgress === undefined || !progress ? {} : { onProgress: o.onProgress }),
  }).done

  const config = byPath.get('config.json')
  if (config === undefined) throw new InputError(`${LABEL}: ${o.repo} has no config.json at its top level (not a transformers model?)`)
  const single = byPath.get('model.safetensors'), index = byPath.get(INDEX)
  const first = [config, ...(single === undefined && index !== undefined ? [index] : [])]
  await download(first, false)   // small: the architecture (and the shard list) before any weight
  const parsed = configFromHfJson(JSON.parse(readFileSync(join(o.outDir, 'config.json'), 'utf8')) as unknown, `${o.repo}/config.json`)
  const weights = single !== undefined ? [single] : index !== undefined ? shardsOf(o.repo, join(o.outDir, INDEX), byPath) : noWeights(o.repo, byPath)
  const rest = [...weights, ...OPTIONAL_FILES.flatMap(p => byPath.get(p) ?? [])]
  const all = [...first, ...rest]
  o.onListing?.(all, parsed.config, parsed.family)
  await download(rest, true)
  return {
    repo: o.repo, revision, dir: o.outDir, family: parsed.family,
    files: all.map(f => ({ path: f.path, bytes: f.size })), seconds: (performance.now() - t0) / 1000,
  }
}

/** The shard files model.safetensors.index.json names, each of which must be in the listing. */
function shardsOf(repo: string, indexPath: string, byPath: Map<string, RemoteFile>): RemoteFile[] {
  const map = (JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map?: unknown }).weight_map
  if (typeof map !== 'object' || map === null) throw new InputError(`${LABEL}: ${repo}/${INDEX} has no "weight_map" object`)
  const names = [...new Set(Object.values(map as Record<string, unknown>))]
  return names.map(n => {
    const f = typeof n === 'string' && !n.includes('/') ? byPath.get(n) : undefined
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
  const bad = (what: string): never => { throw new InputError(`${LABEL}: ${file.path} ${what} (it was removed, run the command again to fetch it again)`) }
  if (file.path.endsWith('.json')) {
    try { JSON.parse(readFileSync(path, 'utf8')) } catch (e) { bad(`is not valid JSON: ${(e as Error).message}`) }
  } else if (file.path.endsWith('.safetensors')) {
    const size = statSync(path).size
    const fd = openSync(path, 'r')
    try {
      const len = Buffer.alloc(8)
      if (size < 8 || readSync(fd, len, 0, 8, 0) !== 8) bad(`is ${size} bytes, too short for a safetensors header`)
      const n = Number(len.readBigUInt64LE(0))
      if (8 + n > size) bad(`has a safetensors header of ${n} bytes, past its end (${size} bytes)`)
      const header = Buffer.alloc(n)
      readSync(fd, header, 0, n, 8)
      let end = 0
      try {
        for (const [k, t] of Object.entries(JSON.parse(header.toString('utf8')) as Record<string, { data_offsets?: number[] }>)) {
          if (k !== '__metadata__') end = Math.max(end, t.data_offsets?.[1] ?? 0)
        }
      } catch (e) { bad(`has a safetensors header that is not valid JSON: ${(e as Error).message}`) }
      if (8 + n + end !== size) bad(`has tensors ending at byte ${8 + n + end}, the file has ${size}`)
    } finally {
      closeSync(fd)
    }
  }
}
