// Windowed reads of one llm.c token shard, as llm.c's loader does (fseek + fread of B·T+1 tokens): the loader holds
// an open file and a buffer of one window, never the shard (191 MiB for a FineWeb shard). Also a shard's
// fingerprint (size and a hash of sampled bytes), which a checkpoint records so a resume can tell changed data.

import { closeSync, existsSync, fstatSync, readSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { basename } from 'node:path'
import { InputError } from '../util/errors.js'
import { VOCAB_SIZE } from '../tokenizer.js'
import { checkHeader, checkTokens, openShard, SHARD_HEADER_BYTES } from './shards.js'

/** An open, header-checked shard whose token windows are read on demand (ids checked against the vocabulary). */
export class ShardReader {
  readonly tokens: number                           // the header's token count, checked against the file size
  private fd: number | null
  private buf = new Uint16Array(0)                  // (n) the last window read

  constructor(readonly path: string, private readonly vocab = VOCAB_SIZE) {
    const fd = openListed(path)
    try {
      this.tokens = checkHeader(path, fd).tokens
    } catch (e) {
      closeSync(fd)
      throw e
    }
    this.fd = fd
  }

  /** Tokens [start, start + n), checked against the vocabulary. The view is reused by the next read. */
  read(start: number, n: number): Uint16Array {
    if (this.fd === null) throw new Error(`shards: read of ${this.path} after close`)
    if (start < 0 || start + n > this.tokens) {   // a caller's window past the end: the shard changed since it was measured
      throw new InputError(`shards: ${this.path} holds ${this.tokens} tokens, too few for tokens [${start}, ${start + n}) (changed while in use?)`)
    }
    if (this.buf.length < n) this.buf = new Uint16Array(n)
    const out = this.buf.subarray(0, n)
    let off = 0
    while (off < out.byteLength) {
      const got = readSync(this.fd, out, { offset: off, length: out.byteLength - off, position: SHARD_HEADER_BYTES + 2 * start + off })
      if (got === 0) throw new InputError(`shards: ${this.path} ended early while reading tokens [${start}, ${start + n}) (truncated while in use?)`)
      off += got
    }
    checkTokens(this.path, out, this.vocab, start)
    return out
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd)
    this.fd = null
  }
}

/** openShard for a shard the loader has listed and measured: one gone now was deleted or moved since, which the
 *  error says (a fingerprint at a checkpoint, or the next shard's open, may come hours into a run). */
function openListed(path: string): number {
  try { return openShard(path) } catch (e) {
    if (e instanceof InputError && !existsSync(path)) throw new InputError(`${e.message} (deleted or moved during the run?)`)
    throw e
  }
}

/** What a checkpoint records of each train shard: enough to tell another file under the same name, cheaply. */
export interface ShardPrint {
  name: string      // the file's base name (the folder may move between a checkpoint and its resume)
  bytes: number     // file size
  sample: string    // sha256 (first 16 hex digits) of the first, middle and last SAMPLE_BYTES (the header included)
}

const SAMPLE_BYTES = 64 * 1024

/** The fingerprint of shard `path`: 3 reads of 64 KiB (a whole FineWeb shard would take ~0.1 s and 191 MiB);
 *  a re-prepared or other dataset differs in every part, a truncated or extended one in size. */
export function shardPrint(path: string): ShardPrint {
  const fd = openListed(path)
  try {
    const bytes = fstatSync(fd).size, hash = createHash('sha256'), S = SAMPLE_BYTES
    const parts = bytes <= 3 * S ? [[0, bytes]] : [[0, S], [Math.floor(bytes / 2) - S / 2, S], [bytes - S, S]]
    for (const [position, length] of parts) hash.update(readAt(fd, position!, length!))
    return { name: basename(path), bytes, sample: hash.digest('hex').slice(0, 16) }
  } finally {
    closeSync(fd)
  }
}

// `length` bytes at `position`, fewer if the file ends first
function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length)
  let got = 0, n = 0
  while (got < length && (n = readSync(fd, buf, { offset: got, length: length - got, position: position + got })) > 0) got += n
  return buf.subarray(0, got)
}

/** How shard `now` differs from the `was` a checkpoint recorded (same name), or null when it does not. */
export function shardChange(was: ShardPrint, now: ShardPrint): string | null {
  if (was.bytes !== now.bytes) return `${now.name} has ${now.bytes.toLocaleString('en-US')} bytes, ${was.bytes.toLocaleString('en-US')} then`
  if (was.sample !== now.sample) return `${now.name} has other contents (same size; sampled sha256 ${now.sample}, ${was.sample} then)`
  return null
}
