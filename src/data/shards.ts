// llm.c token shards: a header of 256 little-endian int32 (magic 20240520, version 1, token count, zeros),
// then the tokens as little-endian uint16. Writes are atomic (temp + fsync + rename); the reader checks magic,
// version, length against the file size and every id against the vocabulary, naming the file and the problem.

import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, readSync, rmSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { endianness } from 'node:os'
import { AtomicWriter, removeDeadTemps, writeFileAtomic } from '../util/atomic.js'
import { InputError } from '../util/errors.js'
import { VOCAB_SIZE } from '../tokenizer.js'
import { compare, expandPaths, hasGlob, listDirectory, statOrUndefined } from './files.js'

export const SHARD_MAGIC = 20240520
const SHARD_VERSION = 1 // llm.c: 1 = uint16 tokens (GPT-2), 2 = uint32 tokens (Llama 3)
const HEADER_INTS = 256
const HEADER_BYTES = HEADER_INTS * 4
export const MAX_SHARD_TOKENS = 2 ** 31 - 1 // the count is an int32
export const SHARD_HEADER_BYTES = HEADER_BYTES
export const MIN_SHARD_SIZE = 1024           // --shard-size floor: smaller shards are mostly header, and a typo (1 wrote 338k files)

if (endianness() !== 'LE') throw new Error('shards: this code reads and writes shards as little-endian memory')

function header(ntok: number): Uint8Array {
  const h = new Int32Array(HEADER_INTS) // (256)
  h[0] = SHARD_MAGIC
  h[1] = SHARD_VERSION
  h[2] = ntok
  return new Uint8Array(h.buffer)
}

function bytesOf(tokens: Uint16Array): Uint8Array {
  return new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength)
}

/** Writes one shard atomically. tokens: (ntok) ids, each < 65536. Chunks are written in order. */
export function writeShard(path: string, tokens: Uint16Array | number[] | readonly Uint16Array[]): void {
  const chunks: Uint16Array[] = tokens instanceof Uint16Array ? [tokens]
    : tokens.length > 0 && tokens[0] instanceof Uint16Array ? (tokens as Uint16Array[])
      : [Uint16Array.from(tokens as number[], checkU16)]
  const ntok = chunks.reduce((n, c) => n + c.length, 0)
  if (ntok > MAX_SHARD_TOKENS) throw new InputError(`shards: ${path} would hold ${ntok} tokens, more than the int32 count allows`)
  const w = new AtomicWriter(path)
  try {
    w.write(header(ntok))
    for (const c of chunks) w.write(bytesOf(c))
    w.commit()
  } catch (e) {
    w.abort()
    throw e
  }
}

function checkU16(v: number, i: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 65535) throw new RangeError(`shards: token ${v} at position ${i} does not fit in uint16`)
  return v
}

interface ShardHeader {
  path: string
  tokens: number   // token count from the header, checked against the file size
}

/** Reads and validates the header of `path` (magic, version, size); does not read the tokens. */
export function readShardHeader(path: string): ShardHeader {
  const fd = openShard(path)
  try {
    return checkHeader(path, fd)
  } finally {
    closeSync(fd)
  }
}

export function openShard(path: string): number {
  const st = statOrUndefined(path)
  if (st === undefined) throw new InputError(`shards: no such file: ${path}`)
  if (!st.isFile()) throw new InputError(`shards: ${path} is not a file`)
  return openSync(path, 'r')
}

export function checkHeader(path: string, fd: number): ShardHeader {
  const h = new Int32Array(3)
  const size = fstatSync(fd).size
  if (size >= HEADER_BYTES) readSync(fd, h, { position: 0 })
  return checkHeaderWords(path, h, size)
}

// h: the header's first three int32 words (magic, version, token count); size: the whole file's bytes
function checkHeaderWords(path: string, h: Int32Array, size: number): ShardHeader {
  if (size < HEADER_BYTES) {
    throw new InputError(`shards: ${path} is truncated: ${size} bytes, smaller than the ${HEADER_BYTES}-byte header (not an llm.c token shard?)`)
  }
  if (h[0] !== SHARD_MAGIC) {
    // text where a shard should be is the likely mistake: raw text given as --data
    const text = new Uint8Array(h.buffer, h.byteOffset, 12).every(b => b === 9 || b === 10 || b === 13 || b >= 32)
    throw new InputError(`shards: ${path} has magic ${h[0]}, expected ${SHARD_MAGIC} ` +
      (text ? `(it looks like text: make token shards of it with llmts prepare ${path} --out DIR)` : '(not an llm.c token shard?)'))
  }
  if (h[1] !== SHARD_VERSION) {
    throw new InputError(`shards: ${path} has version ${h[1]}, expected ${SHARD_VERSION} (uint16 GPT-2 tokens; version 2 holds uint32 tokens)`)
  }
  const ntok = h[2]!
  const expected = HEADER_BYTES + 2 * ntok
  if (ntok < 0 || expected !== size) {
    throw new InputError(`shards: ${path} header says ${ntok} tokens (${expected} bytes) but the file has ${size} bytes (truncated or corrupted)`)
  }
  return { path, tokens: ntok }
}

/** InputError at the first id >= vocab; tokens: (n) ids read from token `offset` of the shard (named in the error). */
export function checkTokens(path: string, tokens: Uint16Array, vocab: number, offset = 0): void {
  if (vocab >= 65536) return
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i]! >= vocab) {
      const hint = vocab === VOCAB_SIZE ? 'corrupted shard or another tokenizer?'
        : `corrupted shard, another tokenizer, or a model whose vocabSize ${vocab} is too small for these shards?`
      throw new InputError(`shards: ${path} has token id ${tokens[i]} at position ${offset + i}, outside the vocabulary of ${vocab} (${hint})`)
    }
  }
}

/** Reads and validates a whole shard. Returns its (ntok) token ids. */
export function readShard(path: string, opts: { vocabSize?: number } = {}): Uint16Array {
  const vocab = opts.vocabSize ?? VOCAB_SIZE
  const fd = openShard(path)
  try {
    const { tokens: ntok } = checkHeader(path, fd)
    const tokens = new Uint16Array(ntok)
    let off = 0
    while (off < tokens.byteLength) {
      const n = readSync(fd, tokens, { offset: off, length: tokens.byteLength - off, position: HEADER_BYTES + off })
      if (n === 0) throw new InputError(`shards: ${path} ended early while reading its tokens (truncated?)`)
      off += n
    }
    checkTokens(path, tokens, vocab)
    return tokens
  } finally {
    closeSync(fd)
  }
}

/** A whole shard already in memory (e.g. read from stdin), validated like readShard; `name` names it in errors. */
export function parseShard(data: Uint8Array, name: string): Uint16Array {
  const h = new Int32Array(3)
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  if (data.length >= HEADER_BYTES) for (let i = 0; i < 3; i++) h[i] = view.getInt32(4 * i, true)
  const { tokens: ntok } = checkHeaderWords(name, h, data.length)
  const tokens = new Uint16Array(ntok)
  new Uint8Array(tokens.buffer).set(data.subarray(HEADER_BYTES, HEADER_BYTES + 2 * ntok))
  checkTokens(name, tokens, VOCAB_SIZE)
  return tokens
}

export function isSplit(path: string, split: 'train' | 'val'): boolean {
  const name = basename(path)
  return name.endsWith('.bin') && (name.includes(`_${split}_`) || name.endsWith(`_${split}.bin`) || name.startsWith(`${split}_`))
}

/**
 * Shard files of a spec: a file (taken as is), a directory (its *.bin files, only those of `split` when
 * given, e.g. NAME_train_000001.bin or tiny_shakespeare_val.bin), or a glob. Sorted; InputError if none.
 */
export function listShards(spec: string, split?: 'train' | 'val'): string[] {
  const st = statOrUndefined(spec)
  if (st?.isDirectory()) {
    const all = listDirectory(spec, { recursive: false }).filter(p => p.endsWith('.bin'))
    const files = split === undefined ? all : all.filter(p => isSplit(p, split))
    if (files.length === 0) {
      const what = split === undefined ? 'shards (*.bin)' : `${split} shards (*_${split}_*.bin)`
      throw new InputError(`shards: directory ${spec} has no ${what} (prepare them with llmts prepare)`)
    }
    return refuseMixed(spec, refuseUnfinished(files.sort(compare)), split)
  }
  if (st === undefined && !hasGlob(spec)) throw new InputError(`shards: no such file or directory: ${spec}`)
  return refuseUnfinished(expandPaths([spec], { what: 'shards', accept: () => true, acceptHint: '*.bin' }).sort(compare))
}

/** The validation shards beside train shards given as files or a glob: NAME_val_*.bin in the folder of each
 *  NAME_train_NNNNNN.bin (the names llmts prepare and llm.c write); null when there are none. */
export function valShardsBeside(train: readonly string[]): string[] | null {
  const names = new Map<string, Set<string>>()   // folder -> the datasets of its train shards
  for (const f of train) {
    const n = shardName(f)
    if (n?.split === 'train') names.set(dirname(f), (names.get(dirname(f)) ?? new Set<string>()).add(n.name))
  }
  const found = new Set<string>()
  for (const [dir, datasets] of names) {
    for (const f of listDirectory(dir, { recursive: false })) {
      const n = shardName(f)
      if (n?.split === 'val' && datasets.has(n.name)) found.add(f)
    }
  }
  return found.size === 0 ? null : refuseUnfinished([...found].sort(compare))
}

/** InputError if a directory's shards belong to more than one dataset (NAME_train_*.bin of two NAMEs: prepare
 *  fineweb and --edu, or two --name values, into one --out), which would be mixed without a word; a glob that
 *  matches both still mixes them on purpose. */
function refuseMixed(dir: string, files: string[], split: 'train' | 'val' | undefined): string[] {
  const names = [...new Set(files.map(f => shardName(f)?.name).filter(n => n !== undefined))].sort(compare)
  if (names.length > 1) {
    throw new InputError(`shards: directory ${dir} holds the shards of ${names.length} datasets (${names.join(', ')}); ` +
      `name one with a glob, e.g. '${join(dir, `${names[0]}_${split ?? '*'}_*.bin`)}'`)
  }
  return files
}

/** NAME and split of a NAME_{train,val}_NNNNNN.bin shard (the names llmts prepare and llm.c write). */
function shardName(path: string): { name: string; split: 'train' | 'val' } | undefined {
  const m = /^(.+)_(train|val)_\d+\.bin$/.exec(basename(path))
  return m === null ? undefined : { name: m[1]!, split: m[2] as 'train' | 'val' }
}

/** InputError if a file is a shard of an output `llmts prepare` has not finished: DIR/NAME.incomplete, no DIR/NAME.json. */
function refuseUnfinished(files: string[]): string[] {
  const seen = new Set<string>()
  for (const f of files) {
    const name = shardName(f)?.name
    const prefix = name === undefined ? undefined : join(dirname(f), name)
    if (prefix === undefined || seen.has(prefix)) continue
    seen.add(prefix)
    if (existsSync(`${prefix}.incomplete`) && !existsSync(`${prefix}.json`)) {
      throw new InputError(`shards: ${f} is part of an unfinished llmts prepare (${prefix}.incomplete exists, ` +
        `${name}.json does not): re-run that prepare to finish it, or delete the .incomplete file to use the shards as they are`)
    }
  }
  return files
}

/** The shards of dataset NAME in `dir`, written as one output. Before the first shard NAME.incomplete appears and
 *  NAME.json (the completion record) goes, so a run that fails before writing anything leaves the old output whole;
 *  complete() writes NAME.json, then removes the marker. listShards refuses shards whose marker has no NAME.json. */
/** The `format` of every NAME.json that llmts prepare writes: how a record of ours is told from another file. */
export const SHARD_FORMAT = 'llm.c token shards: 256 int32 header (20240520, 1, token count), then uint16 tokens'

export class ShardOutput {
  private begun = false

  /** Refuses a DIR/NAME.json that prepare did not write (`--name config` into a run or Hugging Face directory
   *  would replace its config.json). */
  constructor(readonly dir: string, readonly name: string) {
    const record = join(dir, `${name}.json`)
    if (!existsSync(record)) return
    let format: unknown
    try { format = (JSON.parse(readFileSync(record, 'utf8')) as { format?: unknown } | null)?.format } catch { /* not ours either */ }
    if (format !== SHARD_FORMAT) {
      throw new InputError(`prepare: ${record} exists and is not an llmts prepare record (a model's or run's file?); ` +
        `the shards' record would replace it: choose another --name or --out`)
    }
  }

  write(path: string, tokens: readonly Uint16Array[]): void {
    if (!this.begun) {
      writeFileAtomic(join(this.dir, `${this.name}.incomplete`),
        `llmts prepare is writing ${this.name}_*.bin here; they are complete once ${this.name}.json exists\n`)
      rmSync(join(this.dir, `${this.name}.json`), { force: true })
      this.begun = true
    }
    writeShard(path, tokens)
  }

  complete(meta: object): void {
    writeFileAtomic(join(this.dir, `${this.name}.json`), JSON.stringify(meta, null, 2) + '\n')
    rmSync(join(this.dir, `${this.name}.incomplete`), { force: true })
  }
}

/** Path of shard `index` of split `split` for dataset `name` in `dir` (llm.c's fineweb naming). */
export function shardPath(dir: string, name: string, split: 'train' | 'val', index: number): string {
  return join(dir, `${name}_${split}_${String(index).padStart(6, '0')}.bin`)
}

/** Removes DIR/NAME_{train,val}_NNNNNN.bin files not named in `keep` (left by an earlier, larger or different run),
 *  and the temp files of NAME's shards, NAME.json and NAME.incomplete that a killed run left. */
export function removeStaleShards(dir: string, name: string, keep: Set<string>): void {
  const re = new RegExp(`^${name.replace(/[.]/g, '\\.')}_(train|val)_\\d{6}\\.bin$`)
  for (const f of readdirSync(dir)) if (re.test(f) && !keep.has(f)) rmSync(join(dir, f), { force: true })
  removeDeadTemps(dir, f => re.test(f) || f === `${name}.json` || f === `${name}.incomplete`)
}
