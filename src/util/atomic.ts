// Atomic file writes: data goes to a temp file beside the target, is fsynced, then renamed over the target,
// and the directory is fsynced. A reader therefore sees the old file or the complete new one, never a torn one.
// A full disk or a file-size limit (ENOSPC, EDQUOT, EFBIG) is an OutOfSpaceError: one line, exit code 2.

import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { dirname, basename, join } from 'node:path'
import { InputError } from './errors.js'

/** The disk (or quota, or file-size limit) ran out while writing; a problem of the machine, not a bug. */
export class OutOfSpaceError extends InputError {
  override name = 'OutOfSpaceError'
}

const SPACE_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on device (ENOSPC)', EDQUOT: 'disk quota exceeded (EDQUOT)', EFBIG: 'file too large (EFBIG: over the file-size limit)',
}

/** `e` as an OutOfSpaceError naming `path` when it is one of ENOSPC, EDQUOT, EFBIG; otherwise `e` itself. */
export function spaceError(e: unknown, path: string): unknown {
  const code = (e as NodeJS.ErrnoException | null)?.code
  if (code === undefined || !(code in SPACE_ERRORS)) return e
  return new OutOfSpaceError(`cannot write ${path}: ${SPACE_ERRORS[code]}`)
}

/** The temp name used while `path` is being written; never looks like a finished output. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}`)
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r')
    try { fsyncSync(fd) } finally { closeSync(fd) }
  } catch { /* some filesystems refuse fsync on directories; the rename is still atomic */ }
}

/** Writes `chunks` (in order) to `path` atomically. */
export function writeFileAtomic(path: string, ...chunks: (Uint8Array | string)[]): void {
  const w = new AtomicWriter(path)
  try {
    for (const c of chunks) w.write(c)
    w.commit()
  } catch (e) {
    w.abort()
    throw spaceError(e, path)
  }
}

/** Streaming atomic writer: write() any number of times, then commit() (or abort() on failure). */
export class AtomicWriter {
  readonly tmp: string
  private fd: number | null
  bytes = 0

  constructor(readonly path: string) {
    this.tmp = tempPathFor(path)
    try { this.fd = openSync(this.tmp, 'w') } catch (e) { throw spaceError(e, path) }
  }

  write(data: Uint8Array | string): void {
    if (this.fd === null) throw new Error(`atomic: write to ${this.path} after commit/abort`)
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    let off = 0
    try {
      while (off < buf.byteLength) off += writeSync(this.fd, buf, off, buf.byteLength - off)
    } catch (e) { throw spaceError(e, this.path) }
    this.bytes += buf.byteLength
  }

  commit(): void {
    if (this.fd === null) throw new Error(`atomic: ${this.path} already closed`)
    try {
      fsyncSync(this.fd)   // some filesystems report a full disk only here
      closeSync(this.fd)
    } catch (e) { throw spaceError(e, this.path) }
    this.fd = null
    renameSync(this.tmp, this.path)
    fsyncDir(dirname(this.path))
  }

  abort(): void {
    if (this.fd !== null) {
      try { closeSync(this.fd) } catch { /* already broken */ }
      this.fd = null
    }
    rmSync(this.tmp, { force: true })
  }
}
