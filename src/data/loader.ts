// Training batches from sorted token shards with llm.c's semantics. A shard holds floor((ntok-1)/(W·B·T))
// windows of W·B·T tokens; rank r of W reads tokens [k·W·B·T + r·B·T, +B·T+1) of window k (inputs = the
// first B·T, targets = the same shifted by one); after the last window it moves to the next shard at 0, and
// after the last shard back to the first. With shuffle, shard order (per epoch) and window order (per shard)
// are seeded permutations, identical on every rank. state()/restore() continue bit-exactly. Each batch is one
// positioned read of its B·T+1 tokens from the open shard (llm.c's fseek + fread), so a rank holds one window, not
// the shard; the state also fingerprints every shard, for a resume to tell changed data.

import { basename } from 'node:path'
import { Rng, type RngState } from '../util/rng.js'
import { check, InputError } from '../util/errors.js'
import { plural } from '../util/progress.js'
import { readShardHeader } from './shards.js'
import { ShardReader, shardChange, shardPrint, type ShardPrint } from './shard-reader.js'

interface Batch { inputs: Int32Array; targets: Int32Array }   // (B,T) each

/** Anything that yields (B,T) inputs and their next-token targets; the DataLoader is one. */
export interface BatchSource {
  next(): Batch
}

/** Windows of `windowTokens` (W·B·T) a shard of `tokens` tokens holds: each needs one more token, the last target. */
export function batchesIn(tokens: number, windowTokens: number): number {
  return Math.max(0, Math.floor((tokens - 1) / windowTokens))
}

/** A validation split's shards that hold one batch of B·T+1 tokens (one process's: W = 1), and a note naming those
 *  that do not (null when none): a split's last shard may be short, and the others still give batches (eval loss,
 *  train's val loader). None that holds one is an InputError naming `where` and the size needed. */
export function shardsWithBatch(files: string[], bt: { B: number; T: number }, where: string): { files: string[]; skipped: string | null } {
  const need = bt.B * bt.T + 1
  const sized = files.map(path => ({ path, tokens: readShardHeader(path).tokens }))
  const small = sized.filter(s => s.tokens < need)
  if (small.length === files.length) {
    throw new InputError(`loader: no shard of ${where} holds one batch of B·T+1 = ${need} tokens (B ${bt.B} × T ${bt.T}); ` +
      `the largest holds ${Math.max(...sized.map(s => s.tokens))} (lower --batch-size/--seq-len or prepare more tokens)`)
  }
  if (small.length === 0) return { files, skipped: null }
  const named = small.slice(0, 3).map(s => `${s.path} (${s.tokens} tokens)`).join(', ')
  return {
    files: sized.filter(s => s.tokens >= need).map(s => s.path),
    skipped: `note: skipping ${small.length} ${plural(small.length, 'shard')} of ${where} smaller than one batch of ` +
      `B·T+1 = ${need} tokens: ${named}${small.length > 3 ? `, and ${small.length - 3} more` : ''}`,
  }
}

/** A BatchSource whose position can be saved and restored (what the trainer needs; the DataLoader is one). */
export interface RestorableSource extends BatchSource {
  /** prints: for a checkpoint (which data the position is in), not the per-step save of a position to rewind to */
  state(opts?: { prints?: boolean }): unknown
  restore(state: unknown): void
}

export interface LoaderState {
  shard: number                                   // index into the shard order of the current epoch
  pos: number                                     // token offset of the next window in that shard (a multiple of W·B·T)
  rng?: [number, number, number, number]          // shuffle: RNG state before this shard's window permutation
  order?: number[]                                // shuffle: shard order of the current epoch
  shards?: ShardPrint[]                           // every file's fingerprint, in files order (absent before fingerprints)
}

interface LoaderOptions {
  files: string[]       // shard paths, in order (listShards sorts them)
  B: number             // sequences per micro-batch
  T: number             // tokens per sequence
  rank?: number         // data-parallel rank r (default 0)
  worldSize?: number    // W (default 1)
  shuffle?: boolean     // seeded permutation of shards and windows (default off, as llm.c)
  seed?: number         // shuffle seed (default 42)
  vocabSize?: number    // ids are validated against it when a shard is loaded (default 50257)
}

export class DataLoader {
  readonly files: string[]
  readonly B: number
  readonly T: number
  readonly rank: number
  readonly worldSize: number
  readonly shuffle: boolean
  private readonly seed: number
  private readonly vocabSize: number | undefined
  private readonly windows: number[]          // (files.length) windows per shard
  private rng: Rng
  private rngAtLoad: RngState = [0, 0, 0, 0]
  private order: number[] = []
  private shardIdx = 0
  private sample = 0                          // next window (index into perm) in the current shard
  private perm: Int32Array | null = null      // (windows) shuffled window order
  private reader: ShardReader | null = null    // the current shard, open
  private prints: ShardPrint[] | null = null   // (files.length) computed at the first state({ prints }) or shardChanges()

  constructor(opts: LoaderOptions) {
    const { B, T } = opts
    this.rank = opts.rank ?? 0
    this.worldSize = opts.worldSize ?? 1
    check(Number.isSafeInteger(B) && B >= 1 && Number.isSafeInteger(T) && T >= 1, `loader: B and T must be positive integers, got B=${B} T=${T}`)
    check(Number.isSafeInteger(this.worldSize) && this.worldSize >= 1, `loader: worldSize must be a positive integer, got ${this.worldSize}`)
    check(Number.isSafeInteger(this.rank) && this.rank >= 0 && this.rank < this.worldSize,
      `loader: rank must be in [0, ${this.worldSize}), got ${this.rank}`)
    check(opts.files.length > 0, 'loader: no shard files given')
    this.files = [...opts.files]
    this.B = B
    this.T = T
    this.shuffle = opts.shuffle ?? false
    this.seed = opts.seed ?? 42
    this.vocabSize = opts.vocabSize
    const need = this.worldSize * B * T + 1
    this.windows = this.files.map(f => {
      const { tokens } = readShardHeader(f)
      check(tokens >= need, `loader: ${f} has ${tokens} tokens, fewer than the ${need} that one batch needs ` +
        `(W·B·T+1 with W=${this.worldSize} B=${B} T=${T}; lower --batch-size/--seq-len or prepare more tokens)`)
      return batchesIn(tokens, this.worldSize * B * T)
    })
    this.rng = new Rng(this.seed)
    try {
      this.reset()
      // the first batch's ids are checked now, so shards of another tokenizer are refused before a run touches --out
      this.readWindow(this.perm === null ? 0 : this.perm[0]!)
    } catch (e) {
      this.close()   // no caller can close a loader that was never returned: its open shard would stay open
      throw e
    }
  }

  /** Batches this rank reads in one pass over the files, before the data wraps around (its windows). */
  get batchesPerPass(): number {
    return this.windows.reduce((a, b) => a + b, 0)
  }

  private get windowTokens(): number {
    return this.worldSize * this.B * this.T
  }

  /** Back to the very first batch (the same sequence as a freshly constructed loader). */
  reset(): void {
    this.rng = new Rng(this.seed)
    this.order = this.files.map((_, i) => i)
    if (this.shuffle) this.rng.shuffle(this.order)
    this.loadShard(0)
  }

  private loadShard(shardIdx: number): void {
    const file = this.order[shardIdx]!
    this.openShard(file)
    this.shardIdx = shardIdx
    this.sample = 0
    this.rngAtLoad = this.rng.state()
    this.perm = null
    if (this.shuffle) {
      const idx = Array.from({ length: this.windows[file]! }, (_, i) => i)
      this.perm = Int32Array.from(this.rng.shuffle(idx))
    }
  }

  // makes files[file] the open shard; the new one is opened before the old is closed, so a shard that fails to open
  // leaves the loader as it was (restore refuses such a state whole)
  private openShard(file: number): void {
    if (this.reader?.path === this.files[file]) return
    const reader = new ShardReader(this.files[file]!, this.vocabSize)
    this.reader?.close()
    this.reader = reader
  }

  private advance(): void {
    if (this.shardIdx + 1 < this.files.length) { this.loadShard(this.shardIdx + 1); return }
    if (this.shuffle) this.rng.shuffle(this.order) // a new shard order every epoch
    this.loadShard(0)
  }

  /** The next micro-batch: inputs and targets, each (B, T) int32. */
  next(): Batch {
    if (this.sample >= this.windows[this.order[this.shardIdx]!]!) this.advance()
    const src = this.readWindow(this.perm === null ? this.sample : this.perm[this.sample]!)
    const n = this.B * this.T
    const inputs = new Int32Array(n)    // (B, T)
    const targets = new Int32Array(n)   // (B, T)
    inputs.set(src.subarray(0, n))
    targets.set(src.subarray(1, n + 1))
    this.sample++
    return { inputs, targets }
  }

  // (B·T+1) this rank's tokens of window `window` of the current shard, reopened after close()
  private readWindow(window: number): Uint16Array {
    this.reader ??= new ShardReader(this.files[this.order[this.shardIdx]!]!, this.vocabSize)
    return this.reader.read(window * this.windowTokens + this.rank * this.B * this.T, this.B * this.T + 1)
  }

  /** Closes the open shard; a later next() opens it again. */
  close(): void {
    this.reader?.close()
    this.reader = null
  }

  private fingerprints(): ShardPrint[] {
    this.prints ??= this.files.map(shardPrint)
    return this.prints
  }

  /** The shards whose size or sampled bytes differ from those `s` recorded under the same name, each said in a few
   *  words; none for a state without fingerprints (checkpoints older than them). */
  shardChanges(s: LoaderState): string[] {
    if (s.shards === undefined) return []
    // the k-th file of a name is paired with the k-th recorded under it: a glob over folders may name 'a/x.bin' and 'b/x.bin'
    const now = new Map<string, number[]>()
    this.files.forEach((f, i) => now.set(basename(f), [...now.get(basename(f)) ?? [], i]))
    const out: string[] = []
    for (const was of s.shards) {
      const i = now.get(was.name)?.shift()
      const change = i === undefined ? null : shardChange(was, this.fingerprints()[i]!)
      if (change !== null) out.push(change)
    }
    return out
  }

  /** JSON-serializable position; restore(state) on a loader with the same files and B, T, W continues exactly.
   *  prints: with every shard's fingerprint (a checkpoint's state; read once, 3 × 64 KiB a shard), so a resume can tell
   *  changed data; the trainer's per-step states (every rank, the val loader) go without. */
  state(opts: { prints?: boolean } = {}): LoaderState {
    const s: LoaderState = { shard: this.shardIdx, pos: this.sample * this.windowTokens }
    if (this.shuffle) {
      s.rng = [...this.rngAtLoad]
      s.order = [...this.order]
    }
    if (opts.prints === true) s.shards = this.fingerprints()   // shared, not copied: serialized by the checkpoint
    return s
  }

  /** Atomic: the whole state is checked (and its shard opened) before anything changes, so a refused one leaves
   *  the loader where it was (a caller may go on with it). */
  restore(s: LoaderState): void {
    const bad = (why: string): never => {
      throw new InputError(`loader: cannot restore state ${JSON.stringify(s).slice(0, 200)}: ${why} (checkpoint from other data or other B/T/W?)`)
    }
    if (typeof s !== 'object' || s === null || Array.isArray(s)) bad('it must be an object {"shard", "pos", ...}')
    if (!Number.isSafeInteger(s.shard) || s.shard < 0 || s.shard >= this.files.length) bad(`shard must be in [0, ${this.files.length})`)
    let order = this.order
    if (this.shuffle) {
      if (!Array.isArray(s.order) || s.order.length !== this.files.length || [...s.order].sort((a, b) => a - b).some((v, i) => v !== i)) {
        bad(`order must be a permutation of 0..${this.files.length - 1}`)
      }
      if (!Array.isArray(s.rng) || s.rng.length !== 4 ||
          s.rng.some(v => !Number.isInteger(v) || v < 0 || v > 0xffffffff)) bad('rng must be 4 uint32 words')
      order = [...s.order!]
    } else if (s.order !== undefined || s.rng !== undefined) bad('it is a shuffled state but this loader does not shuffle')
    if (s.shards !== undefined && (!Array.isArray(s.shards) || !s.shards.every(isShardPrint))) {
      bad('shards must be a list of {"name", "bytes", "sample"}')
    }
    const windows = this.windows[order[s.shard]!]!
    if (!Number.isSafeInteger(s.pos) || s.pos < 0 || s.pos % this.windowTokens !== 0 || s.pos / this.windowTokens > windows) {
      bad(`pos must be a multiple of W·B·T = ${this.windowTokens} and at most ${windows * this.windowTokens}`)
    }
    this.openShard(order[s.shard]!)   // the last step that can fail (a shard deleted since): before any field changes
    this.order = order
    if (this.shuffle) this.rng = new Rng(s.rng as RngState)
    this.loadShard(s.shard)
    this.sample = s.pos / this.windowTokens
  }
}

/** A loader whose first `count` batches from its current position were read ahead (train reads the validation's
 *  before RUN_DIR is prepared, which checks their ids): served from memory until they have been, once, so the first
 *  validation does not read them again; then the loader, which stands after them. A restore elsewhere drops them. */
export class ReadAhead implements RestorableSource {
  private readonly start: string            // JSON of the state the batches were read from
  private batches: Batch[] | null           // (count) until served once
  private served = 0

  constructor(private readonly loader: RestorableSource, count: number) {
    this.start = JSON.stringify(loader.state())
    const read = Array.from({ length: count }, () => loader.next())
    this.batches = read.length > 0 ? read : null
  }

  next(): Batch {
    if (this.batches === null) return this.loader.next()
    const b = this.batches[this.served++]!
    if (this.served === this.batches.length) this.batches = null   // the loader stands after them: it goes on
    return b
  }

  state(opts?: { prints?: boolean }): unknown {
    if (this.batches !== null && this.served === 0 && opts?.prints !== true) return JSON.parse(this.start) as unknown
    this.settle()
    return this.loader.state(opts)
  }

  // the batches dropped, the loader where serving them left off (a state taken partway: the trainer takes none)
  private settle(): void {
    if (this.batches === null) return
    const n = this.served
    this.batches = null
    this.loader.restore(JSON.parse(this.start))
    for (let i = 0; i < n; i++) this.loader.next()
  }

  restore(s: unknown): void {
    if (this.batches !== null && JSON.stringify(s) === this.start) { this.served = 0; return }
    this.loader.restore(s)   // first: a refused state keeps the batches, as the loader keeps its position
    this.batches = null
  }
}

function isShardPrint(p: unknown): p is ShardPrint {
  const o = p as Partial<ShardPrint> | null
  return typeof o === 'object' && o !== null && typeof o.name === 'string' && Number.isSafeInteger(o.bytes) && typeof o.sample === 'string'
}
