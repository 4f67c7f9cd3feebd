// An output's lock file, so that two commands never write one output at once (two trains in one --out, a --resume
// beside a live run, two exports into one folder): the second is refused naming the first's pid. The file holds
// {pid, host, command, start, boot, nonce}; it is removed at exit; one left by a process that is gone (SIGKILL, a
// crash) is taken over with a note. Node has no flock: the file's exclusive creation is the lock, and liveness is
// proc.ts's: the pid runs and, on Linux, is the process that started when the file says (so a dead holder's pid given
// to another process does not keep the lock held). Many takers of one stale file may race: each claims it first
// (takeOver), so that no two ever hold the lock.

import { createHash, randomBytes } from 'node:crypto'
import { closeSync, fstatSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { checkOutputDir, makeDirs, newFolders, removeEmptyFolders } from './atomic.js'
import { InputError } from './errors.js'
import { isRunning, procStart, type ProcStart } from './proc.js'

interface Holder extends Partial<ProcStart> { pid: number; host: string; command: string }
/** A lock file as read: its bytes, its holder (undefined: unreadable, e.g. empty), and its inode and mtime. */
interface Seen { text: string; holder: Holder | undefined; ino: number; mtimeMs: number }

/** A held lock: release() removes the file (and the folders taking it made, while they are empty). */
export interface Lock { path: string; release(): void }

const UNWRITTEN_MS = 2000   // an unreadable lock file younger than this may be one being written: waited for
const CLAIM_LEVELS = 3      // takers that may die mid-takeover of one file before the next one is refused
const BUSY_MS = 5000        // how long a claim's live owner is waited for (it needs microseconds)
const held = new Set<Lock>()
process.on('exit', () => { for (const l of held) l.release() })
// No signal handler removes it: one would delay Ctrl-C until synchronous work (an export, a tokenizer on the main
// thread) returns to the event loop. A lock left by a signal is taken over, with a note, by the next command.

export interface LockOptions {
  command: string                  // who holds it, as errors name it: 'llmts train'
  flag: string                     // the flag naming `dir`, for checkOutputDir's message
  note: (line: string) => void     // where a stale lock's takeover is said
  name?: string                    // the lock file's name in `dir` (default .lock)
}

/** Takes the lock file of the output folder `dir` (made if missing; checked first as checkOutputDir does). Refuses
 *  with an InputError when a live process holds it; takes over, with a note, one whose process is gone. */
export function lockOutput(dir: string, o: LockOptions): Lock {
  checkOutputDir(o.command, o.flag, dir)
  const path = join(dir, o.name ?? '.lock'), command = o.command
  const made = newFolders(dir)
  makeDirs(dir)
  const me = JSON.stringify({ pid: process.pid, host: hostname(), command, ...procStart(process.pid),
    nonce: randomBytes(6).toString('hex') }) + '\n'
  const waitUntil = Date.now() + UNWRITTEN_MS   // bounds the wait below when the file's clock runs ahead of ours
  const busyUntil = Date.now() + BUSY_MS
  for (let takeovers = 0; ;) {
    if (tryCreate(path, me)) return hold(path, me, made)
    const seen = readLock(path)
    if (seen === undefined) { takeovers++; continue }   // released since: make it again (bounded, as a takeover)
    const other = seen.holder
    // its content not yet written, or never: a holder killed between creating and writing it (a kill at startup)
    // leaves it empty; a live one writes it within microseconds, so one still unreadable at 2 s old is stale
    if (other === undefined && ageMs(path) < UNWRITTEN_MS && Date.now() < waitUntil) { sleepMs(100); continue }
    if (other !== undefined && (other.host !== hostname() || isRunning(other.pid, other)) || takeovers >= 3) {
      removeEmptyFolders(made)
      throw new InputError(`${command}: ${dir} is in use by ${describe(other)} (lock file ${path}; ` +
        'wait for it to finish, or remove the lock file if no such process runs)')
    }
    const took = takeOver(path, seen, me, command)
    if (took === 'busy' && Date.now() < busyUntil) { sleepMs(10); continue }
    if (took === 'busy') {
      removeEmptyFolders(made)
      throw new InputError(`${command}: ${dir}: another process is taking over the lock file ${path} of ` +
        `${describe(other)}, for more than ${BUSY_MS / 1000} s (remove ${path}.takeover-* if no such process runs)`)
    }
    if (took === 'removed') o.note(`note: took over the lock file ${path} of ${describe(other)}, which is no longer running`)
    takeovers++
  }
}

function hold(path: string, me: string, made: string[]): Lock {
  const lock: Lock = {
    path,
    release() {
      if (!held.delete(lock)) return
      // only a claim's owner removes another's file, and only once its holder is gone: this one is still ours
      if (readLock(path)?.text === me) rmSync(path, { force: true })
      removeEmptyFolders(made)
    },
  }
  held.add(lock)
  return lock
}

/** Removes the stale lock file `seen` from `path` unless another has replaced it: 'removed', 'changed' (not that
 *  file any more: start over), or 'busy' (a live process is taking it over: wait). */
// Removing a stale file and making one's own is not enough: a taker that read the stale file, then was overtaken,
// removed the winner's fresh file, and both held the lock. So a stale file is removed only by the owner of a claim
// on it, a file made by exclusive creation, LOCK.takeover-KEY-N, KEY naming that lock file by content, inode and mtime
// (no other lock file has all three: the nonce sees to it), and only after reading the lock again and finding that
// same file. Nothing can replace it in between, as only its claim's owner removes it (its holder is gone, and a
// file is never written over). Claim N+1 is made only once claim N's owner is gone, and claims are removed only once
// their file is gone (it never comes back), so while a stale file is there at most one live process owns a claim on
// it. A taker that claims late finds another file (the winner's) and leaves it.
function takeOver(path: string, seen: Seen, me: string, command: string): 'removed' | 'changed' | 'busy' {
  const key = createHash('sha256').update(`${seen.ino}:${seen.mtimeMs}:${seen.text}`).digest('hex').slice(0, 16)
  const claim = (n: number): string => `${path}.takeover-${key}-${n}`
  for (let n = 1; n <= CLAIM_LEVELS; n++) {
    if (!tryCreate(claim(n), me)) {
      const owner = readLock(claim(n))
      if (owner === undefined) return 'busy'   // removed since: its file is gone, which the next round finds
      // an unreadable claim is one being written, or one whose owner was killed before writing it
      const alive = owner.holder === undefined ? ageMs(claim(n)) < UNWRITTEN_MS : isRunning(owner.holder.pid, owner.holder)
      if (alive) return 'busy'
      continue   // its owner died mid-takeover: the next claim decides among the rest
    }
    const now = readLock(path)
    const same = now !== undefined && now.text === seen.text && now.ino === seen.ino && now.mtimeMs === seen.mtimeMs
    if (same) rmSync(path, { force: true })
    for (let k = n; k >= 1; k--) rmSync(claim(k), { force: true })   // their file is gone for good
    return same ? 'removed' : 'changed'
  }
  throw new InputError(`${command}: ${CLAIM_LEVELS} processes died while taking over the lock file ${path} ` +
    `(remove it and ${path}.takeover-${key}-* if no such process runs)`)
}

function tryCreate(path: string, content: string): boolean {
  let fd: number
  try { fd = openSync(path, 'wx') } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw e
  }
  try { writeSync(fd, content) } finally { closeSync(fd) }
  return true
}

/** The lock file at `path` as it is now, or undefined when there is none. */
function readLock(path: string): Seen | undefined {
  let fd: number
  try { fd = openSync(path, 'r') } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
  try {
    const { ino, mtimeMs } = fstatSync(fd), text = readFileSync(fd, 'utf8')
    return { text, holder: parseHolder(text), ino, mtimeMs }
  } finally { closeSync(fd) }
}

function parseHolder(text: string): Holder | undefined {
  try {
    const h = JSON.parse(text) as Holder
    if (!Number.isSafeInteger(h.pid) || h.pid <= 0) return undefined
    // a start that is not one (a file edited by hand) is left out: the pid alone decides, as for an old file
    return Number.isSafeInteger(h.start) && typeof h.boot === 'string' ? h : { ...h, start: undefined, boot: undefined }
  } catch { return undefined }
}

function ageMs(path: string): number {
  try { return Date.now() - statSync(path).mtimeMs } catch { return 0 }
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

function describe(h: Holder | undefined): string {
  if (h === undefined) return 'another process (an unreadable lock file)'
  return `${h.command !== '' ? h.command : 'another llmts process'} (pid ${h.pid}${h.host !== hostname() ? ` on ${h.host}` : ''})`
}
