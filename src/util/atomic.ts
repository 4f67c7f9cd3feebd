// Atomic file writes: data goes to a temp file beside the target, is fsynced, then renamed over the target,
// and the directory is fsynced. A reader therefore sees the old file or the complete new one, never a torn one.
// A target that is a symbolic link is written through (as cp or a shell's > do): the temp file goes beside the
// file it points to and replaces that one, and the link stays a link.
// A full disk or a file-size limit (ENOSPC, EDQUOT, EFBIG) is an OutOfSpaceError: one line, exit code 2.

import {
  accessSync, closeSync, constants, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, renameSync, rmdirSync, rmSync,
  statSync, writeSync,
} from 'node:fs'
import { dirname, basename, join, resolve } from 'node:path'
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

/** `e` as one line naming `path`, not the temp file beside it that the call was about (`EACCES … '/sys/.x.svg.tmp-15017'`),
 *  when the destination is a directory or its folder cannot be written; a full disk as spaceError; otherwise `e`. */
function writeError(e: unknown, path: string, target: string, tmp?: string): unknown {
  const code = (e as NodeJS.ErrnoException | null)?.code
  const what = target === path ? path : `${path} (a symbolic link to ${target})`
  if (code === 'EISDIR') {   // at the open, the temp file's name is taken by a directory; at the rename, the destination's
    return new InputError(`cannot write ${what}: ${tmp !== undefined ? `the temp file beside it, ${tmp},` : 'it'} is a directory`)
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new InputError(`cannot write ${what}: ${code} (its folder ${dirname(target)} is not writable)`)
  }
  if (code === 'ENAMETOOLONG') {   // the temp name is the longer one: a name that fits alone may not with it
    const long = tmp ?? target
    return new InputError(`cannot write ${what}: its name is too long (ENAMETOOLONG; the temp name written first, ${basename(long)}, ` +
      `counts ${Buffer.byteLength(basename(long))} bytes, over the file system's limit, usually 255)`)
  }
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new InputError(`cannot write ${what}: ${code} (${dirname(target)} is not an existing folder)`)
  }
  return spaceError(e, path)
}

/** The file that writing `path` replaces: the end of its chain of symbolic links (which may not exist yet: a
 *  dangling link is written where it points), else `path` itself. */
export function writeTarget(path: string): string {
  let p = path
  for (let hops = 0; hops < 40; hops++) {   // 40: Linux's limit before ELOOP
    let isLink: boolean
    try { isLink = lstatSync(p).isSymbolicLink() } catch { return p }
    if (!isLink) return p
    p = resolve(dirname(p), readlinkSync(p))
  }
  throw new InputError(`cannot write ${path}: too many levels of symbolic links (a loop?)`)
}

/** The folders that making `dir` would create, innermost first (none when it exists): what a refused command
 *  removes again with removeEmptyFolders, so that it leaves no trace. */
export function newFolders(dir: string): string[] {
  const out: string[] = []
  for (let p = resolve(dir); !existsSync(p) && dirname(p) !== p; p = dirname(p)) out.push(p)
  return out
}

/** Removes each of `folders` (innermost first) that exists and is empty; a folder that holds anything stays. */
export function removeEmptyFolders(folders: readonly string[]): void {
  for (const d of folders) {
    try { if (readdirSync(d).length === 0) rmdirSync(d) } catch { /* gone already, or not ours to judge */ }
  }
}

/** Refuses, before any slow work, an output directory that cannot be made: `dir` (or its nearest existing
 *  parent) is not a directory, or is not writable, or (tried and undone) refuses a new folder, as /proc does
 *  while passing the access check (Node 20's recursive mkdirSync would then loop forever). Leaves nothing. */
export function checkOutputDir(cmd: string, flag: string, dir: string): void {
  let p = resolve(dir)
  let child: string | undefined   // the first missing folder below p
  for (;;) {
    let st
    try { st = statSync(p, { throwIfNoEntry: false }) } catch { st = undefined }   // ENOTDIR: a file on the way, found further up
    if (st !== undefined) {
      const what = p === resolve(dir) ? dir : `${p} (in ${flag} ${dir})`
      if (!st.isDirectory()) throw new InputError(`${cmd}: ${what} is not a directory (${flag} expects a directory to write to)`)
      try { accessSync(p, constants.W_OK) } catch { throw new InputError(`${cmd}: ${what} is not writable (${flag})`) }
      if (child !== undefined) tryFolder(cmd, flag, dir, child)
      return
    }
    child = p
    p = dirname(p)
  }
}

/** mkdir -p without Node 20's recursive mkdirSync, which loops forever where a parent exists but refuses new
 *  folders with ENOENT (/proc): each missing folder is made in turn, and the first refusal is thrown. */
export function makeDirs(dir: string): void {
  const target = resolve(dir), st = statSync(target, { throwIfNoEntry: false })
  if (st !== undefined) {
    if (st.isDirectory()) return
    throw Object.assign(new Error(`EEXIST: file already exists, mkdir '${target}'`), { code: 'EEXIST', path: target })   // as mkdirSync says it
  }
  const missing: string[] = []
  for (let p = resolve(dir); statSync(p, { throwIfNoEntry: false }) === undefined; p = dirname(p)) {
    if (dirname(p) === p) break
    missing.push(p)
  }
  for (const p of missing.reverse()) {
    try { mkdirSync(p) } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e }
  }
}

function tryFolder(cmd: string, flag: string, dir: string, path: string): void {
  try {
    mkdirSync(path)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return   // made meanwhile by someone else: usable
    throw new InputError(`${cmd}: cannot create ${path} (in ${flag} ${dir}): ${(e as Error).message}`)
  }
  try { rmdirSync(path) } catch { /* another process put something in it meanwhile: it stays, and is usable */ }
}

/** The temp name used while `path` is being written; never looks like a finished output. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}`)
}

/** Removes the temp files (tempPathFor) that a killed writer left in `dir`: those whose base name `accept`s and
 *  whose process is gone (a live one may still be writing it). */
export function removeDeadTemps(dir: string, accept: (name: string) => boolean): void {
  let names: string[]
  try { names = readdirSync(dir) } catch { return }
  for (const n of names) {
    const m = /^\.(.+)\.tmp-(\d+)$/.exec(n)
    if (m !== null && accept(m[1]!) && !isRunning(Number(m[2]))) rmSync(join(dir, n), { recursive: true, force: true })
  }
}

function isRunning(pid: number): boolean {
  if (pid === process.pid) return true
  try { process.kill(pid, 0); return true } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM' }
}

/** fsync of a directory (after a rename in it), where the filesystem allows it. */
export function fsyncDir(dir: string): void {
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

/** Writes several files so that none is renamed into place before every one is complete on disk. A kill while
 *  writing leaves the old files as they were (and temp files, which removeDeadTemps clears); only a kill during the
 *  renames themselves, microseconds, can leave old and new files side by side. */
export function writeFilesAtomic(files: { path: string; write: (w: AtomicWriter) => void }[]): void {
  const writers: AtomicWriter[] = []
  try {
    for (const f of files) {
      const w = new AtomicWriter(f.path)
      writers.push(w)
      f.write(w)
      w.finish()
    }
  } catch (e) {
    for (const w of writers) w.abort()
    throw e
  }
  for (const w of writers) w.publish()
}

/** Streaming atomic writer: write() any number of times, then commit() (or abort() on failure); commit() is
 *  finish() (on disk under the temp name) and publish() (renamed into place). */
export class AtomicWriter {
  readonly tmp: string
  private readonly target: string   // path, or the file its symbolic link points to: what the rename replaces
  private fd: number | null
  private finished = false
  bytes = 0

  constructor(readonly path: string) {
    this.target = writeTarget(path)
    this.tmp = tempPathFor(this.target)
    try { this.fd = openSync(this.tmp, 'w') } catch (e) { throw writeError(e, path, this.target, this.tmp) }
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
    this.finish()
    this.publish()
  }

  finish(): void {
    if (this.fd === null) throw new Error(`atomic: ${this.path} already closed`)
    try {
      fsyncSync(this.fd)   // some filesystems report a full disk only here
      closeSync(this.fd)
    } catch (e) { throw spaceError(e, this.path) }
    this.fd = null
    this.finished = true
  }

  publish(): void {
    if (!this.finished) throw new Error(`atomic: ${this.path} published before finish()`)
    try { renameSync(this.tmp, this.target) } catch (e) { throw writeError(e, this.path, this.target) }
    fsyncDir(dirname(this.target))
  }

  abort(): void {
    if (this.fd !== null) {
      try { closeSync(this.fd) } catch { /* already broken */ }
      this.fd = null
    }
    rmSync(this.tmp, { force: true })
  }
}
