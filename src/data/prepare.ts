// prepare: Source -> GPT-2 tokens (on worker threads) -> llm.c shards. Pieces are batched in source order,
// tokenized by a pool, and written in submission order, so the bytes never depend on the worker count.
// Every document gets the end-of-text token in front (as llm.c's fineweb.py). The first valTokens tokens
// go to OUT/NAME_val_000000.bin, the rest to OUT/NAME_train_%06d.bin (from 000001) of shardSize tokens;
// OUT/NAME.json, written last, marks the output complete. Every file is written atomically.

import { mkdirSync, readdirSync, rmSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, resolve } from 'node:path'
import { EOT, TOKENIZER_NAME, VOCAB_SIZE } from '../tokenizer.js'
import { writeFileAtomic } from '../util/atomic.js'
import { InputError } from '../util/errors.js'
import { TokenizerPool } from './pool.js'
import { MAX_SHARD_TOKENS, shardPath, writeShard } from './shards.js'
import type { Source } from './sources/source.js'

export const prepareDefaults = {
  valTokens: 32_768,          // first tokens for validation: llm.c's tinyshakespeare split; FineWeb uses a whole shard
  shardSize: 100_000_000,     // tokens per train shard (llm.c's fineweb.py)
  batchChars: 1 << 18,        // characters per batch sent to a worker
  inFlightPerWorker: 3,       // batches queued per worker (bounds memory, keeps workers busy)
}

export interface PrepareOptions {
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

  constructor(private readonly outDir: string, private readonly name: string,
              private readonly valTokens: number, private readonly shardSize: number) {}

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
    writeShard(path, this.valChunks)
    this.val.push(path)
    this.valChunks = []
  }

  private flushTrain(): void {
    this.writeVal() // only once there is train data, so a too-small corpus leaves no shards behind
    const path = shardPath(this.outDir, this.name, 'train', this.train.length + 1)
    writeShard(path, this.chunks)
    this.train.push(path)
    this.chunks = []
    this.count = 0
  }

  finish(): void {
    if (this.trainTokens === 0) {
      throw new InputError(`prepare: the input has only ${this.valCount} tokens, all taken by --val-tokens ${this.valTokens}; ` +
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
  if (!Number.isSafeInteger(valTokens) || valTokens < 0 || valTokens > MAX_SHARD_TOKENS) throw new InputError(`prepare: valTokens must be in [0, ${MAX_SHARD_TOKENS}], got ${valTokens}`)
  if (!Number.isSafeInteger(shardSize) || shardSize < 1 || shardSize > MAX_SHARD_TOKENS) throw new InputError(`prepare: shardSize must be in [1, ${MAX_SHARD_TOKENS}], got ${shardSize}`)
  const outDir = resolve(opts.outDir)
  mkdirSync(outDir, { recursive: true })
  const metaPath = join(outDir, `${opts.name}.json`)
  rmSync(metaPath, { force: true }) // from here on the directory no longer claims to hold a complete output

  const start = performance.now()
  const sink = new ShardSink(outDir, opts.name, valTokens, shardSize)
  let documents = 0
  let tokens = 0
  await tokenizeInOrder(opts.source, { workers, allowSpecial: opts.allowSpecial ?? false }, (batch, docs, bytes) => {
    sink.add(batch)
    documents += docs
    tokens += batch.length
    opts.onProgress?.({ documents, tokens, bytes, totalBytes: opts.source.totalBytes, seconds: (performance.now() - start) / 1000 })
  })
  if (documents === 0) throw new InputError(`prepare: ${opts.source.label} holds no documents`)
  sink.finish()
  const seconds = (performance.now() - start) / 1000
  const result: PrepareResult = {
    name: opts.name, outDir, meta: metaPath, val: sink.val, train: sink.train, documents, tokens,
    valTokens: tokens - sink.trainTokens, trainTokens: sink.trainTokens, seconds, tokensPerSecond: tokens / seconds, workers,
  }
  removeStaleShards(outDir, opts.name, new Set([...sink.val, ...sink.train]))
  writeFileAtomic(metaPath, JSON.stringify(describeOutput(result, opts.source, shardSize), null, 2) + '\n')
  return result
}

/**
 * Streams the source's pieces in batches through a pool of `workers` tokenizer threads and hands each
 * batch's tokens (EOT before every document) to onBatch in source order, with its document count and the
 * input bytes read when it was submitted. At most workers·inFlightPerWorker batches are in flight.
 */
export async function tokenizeInOrder(source: Source, opts: { workers: number; allowSpecial: boolean },
                                      onBatch: (tokens: Uint16Array, documents: number, bytes: number) => void): Promise<void> {
  const pool = new TokenizerPool(opts.workers, opts.allowSpecial)
  const queue: { tokens: Promise<Uint16Array>; documents: number; bytes: number; ready: boolean }[] = []
  const maxInFlight = Math.max(1, opts.workers * prepareDefaults.inFlightPerWorker)
  const drainOne = async (): Promise<void> => {
    const head = queue.shift()!
    onBatch(await head.tokens, head.documents, head.bytes)
  }
  let texts: string[] = []
  let newDoc: boolean[] = []
  let chars = 0
  const submit = async (): Promise<void> => {
    const entry = { tokens: pool.submit(texts, newDoc), documents: newDoc.filter(d => d).length, bytes: source.bytesRead(), ready: false }
    entry.tokens.then(() => { entry.ready = true }, () => { /* rejections are awaited, in order, by drainOne */ })
    queue.push(entry)
    texts = []
    newDoc = []
    chars = 0
    while (queue.length >= maxInFlight || queue[0]?.ready === true) await drainOne()
  }
  try {
    for await (const piece of source.pieces()) {
      texts.push(piece.text)
      newDoc.push(piece.newDoc)
      chars += piece.text.length
      if (chars >= prepareDefaults.batchChars) await submit()
    }
    if (texts.length > 0) await submit()
    while (queue.length > 0) await drainOne()
  } finally {
    await pool.close()
  }
}

/** NAME.json: what was read, how it was tokenized, what was written. Reproducible: no timestamps; shard names relative to OUT. */
function describeOutput(r: PrepareResult, source: Source, shardSize: number): object {
  const rel = (p: string): string => p.slice(r.outDir.length + 1)
  return {
    name: r.name,
    format: 'llm.c token shards: 256 int32 header (20240520, 1, token count), then uint16 tokens',
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

/** Removes NAME_{train,val}_NNNNNN.bin files left by an earlier, larger prepare into the same directory. */
function removeStaleShards(outDir: string, name: string, keep: Set<string>): void {
  const re = new RegExp(`^${name.replace(/[.]/g, '\\.')}_(train|val)_\\d{6}\\.bin$`)
  for (const f of readdirSync(outDir)) {
    const p = join(outDir, f)
    if (re.test(f) && !keep.has(p)) rmSync(p, { force: true })
  }
}
