// prepare: Source -> GPT-2 tokens (on worker threads, pipeline.ts) -> llm.c shards. Tasks are tokenized by a
// pool and written in source order, so the bytes never depend on the worker count.
// Every document gets the end-of-text token in front (as llm.c's fineweb.py). The first valTokens tokens
// go to OUT/NAME_val_000000.bin, the rest to OUT/NAME_train_%06d.bin (from 000001) of shardSize tokens;
// OUT/NAME.json, written last, marks the output complete (OUT/NAME.incomplete meanwhile). Files are written atomically.

import { availableParallelism } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { EOT, TOKENIZER_NAME, VOCAB_SIZE } from '../tokenizer.js'
import { makeDirs, newFolders, removeEmptyFolders } from '../util/atomic.js'
import { InputError } from '../util/errors.js'
import { tokenizeInOrder } from './pipeline.js'
import { MAX_SHARD_TOKENS, removeStaleShards, SHARD_FORMAT, shardPath, ShardOutput } from './shards.js'
import type { Source } from './sources/source.js'

export const prepareDefaults = {
  valTokens: 32_768,          // first tokens for validation: llm.c's tinyshakespeare split; FineWeb uses a whole shard
  shardSize: 100_000_000,     // tokens per train shard (llm.c's fineweb.py)
}

interface PrepareOptions {
  source: Source
  outDir: string
  name: string                // output file prefix: [A-Za-z0-9._-]+
  valTokens?: number
  shardSize?: number
  workers?: number            // tokenizer threads; 0 tokenizes on the calling thread (default: all cores)
  allowSpecial?: boolean      // "<|endoftext|>" in the text becomes EOT instead of ordinary text
  onProgress?: (p: PrepareProgress) => void
}

export interface PrepareProgress {
  documents: number
  tokens: number
  bytes: number               // input bytes consumed
  totalBytes?: number
  seconds: number
}

export interface PrepareResult {
  name: string
  outDir: string
  meta: string                // path of NAME.json
  val: string[]               // shard paths
  train: string[]
  documents: number
  tokens: number
  valTokens: number
  trainTokens: number
  seconds: number
  tokensPerSecond: number
  workers: number
}

/** Receives tokens in order and writes the val shard and the train shards. */
class ShardSink {
  readonly val: string[] = []
  readonly train: string[] = []
  private valChunks: Uint16Array[] = []
  private valCount = 0
  private chunks: Uint16Array[] = []
  private count = 0
  trainTokens = 0
  readonly output: ShardOutput

  constructor(private readonly outDir: string, private readonly name: string,
              private readonly valTokens: number, private readonly shardSize: number) {
    this.output = new ShardOutput(outDir, name)
  }

  add(tokens: Uint16Array): void { // (n)
    let t = tokens
    if (this.valCount < this.valTokens) {
      const take = Math.min(this.valTokens - this.valCount, t.length)
      this.valChunks.push(t.subarray(0, take))
      this.valCount += take
      t = t.subarray(take)
    }
    while (t.length > 0) {
      const take = Math.min(this.shardSize - this.count, t.length)
      this.chunks.push(t.subarray(0, take))
      this.count += take
      this.trainTokens += take
      t = t.subarray(take)
      if (this.count === this.shardSize) this.flushTrain()
    }
  }

  private writeVal(): void {
    if (this.valTokens === 0 || this.val.length > 0) return
    const path = shardPath(this.outDir, this.name, 'val', 0)
    this.output.write(path, this.valChunks)
    this.val.push(path)
    this.valChunks = []
  }

  private flushTrain(): void {
    this.writeVal() // only once there is train data, so a too-small corpus leaves no shards behind
    const path = shardPath(this.outDir, this.name, 'train', this.train.length + 1)
    this.output.write(path, this.chunks)
    this.train.push(path)
    this.chunks = []
    this.count = 0
  }

  finish(): void {
    if (this.trainTokens === 0) {
      throw new InputError(`prepare: the input has only ${this.valCount.toLocaleString('en-US')} tokens, all taken by --val-tokens ${this.valTokens}; ` +
        'nothing is left for training (lower --val-tokens)')
    }
    if (this.count > 0) this.flushTrain()
    this.writeVal()
  }
}

export function checkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new InputError(`prepare: --name must be letters, digits, '.', '_' or '-' (starting with a letter or digit), got "${name}"`)
  }
}

/** Runs the whole pipeline; see the file header for the output layout. */
export async function prepare(opts: PrepareOptions): Promise<PrepareResult> {
  const valTokens = opts.valTokens ?? prepareDefaults.valTokens
  const shardSize = opts.shardSize ?? prepareDefaults.shardSize
  const workers = opts.workers ?? availableParallelism()
  checkName(opts.name)
  if (!Number.isSafeInteger(valTokens) || valTokens < 0 || valTokens > MAX_SHARD_TOKENS) throw new InputError(
    `prepare: valTokens must be in [0, ${MAX_SHARD_TOKENS}], got ${valTokens}`)
  if (!Number.isSafeInteger(shardSize) || shardSize < 1 || shardSize > MAX_SHARD_TOKENS) throw new InputError(
    `prepare: shardSize must be in [1, ${MAX_SHARD_TOKENS}], got ${shardSize}`)
  const outDir = resolve(opts.outDir), created = newFolders(outDir)
  makeDirs(outDir)
  try {
    return await prepareInto(outDir, opts, { valTokens, shardSize, workers })
  } catch (e) {
    removeEmptyFolders(created)   // a refused input leaves no new, empty --out behind
    throw e
  }
}

async function prepareInto(outDir: string, opts: PrepareOptions, s: { valTokens: number; shardSize: number; workers: number }):
  Promise<PrepareResult> {
  const { valTokens, shardSize, workers } = s
  const metaPath = join(outDir, `${opts.name}.json`)

  const start = performance.now()
  const sink = new ShardSink(outDir, opts.name, valTokens, shardSize)
  let documents = 0
  let tokens = 0
  const source = opts.source, invalid = new Map<string, { rows: number; first: number }>()   // by file, in order
  await tokenizeInOrder(source.items(), { workers, allowSpecial: opts.allowSpecial ?? false, bytesRead: () => source.bytesRead() }, b => {
    sink.add(b.tokens)
    if (b.invalidUtf8 !== undefined) {
      const { path, rows, first } = b.invalidUtf8, was = invalid.get(path)
      invalid.set(path, { rows: (was?.rows ?? 0) + rows, first: was?.first ?? first })
    }
    documents += b.documents
    tokens += b.tokens.length
    opts.onProgress?.({ documents, tokens, bytes: b.bytes, totalBytes: source.totalBytes, seconds: (performance.now() - start) / 1000 })
  })
  for (const [path, r] of invalid) source.invalidUtf8?.(path, r.rows, r.first)
  if (documents === 0) {   // the inputs by path (the label names files by base name, for NAME.json)
    const ins = opts.source.inputs, listed = ins.slice(0, 3).join(', ') + (ins.length > 3 ? `, ... (${ins.length} inputs)` : '')
    throw new InputError(`prepare: ${listed} hold${ins.length === 1 ? 's' : ''} no documents (only blank lines, or no rows?)`)
  }
  sink.finish()
  const seconds = (performance.now() - start) / 1000
  const result: PrepareResult = {
    name: opts.name, outDir, meta: metaPath, val: sink.val, train: sink.train, documents, tokens,
    valTokens: tokens - sink.trainTokens, trainTokens: sink.trainTokens, seconds, tokensPerSecond: tokens / seconds, workers,
  }
  removeStaleShards(outDir, opts.name, new Set([...sink.val, ...sink.train].map(p => basename(p))))
  sink.output.complete(describeOutput(result, opts.source, shardSize))
  return result
}

/** NAME.json: what was read, how it was tokenized, what was written. Reproducible: no timestamps; shard names relative to OUT. */
function describeOutput(r: PrepareResult, source: Source, shardSize: number): object {
  const rel = (p: string): string => p.slice(r.outDir.length + 1)
  return {
    name: r.name,
    format: SHARD_FORMAT,
    tokenizer: { name: TOKENIZER_NAME, vocabSize: VOCAB_SIZE, eot: EOT, eotBeforeEachDocument: true },
    source: source.label,
    inputs: source.inputs,
    documents: r.documents,
    tokens: r.tokens,
    valTokens: r.valTokens,
    trainTokens: r.trainTokens,
    shardSize,
    val: r.val.map(rel),
    train: r.train.map(rel),
  }
}
