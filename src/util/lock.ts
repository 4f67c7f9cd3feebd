// An output's lock file, so that two commands never write one output at once (two trains in one --out, a --resume
// beside a live run, two exports into one folder): the second is refused naming the first's pid. The file holds
// {pid, host, command}; it is removed at exit; one left by a process that is gone (SIGKILL, a crash) is taken over
// with a note. Node has no flock: the file's exclusive creation is the lock, and liveness is a signal 0 to its pid.
// Left open: two commands taking over one stale lock in the same instant may both hold it; a dead holder's pid reused
// by an unrelated process keeps the lock held (the error says to remove the file then).

import { closeSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { checkOutputDir, makeDirs, newFolders, removeEmptyFolders } from './atomic.js'
import { InputError } from './errors.js'

interface Holder { pid: number; host: string; command: string }

/** A held lock: release() removes the file (and the folders taking it made, while they are empty). */
export interface Lock { path: string; release(): void }

const UNWRITTEN_MS = 2000   // an unreadable lock file younger than this may be one being written: waited for
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
  const me: Holder = { pid: process.pid, host: hostname(), command }
  const waitUntil = Date.now() + UNWRITTEN_MS   // bounds the wait below when the file's clock runs ahead of ours
  for (let takeovers = 0; ;) {
    if (tryCreate(path, me)) {
      const lock: Lock = {
        path,
        release() {
          if (!held.delete(lock)) return
          if (readHolder(path)?.pid === me.pid) rmSync(path, { force: true })
          removeEmptyFolders(made)
        },
      }
      held.add(lock)
      return lock
    }
    const other = readHolder(path)
    // its content not yet written, or never: a holder killed between creating and writing it (a kill at startup)
    // leaves it empty; a live one writes it within microseconds, so one still unreadable at 2 s old is stale
    if (other === undefined && ageMs(path) < UNWRITTEN_MS && Date.now() < waitUntil) { sleepMs(100); continue }
    if (other !== undefined && (other.host !== me.host || isAlive(other.pid)) || takeovers >= 3) {
      removeEmptyFolders(made)
      throw new InputError(`${command}: ${dir} is in use by ${describe(other)} (lock file ${path}; ` +
        'wait for it to finish, or remove the lock file if no such process runs)')
    }
    o.note(`note: took over the lock file ${path} of ${describe(other)}, which is no longer running`)
    rmSync(path, { force: true })
    takeovers++
  }
}

function tryCreate(path: string, me: Holder): boolean {
  let fd: number
  try { fd = openSync(path, 'wx') } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw e
  }
  try { writeSync(fd, JSON.stringify(me) + '\n') } finally { closeSync(fd) }
  return true
}

function readHolder(path: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Holder
    return Number.isSafeInteger(h.pid) && h.pid > 0 ? h : undefined
  } catch { return undefined }
}

function ageMs(path: string): number {
  try { return Date.now() - statSync(path).mtimeMs } catch { return 0 }
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM' }
}

function describe(h: Holder | undefined): string {
  if (h === undefined) return 'another process (an unreadable lock file)'
  return `${h.command !== '' ? h.command : 'another llmts process'} (pid ${h.pid}${h.host !== hostname() ? ` on ${h.host}` : ''})`
}
