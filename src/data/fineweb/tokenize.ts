// Parquet files -> llm.c shards of exactly shardSize tokens, resumable. The first shard is validation
// (NAME_val_000000.bin), then NAME_train_000001.bin, ... as llm.c's fineweb.py and as `prepare` with
// valTokens = shardSize (the bytes are identical). Worker threads read and tokenize Parquet tasks themselves
// (pipeline.ts); after every shard, OUT/NAME.resume.json records where the next one starts, so a re-run keeps every
// complete shard.

import { existsSync, readFileSync, rmSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { EOT, TOKENIZER_NAME, VOCAB_SIZE } from '../../tokenizer.js'
import { makeDirs, writeFileAtomic } from '../../util/atomic.js'
import { InputError } from '../../util/errors.js'
import { tokenizeInOrder, type PipelineItem } from '../pipeline.js'
import { prepareDefaults } from '../prepare.js'
import { MAX_SHARD_TOKENS, readShardHeader, removeStaleShards, SHARD_FORMAT, shardPath, ShardOutput } from '../shards.js'
import { openParquet, planParquet } from '../sources/parquet.js'
import { RateMeter } from '../../util/progress.js'

export interface ShardInput {
  label: string                  // stable name recorded in the state and NAME.json (the hub path)
  size: number                   // bytes, from the listing
  ready: () => Promise<string>   // the local path once the file is complete (waits for its download)
}

interface TokenizeShardsOptions {
  inputs: ShardInput[]           // in document order
  outDir: string
  name: string                   // shard prefix (fineweb, edufineweb)
  source: string                 // one line for NAME.json
  shardSize?: number             // tokens per shard (default 100M, as llm.c)
  workers?: number               // tokenizer threads; 0 tokenizes on the calling thread
  signal?: AbortSignal
  onProgress?: (p: ShardsProgress) => void
  onNote?: (line: string) => void   // an unfinished run's shards not kept, and why
}

export interface ShardsProgress {
  shards: number; tokens: number; documents: number
  bytes: number; totalBytes: number          // Parquet bytes behind the tokens so far (approximate)
  tokensPerSecond: number; etaSeconds?: number; seconds: number
  waitingFor?: string                        // a file still downloading
}

export interface ShardsResult {
  outDir: string; meta: string; val: string[]; train: string[]
  documents: number; tokens: number; shardSize: number
  resumedShards: number          // complete shards found and kept from an earlier run
  seconds: number; tokensPerSecond: number; workers: number
}

/** A point in the input: row `row` of input `file`, piece `piece` of that document (documentPieces). */
interface Position { file: number; row: number; piece: number }

// OUT/NAME.resume.json: `next` is the (file, row, piece) of a task start plus tokens to skip. Documents are tokenized
// independently, so tokenizing from any piece gives the same ids as the uninterrupted run.
interface ResumeState {
  version: 1; name: string; shardSize: number
  inputs: { label: string; size: number }[]
  shards: string[]                            // complete shard file names, in order
  next: Position & { skip: number }           // where shard shards.length starts: skip tokens from there
  documents: number                           // documents begun before next
}

const START: ResumeState['next'] = { file: 0, row: 0, piece: 0, skip: 0 }

export function resumePath(outDir: string, name: string): string {
  return join(outDir, `${name}.resume.json`)
}

function shardFile(outDir: string, name: string, index: number): string {
  return shardPath(outDir, name, index === 0 ? 'val' : 'train', index)
}

/** The saved state if it belongs to these inputs and settings and its shards are intact; else undefined. */
function loadState(outDir: string, name: string, shardSize: number, inputs: ShardInput[],
                   note: (line: string) => void): ResumeState | undefined {
  try {
    const s = JSON.parse(readFileSync(resumePath(outDir, name), 'utf8')) as ResumeState
    const same = s.version === 1 && s.name === name && s.inputs.length === inputs.length &&
      s.inputs.every((x, i) => x.label === inputs[i]!.label && x.size === inputs[i]!.size)
    if (!same) return undefined
    if (s.shardSize !== shardSize) {   // the same data cut otherwise: its shards would not continue
      note(`fineweb: ${resumePath(outDir, name)} is an unfinished run with --shard-size ${s.shardSize}; its ${s.shards.length} ` +
        `shards are made again with --shard-size ${shardSize} (give --shard-size ${s.shardSize} to continue it instead)`)
      return undefined
    }
    s.shards.forEach((f, i) => {
      if (f !== basename(shardFile(outDir, name, i)) || readShardHeader(join(outDir, f)).tokens !== shardSize) throw new Error('shard changed')
    })
    return s
  } catch {
    return undefined
  }
}

/** Parquet tasks from `from` on, each tagged with the position it starts at. Waits for each file's download. */
async function* tasksFrom(inputs: ShardInput[], from: Position,
                          counter: { bytes: number; waitingFor?: string }): AsyncGenerator<PipelineItem<Position>> {
  for (let i = 0; i < from.file; i++) counter.bytes += inputs[i]!.size
  for (let f = from.file; f < inputs.length; f++) {
    counter.waitingFor = inputs[f]!.label
    const path = await inputs[f]!.ready()
    counter.waitingFor = undefined
    const pq = await openParquet(path, 'text')
    const start = counter.bytes
    try {
      const resume = f === from.file ? { fromRow: from.row, fromPiece: from.piece } : {}
      for await (const task of planParquet(pq, 'text', resume)) {
        counter.bytes += task.bytes
        yield { parquet: task, at: { file: f, row: task.parts[0]!.rows[0], piece: task.firstPiece } }
      }
    } finally {
      await pq.close()
    }
    counter.bytes = start + inputs[f]!.size
  }
}

/** Collects tokens into shards of exactly shardSize; writes each full one and then the resume state. */
class ShardWriter {
  private chunks: Uint16Array[] = []
  private count = 0
  readonly output: ShardOutput
  tokens: number

  constructor(private readonly outDir: string, private readonly opts: TokenizeShardsOptions, private readonly shardSize: number,
              readonly state: ResumeState) {
    this.tokens = state.shards.length * shardSize
    this.output = new ShardOutput(outDir, opts.name)
  }

  // tokens: (n) ids starting `offset` tokens after position `at`, where `documents` documents had begun
  add(tokens: Uint16Array, at: Position, offset: number, documents: number): void {
    let used = 0
    while (used < tokens.length) {
      const take = Math.min(this.shardSize - this.count, tokens.length - used)
      this.chunks.push(tokens.subarray(used, used + take))
      this.count += take
      this.tokens += take
      used += take
      if (this.count === this.shardSize) this.writeShard({ ...at, skip: offset + used }, documents)
    }
  }

  private writeShard(next: ResumeState['next'] | undefined, documents: number): void {
    const path = shardFile(this.outDir, this.opts.name, this.state.shards.length)
    this.output.write(path, this.chunks)
    this.chunks = []
    this.count = 0
    this.state.shards.push(basename(path))
    if (next !== undefined) {
      this.state.next = next
      this.state.documents = documents
      writeFileAtomic(resumePath(this.outDir, this.opts.name), JSON.stringify(this.state) + '\n')
    }
  }

  /** Writes the last, partial shard. */
  finish(): void {
    if (this.count > 0) this.writeShard(undefined, 0)
  }
}

/** Tokenizes the inputs into OUT/NAME_{val,train}_NNNNNN.bin, continuing an interrupted run; see the header. */
export async function tokenizeToShards(opts: TokenizeShardsOptions): Promise<ShardsResult> {
  const shardSize = opts.shardSize ?? prepareDefaults.shardSize
  const workers = opts.workers ?? 1
  if (!Number.isSafeInteger(shardSize) || shardSize < 1 || shardSize > MAX_SHARD_TOKENS) throw new InputError(
    `fineweb: shardSize must be in [1, ${MAX_SHARD_TOKENS}], got ${shardSize}`)
  const outDir = resolve(opts.outDir)
  makeDirs(outDir)
  const done = findCompleteOutput(outDir, opts, shardSize)
  if (done !== undefined) return done
  const state: ResumeState = loadState(outDir, opts.name, shardSize, opts.inputs, opts.onNote ?? (() => {})) ??
    { version: 1, name: opts.name, shardSize, inputs: opts.inputs.map(x => ({ label: x.label, size: x.size })), shards: [],
      next: START, documents: 0 }
  const resumedShards = state.shards.length
  const sink = new ShardWriter(outDir, opts, shardSize, state)
  const counter: { bytes: number; waitingFor?: string } = { bytes: 0 }
  const totalBytes = opts.inputs.reduce((n, x) => n + x.size, 0)
  const start = performance.now()
  const meter = new RateMeter()
  const startTokens = sink.tokens
  const rate = (): number => (sink.tokens - startTokens) / Math.max((performance.now() - start) / 1000, 1e-9)
  let toSkip = state.next.skip // tokens of the first batches already in kept shards
  let documents = state.documents
  const pipeline = { workers, allowSpecial: false, bytesRead: () => counter.bytes, ...(opts.signal === undefined ? {} : { signal: opts.signal }) }
  await tokenizeInOrder(tasksFrom(opts.inputs, state.next, counter), pipeline, b => { // llm.c: encode_ordinary, "<|endoftext|>" in text is text
    const t = b.tokens
    const drop = Math.min(toSkip, t.length)
    toSkip -= drop
    const before = documents
    documents += b.documents
    sink.add(t.subarray(drop), b.at!, drop, before)
    meter.add(b.bytes)
    const etaSeconds = meter.eta(totalBytes - b.bytes)
    opts.onProgress?.({
      shards: state.shards.length, tokens: sink.tokens, documents, bytes: b.bytes, totalBytes,
      tokensPerSecond: rate(), seconds: (performance.now() - start) / 1000,
      ...(etaSeconds === undefined ? {} : { etaSeconds }), ...(counter.waitingFor === undefined ? {} : { waitingFor: counter.waitingFor }),
    })
  })
  if (sink.tokens <= shardSize) {
    throw new InputError(`fineweb: the input has only ${sink.tokens} tokens, not more than one shard of ${shardSize}: ` +
      `nothing is left for training after the validation shard (lower --shard-size)`)
  }
  sink.finish()
  // the last report counts the short last shard too (the per-batch ones came before it was written)
  opts.onProgress?.({ shards: state.shards.length, tokens: sink.tokens, documents, bytes: totalBytes, totalBytes,
    tokensPerSecond: rate(), seconds: (performance.now() - start) / 1000, etaSeconds: 0 })
  const result = describeResult(outDir, opts.name, state.shards, { documents, tokens: sink.tokens, shardSize, resumedShards,
    seconds: (performance.now() - start) / 1000, tokensPerSecond: rate(), workers })
  removeStaleShards(outDir, opts.name, new Set(state.shards))
  sink.output.complete(outputMeta(result, opts))
  rmSync(resumePath(outDir, opts.name), { force: true })
  return result
}

type Totals = Pick<ShardsResult, 'documents' | 'tokens' | 'shardSize' | 'resumedShards' | 'seconds' | 'tokensPerSecond' | 'workers'>

function describeResult(outDir: string, name: string, shards: string[], t: Totals): ShardsResult {
  const paths = shards.map(f => join(outDir, f))
  return { outDir, meta: join(outDir, `${name}.json`), val: paths.slice(0, 1), train: paths.slice(1), ...t }
}

/** NAME.json in prepare's layout: the output is complete when it exists. No timestamps, no absolute paths. */
function outputMeta(r: ShardsResult, opts: TokenizeShardsOptions): object {
  const rel = (p: string): string => basename(p)
  const valTokens = Math.min(r.tokens, r.shardSize)
  return {
    name: opts.name,
    format: SHARD_FORMAT,
    tokenizer: { name: TOKENIZER_NAME, vocabSize: VOCAB_SIZE, eot: EOT, eotBeforeEachDocument: true },
    source: opts.source,
    inputs: opts.inputs.map(x => x.label),
    inputBytes: opts.inputs.map(x => x.size),
    documents: r.documents,
    tokens: r.tokens,
    valTokens,
    trainTokens: r.tokens - valTokens,
    shardSize: r.shardSize,
    val: r.val.map(rel),
    train: r.train.map(rel),
  }
}

/** The result of an earlier complete run over the same inputs and settings, with every shard intact. */
export function findCompleteOutput(outDir: string, opts: Pick<TokenizeShardsOptions, 'name' | 'source' | 'inputs'>,
                                   shardSize: number): ShardsResult | undefined {
  const path = join(outDir, `${opts.name}.json`)
  if (!existsSync(path)) return undefined
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as { source: string; inputs: string[]; inputBytes: number[]; shardSize: number;
      documents: number; tokens: number; val: string[]; train: string[] }
    const same = m.source === opts.source && m.shardSize === shardSize && m.inputs.length === opts.inputs.length &&
      opts.inputs.every((x, i) => m.inputs[i] === x.label && m.inputBytes[i] === x.size)
    if (!same) return undefined
    const shards = [...m.val, ...m.train]
    let tokens = 0
    for (const f of shards) tokens += readShardHeader(join(outDir, f)).tokens
    if (tokens !== m.tokens) return undefined
    return describeResult(outDir, opts.name, shards,
      { documents: m.documents, tokens, shardSize, resumedShards: shards.length, seconds: 0, tokensPerSecond: 0, workers: 0 })
  } catch {
    return undefined
  }
}
