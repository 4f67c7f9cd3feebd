// HellaSwag data: the JSONL format of rowanz/hellaswag (one example per line: ind, activity_label, ctx_a,
// ctx_b, ctx, endings[4], label), validated line by line, and the public val/train files downloaded once into
// the cache's hellaswag/ folder (util/cache.ts: ~/.cache/llmts/hellaswag by default) when no --data file is given.

import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkOutputDir, makeDirs, writeFileAtomic } from '../util/atomic.js'
import { cacheRoot } from '../util/cache.js'
import { fsReason, InputError, shown } from '../util/errors.js'

export interface HellaswagExample {
  ind: number              // the dataset's own example id
  activityLabel: string
  ctxA: string
  ctxB: string
  ctx: string              // ctx_a + " " + ctx_b as the dataset stores it (llm.c scores this)
  endings: string[]        // always four
  label: number            // 0..3, the gold ending
  sourceId?: string
}

type HellaswagSplit = 'val' | 'train'

const HELLASWAG_URLS: Record<HellaswagSplit, string> = {
  val: 'https://raw.githubusercontent.com/rowanz/hellaswag/master/data/hellaswag_val.jsonl',
  train: 'https://raw.githubusercontent.com/rowanz/hellaswag/master/data/hellaswag_train.jsonl',
}

/** Parses HellaSwag JSONL text; every problem is an InputError naming `path` and the 1-based line. */
export function parseHellaswagJsonl(text: string, path: string): HellaswagExample[] {
  const out: HellaswagExample[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === '') continue
    const where = `${path}:${i + 1}`
    let raw: unknown
    try { raw = JSON.parse(line) } catch {
      throw new InputError(`hellaswag: ${where} is not valid JSON (expected one HellaSwag example per line)`)
    }
    out.push(toExample(raw, where))
  }
  if (out.length === 0) throw new InputError(`hellaswag: ${path} has no examples (expected HellaSwag JSONL)`)
  return out
}

function toExample(raw: unknown, where: string): HellaswagExample {
  const bad = (what: string): never => { throw new InputError(`hellaswag: ${where}: ${what} (not a HellaSwag JSONL line?)`) }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('expected a JSON object')
  const o = raw as Record<string, unknown>
  const str = (k: string): string => {
    const v = o[k]
    if (typeof v !== 'string') bad(`"${k}" must be a string, got ${shown(v)}`)   // shown: a long value is cut
    return v as string
  }
  const endings = o['endings']
  if (!Array.isArray(endings) || endings.length !== 4 || !endings.every(e => typeof e === 'string')) {
    bad('"endings" must be an array of 4 strings')
  }
  const label = typeof o['label'] === 'string' && /^\d+$/.test(o['label']) ? Number(o['label']) : o['label']
  if (typeof label !== 'number' || !Number.isInteger(label) || label < 0 || label > 3) {
    bad(`"label" must be 0..3, got ${label === undefined ? 'nothing (the test split has no labels)' : shown(label)}`)
  }
  const ctxA = str('ctx_a'), ctxB = str('ctx_b')
  const ctx = o['ctx'] === undefined ? (ctxB === '' ? ctxA : `${ctxA} ${ctxB}`) : str('ctx')
  const ind = typeof o['ind'] === 'number' ? o['ind'] : -1
  return {
    ind, activityLabel: str('activity_label'), ctxA, ctxB, ctx, endings: endings as string[], label: label as number,
    ...(typeof o['source_id'] === 'string' ? { sourceId: o['source_id'] } : {}),
  }
}

/** Reads and parses a HellaSwag JSONL file. */
export function readHellaswagFile(path: string): HellaswagExample[] {
  let text: string
  try { text = readFileSync(path, 'utf8') } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'EISDIR') throw new InputError(`hellaswag: ${path} is a directory (expected a HellaSwag JSONL file)`)
    throw new InputError(`hellaswag: cannot read ${path}: ${fsReason(e)}`)
  }
  return parseHellaswagJsonl(text, path)
}

/** The hellaswag folder of the cache root (util/cache.ts). */
export function hellaswagCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'hellaswag')
}

interface DownloadOptions {
  cacheDir?: string
  /** Injected in tests; defaults to the global fetch. */
  fetch?: (url: string) => Promise<{ ok: boolean; status: number; text(): Promise<string> }>
  onStatus?: (message: string) => void
  /** The flag that names a local copy instead, for the offline hint (default --data, or --train-data for train). */
  fileFlag?: string
}

/**
 * The cached copy of a split, downloading it first when absent. The download is validated as HellaSwag JSONL
 * before it is written (atomically), so a captive portal page or a truncated transfer never enters the cache.
 */
export async function ensureHellaswagFile(split: HellaswagSplit, opts: DownloadOptions = {}): Promise<string> {
  const dir = opts.cacheDir ?? hellaswagCacheDir()
  const path = join(dir, `hellaswag_${split}.jsonl`)
  if (existsSync(path)) return path
  const url = HELLASWAG_URLS[split]
  const flag = opts.fileFlag ?? (split === 'val' ? '--data' : '--train-data')
  // a cache that cannot hold the file is said first: the offline hint below would name a place it cannot go
  checkOutputDir('hellaswag', 'the cache folder', dir)
  opts.onStatus?.(`hellaswag: downloading ${url} into ${dir}`)
  const doFetch = opts.fetch ?? ((u: string) => fetch(u))
  let text: string
  try {
    const res = await doFetch(url)
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    text = await res.text()
  } catch (e) {
    const why = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message
    throw new InputError(`hellaswag: cannot download ${url} (${why}; offline?): pass ${flag} FILE.jsonl, or put the file at ${path}`)
  }
  parseHellaswagJsonl(text, url)
  makeDirs(dir)
  writeFileAtomic(path, text)
  return path
}

/**
 * Examples of a split: from `file` when given, else from the cache (downloaded once). `limit` keeps the first N.
 * This is what `llmts eval hellaswag` and training's --hellaswag-every use.
 */
export async function loadHellaswag(split: HellaswagSplit,
                                    opts: { file?: string; limit?: number } & DownloadOptions = {}): Promise<HellaswagExample[]> {
  const path = opts.file ?? await ensureHellaswagFile(split, opts)
  const all = readHellaswagFile(path)
  return opts.limit !== undefined ? all.slice(0, opts.limit) : all
}
