// Checkpoint saves in the background: the trainer snapshots weights and moments (the download it makes anyway) and a
// worker thread does the rest (hashing, writes, fsyncs, renames, pruning, best/, .best-committed) in today's order,
// while the next steps train. One save in flight at a time; the main thread waits for it synchronously (Atomics.wait,
// receiveMessageOnPort) before the next save, before anything that reads checkpoints and at the run's end, and polls
// it at every step boundary: a failure there is thrown on the main thread as the same error a synchronous save throws.
// A watchdog thread (checkpoint-watchdog.ts) owns the save thread and wakes that wait if the thread dies unanswered;
// its own death (nobody left to wake the wait) is seen by its heartbeat stopping.

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads'
import { OutOfSpaceError } from '../util/atomic.js'
import { InputError } from '../util/errors.js'
import { DamagedCheckpointError } from './checkpoint-state.js'
import type { SaverDeath } from './checkpoint-watchdog.js'
import {
  checkpointName, COMMITTED_BEST, pruneCheckpoints, removeRunEntry, saveBest, warned, writeCheckpoint, type Checkpoint, type KeepPolicy,
  type Warn,
} from './checkpoint.js'

/** One save: a step checkpoint when `regular` (then best/ from it when `isBest`), else best/ alone (weights only). */
export interface SaveJob { runDir: string; ck: Checkpoint; regular: boolean; isBest: boolean; keep: KeepPolicy }

/** Where a regular save's checkpoint goes. */
export function saveDir(job: Pick<SaveJob, 'runDir' | 'ck'>): string {
  return join(job.runDir, 'checkpoints', checkpointName(job.ck.progress.step))
}

/** The save itself, on whichever thread runs it: write -> prune -> best/ -> remove .best-committed, each durable
 *  before the next (every kill point between them is recovered by --resume). */
export function performSave(job: SaveJob, warn: Warn): void {
  const { runDir, ck } = job
  try {
    if (job.regular) {
      const dir = saveDir(job)
      writeCheckpoint(dir, ck, warn)
      pruneCheckpoints(runDir, job.keep, warn)
      if (job.isBest) saveBest(runDir, dir, { warn })
      removeRunEntry(runDir, COMMITTED_BEST, warn)   // best/ is now the best as of the newest checkpoint
    } else {
      // a resume from the newest checkpoint trains this step again: it needs that checkpoint's best back
      const best = join(runDir, 'best')
      if (!existsSync(join(runDir, COMMITTED_BEST)) && existsSync(best)) saveBest(runDir, best, { to: COMMITTED_BEST, warn })
      writeCheckpoint(best, { ...ck, optimizer: null }, warn)   // for evaluation: weights only
    }
  } catch (e) {
    const step = ck.progress.step
    throw e instanceof OutOfSpaceError ? new OutOfSpaceError(`train: checkpoint of step ${step} not written: ${e.message}`) : e
  }
}

/** What crosses the thread boundary of an error: its class by name and the fields the CLI reads (code, syscall, path). */
export interface SentError { kind: string; message: string; stack?: string; code?: string; syscall?: string; path?: string; errno?: number }

export function sendError(e: unknown): SentError {
  const err = e instanceof Error ? e : new Error(String(e))
  const sys = err as NodeJS.ErrnoException
  const kind = err instanceof OutOfSpaceError ? 'OutOfSpaceError' : err instanceof DamagedCheckpointError ? 'DamagedCheckpointError'
    : err instanceof InputError ? 'InputError' : err instanceof RangeError ? 'RangeError' : err instanceof TypeError ? 'TypeError' : 'Error'
  const out: SentError = { kind, message: err.message }
  if (err.stack !== undefined) out.stack = err.stack
  if (sys.code !== undefined) out.code = sys.code
  if (sys.syscall !== undefined) out.syscall = sys.syscall
  if (sys.path !== undefined) out.path = sys.path
  if (sys.errno !== undefined) out.errno = sys.errno
  return out
}

/** The error `sendError` described, as the same class with the same message and fields. */
export function receiveError(s: SentError): Error {
  const make: Record<string, (m: string) => Error> = {
    OutOfSpaceError: m => new OutOfSpaceError(m), DamagedCheckpointError: m => new DamagedCheckpointError(m),
    InputError: m => new InputError(m), RangeError: m => new RangeError(m), TypeError: m => new TypeError(m),
  }
  const e = (make[s.kind] ?? (m => new Error(m)))(s.message)
  if (s.stack !== undefined) e.stack = s.stack
  const { code, syscall, path, errno } = s
  return Object.assign(e, code !== undefined ? { code } : {}, syscall !== undefined ? { syscall } : {},
    path !== undefined ? { path } : {}, errno !== undefined ? { errno } : {})
}

/** Main -> worker: the save's number (1, 2, ... per saver), the job, and the paths warned about so far (each warned
 *  about once per process, whichever thread). */
export interface SaverJobMessage { seq: number; job: SaveJob; warned: string[] }

/** Worker -> main: warnings as they happen, then one 'done' echoing the save's number (with the snapshot's buffers
 *  and the warned paths handed back); a throw outside a save's handling answers with the number of the last save sent. */
export type SaverMessage = { kind: 'warn'; line: string } |
  { kind: 'done'; seq: number; error: SentError | null; buffers: ArrayBuffer[]; warned: string[] }

// The watchdog beats flag [4] every HEARTBEAT_MS from its own event loop, which no save blocks (saves run on the save
// thread), so a save of minutes on a slow disk never silences it. A main thread blocked in a wait takes WATCHDOG_SILENCE_MS
// without a beat for the watchdog's death (terminated, out of memory, a module that failed to load: then nobody is left
// to wake it): seconds, where a starved but live thread beats many times. The silence is counted in the wait's own slices,
// each at most HEARTBEAT_MS, so a process paused as a whole (SIGSTOP, a suspended machine) does not trip it on resuming.
export const HEARTBEAT_MS = 250
export const WATCHDOG_SILENCE_MS = 5000

// answer: the save's own 'done' (its error or null), undefined until read
interface InFlight { seq: number; job: SaveJob; onDone: () => void; answer?: SentError | null }

/** The main thread's side: start() hands a save to the worker (started at the first save), poll() and wait() collect
 *  its outcome. A failed save's error is thrown by the poll() or wait() that sees it, once. */
export class CheckpointSaver {
  private worker: Worker | null = null   // the watchdog, which owns the save thread
  private port: MessagePort | null = null   // to and from the save thread
  private watch: MessagePort | null = null   // from the watchdog: the save thread's death (SaverDeath)
  // [0]: how many 'done' answers the save thread has posted (each counted after its post); [1]: 1 once it has loaded
  // its modules (or failed to); [2]: 1 once it has ended, unasked (the watchdog raises it; this thread does once the
  // watchdog is seen gone); [3]: 1 once close() stops it; [4]: the watchdog's heartbeat count. A fresh one per thread.
  private flag = new Int32Array(new SharedArrayBuffer(20))
  private death: string | null = null
  private inFlight: InFlight | null = null
  private seq = 0       // the last save's number
  private answers = 0   // 'done' answers read from the port, of this thread

  constructor(private readonly warn: Warn) {}

  /** Starts `job` after waiting for the save before it; `onDone` runs on this thread once it is complete on disk.
   *  The job's arrays are transferred (unusable here afterwards): pass a snapshot, not the model's own memory. */
  start(job: SaveJob, onDone: () => void): void {
    this.wait()
    const port = this.ensureWorker()
    if (this.ended()) throw new Error(`train: checkpoint of step ${job.ck.progress.step} not written: ${this.died()}`)
    const arrays = [job.ck.params, job.ck.optimizer?.m, job.ck.optimizer?.v].filter(a => a !== undefined)
    const whole = (a: Float32Array): boolean => a.byteOffset === 0 && a.byteLength === a.buffer.byteLength
    if (!arrays.every(whole) || new Set(arrays.map(a => a.buffer)).size !== arrays.length) {
      throw new Error('checkpoint saver: a snapshot array must own its whole buffer (it is transferred)')
    }
    this.inFlight = { seq: ++this.seq, job, onDone }
    port.postMessage({ seq: this.seq, job, warned: [...warned] } satisfies SaverJobMessage, arrays.map(a => a.buffer as ArrayBuffer))
  }

  /** Collects a finished save without waiting (a step boundary): its warnings, its completion, or its error thrown. */
  poll(): void {
    if (this.inFlight !== null && this.answered()) this.collect()
  }

  /** Blocks until the save in flight (if any) is complete; throws its error. */
  wait(): void {
    if (this.inFlight === null) return
    this.block(0, () => this.answers, () => this.answered())
    this.collect()
  }

  /** wait(), then the worker is stopped (the end of a run, whatever ended it). */
  close(): void {
    try { this.wait() } finally {
      Atomics.store(this.flag, 3, 1)   // before the watchdog sees the save thread end with it
      void this.worker?.terminate()   // and the save thread with it
      this.port?.close()
      this.watch?.close()
      this.worker = null
      this.port = null
      this.watch = null
    }
  }

  /** Starts the worker now (else at the first save) and waits until it is ready (~0.1 s), so that a save, the first
   *  one too (a stop's), starts on the disk at once. Throws if it dies before. */
  ensureWorker(): MessagePort {
    if (this.port !== null) return this.port
    const save = new MessageChannel(), watch = new MessageChannel()
    const flag = this.flag = new Int32Array(new SharedArrayBuffer(20))
    this.answers = 0
    this.death = null
    // the save thread's port is passed on by the watchdog: a snapshot goes from here to the save thread untouched
    this.worker = new Worker(new URL('./checkpoint-watchdog.js', import.meta.url), {
      workerData: { port: save.port2, watch: watch.port2, flag, beatMs: HEARTBEAT_MS }, transferList: [save.port2, watch.port2],
    })
    this.worker.unref()   // it never keeps the process alive: close() or the process's end stops it
    // its end, seen while this loop is free (between steps): the run stops at the next poll, not a silence later
    let error: string | null = null
    this.worker.on('error', (e: Error) => { error = e.message })   // an uncaught throw there, before 'exit'
    this.worker.on('exit', code => {
      if (this.flag !== flag || Atomics.load(flag, 3) === 1) return   // a thread since, or close() stopped it
      this.watchdogGone(`exit code ${code}${error !== null ? `: ${error}` : ''}`)
    })
    this.port = save.port1
    this.watch = watch.port1
    this.block(1, () => 0, () => Atomics.load(this.flag, 1) === 1 || this.ended())
    if (this.ended()) throw new Error(`train: ${this.died()} as it started`)
    return save.port1
  }

  /** Waits on flag [slot] (while it holds value()) until done(), in slices that check the watchdog's heartbeat: a
   *  silence of WATCHDOG_SILENCE_MS marks the watchdog gone (then ended(), and done() sees it). */
  private block(slot: 0 | 1, value: () => number, done: () => boolean): void {
    let beat = Atomics.load(this.flag, 4), silent = 0
    while (!done()) {
      const t0 = performance.now()
      Atomics.wait(this.flag, slot, value(), HEARTBEAT_MS)
      const now = Atomics.load(this.flag, 4)
      if (now !== beat) { beat = now; silent = 0; continue }
      silent += Math.min(performance.now() - t0, HEARTBEAT_MS)
      if (silent >= WATCHDOG_SILENCE_MS) this.watchdogGone(`no heartbeat for ${WATCHDOG_SILENCE_MS / 1000} s`)
    }
  }

  /** The watchdog is gone, and the save thread with it (its child): ended(), and why, unless a death came first. */
  private watchdogGone(why: string): void {
    if (this.ended()) return
    this.death = `the checkpoint watchdog thread stopped (${why})`
    Atomics.store(this.flag, 2, 1)
  }

  private ended(): boolean {
    return Atomics.load(this.flag, 2) === 1
  }

  /** Why the save thread is gone, once it ended(): the watchdog's account, read once and kept. */
  private died(): string {
    const m = this.watch !== null ? receiveMessageOnPort(this.watch)?.message as SaverDeath | undefined : undefined
    if (m !== undefined && this.death === null) {
      this.death = `the checkpoint thread died (exit code ${m.code}${m.error !== null ? `: ${m.error}` : ''})`
    }
    return this.death ?? 'the checkpoint thread died'
  }

  /** Reads what the save thread posted; true once the save in flight has its own answer or the thread has ended. An
   *  answer with another save's number (an earlier one's, or a throw's between saves) is no answer to this one: a
   *  note, and the wait goes on for its own, which comes or the thread's death does. Failing the save on it would
   *  stop a run whose checkpoint may be fine; taking it would report a save not yet on disk, or a failure it had not. */
  private answered(): boolean {
    const f = this.inFlight!, ended = this.ended(), posted = Atomics.load(this.flag, 0)   // before the port: all on it
    if (posted === this.answers && !ended) return false
    for (let m; (m = receiveMessageOnPort(this.port!)) !== undefined;) {
      const msg = m.message as SaverMessage
      if (msg.kind === 'warn') { this.warn(msg.line); continue }
      this.answers++   // its buffers come back only to be dropped here: the snapshot is garbage from now on
      for (const p of msg.warned) warned.add(p)
      if (msg.seq === f.seq) f.answer = msg.error
      else this.warn(`train: note: ignored an answer of the checkpoint thread to save #${msg.seq} while save #${f.seq} ` +
        `(step ${f.job.ck.progress.step}) was pending${msg.error !== null ? ` (error: ${msg.error.message})` : ''}`)
    }
    if (this.answers < posted && f.answer === undefined) {
      f.answer = { kind: 'Error', message: 'checkpoint worker raised its flag without an answer' }
    }
    this.answers = Math.max(this.answers, posted)
    return f.answer !== undefined || ended
  }

  private collect(): void {
    const { job, onDone, answer } = this.inFlight!
    this.inFlight = null
    if (answer === undefined) throw new Error(`train: checkpoint of step ${job.ck.progress.step} not written: ${this.died()}`)
    if (answer !== null) {
      const e = receiveError(answer)
      // not a save's own error (those name their path): say which save it was
      if (answer.kind === 'Error' && answer.message.startsWith('checkpoint worker')) {
        e.message = `train: checkpoint of step ${job.ck.progress.step} not written: ${e.message}`
      }
      throw e
    }
    onDone()
  }
}
