// A synchronous worker-thread pool for the CPU backend: run(tasks, local) posts tasks to the workers, runs
// `local` on the calling thread, then blocks (Atomics.wait) until every worker has finished, so backend ops
// stay synchronous. Tensors must live on SharedArrayBuffers: a task's typed arrays are then shared, not copied.
// Workers are unref'd (they never keep the process alive) and run the op table of worker.ts.

import { Worker } from 'node:worker_threads'
import { workerExecArgv } from '../../util/workers.js'
import type { OpName } from './optable.js'
import type { WasmVariant } from './wasm/module.js'

export interface Task { op: OpName; args: unknown[] }

/** What each worker needs to pick its kernels (same choice as the backend that owns the pool). */
/** simd: the WebAssembly build the calling thread runs (workers run the same), null for none. */
export interface WorkerSetup { simd: WasmVariant | null; gemm: 'wasm' | 'js'; gemmMinWork: number }

const PENDING = 0, READY = 1, FAILED = 2    // control words
const ERROR_BYTES = 2048
const START_TIMEOUT_MS = 60_000

export class WorkerPool {
  private readonly workers: Worker[] = []
  private readonly ctl = new Int32Array(new SharedArrayBuffer(3 * 4))
  private readonly errorText = new Uint8Array(new SharedArrayBuffer(ERROR_BYTES))
  private started = false
  private busy = false     // run() is not reentrant: a local slice must not start another parallel op

  /** size: worker threads (the caller's thread works too, so `size + 1` threads in all). */
  constructor(readonly size: number, setup: WorkerSetup) {
    const url = new URL('./worker.js', import.meta.url)
    const execArgv = workerExecArgv()
    for (let i = 0; i < size; i++) {
      const w = new Worker(url, { execArgv, workerData: { ...setup, ctl: this.ctl, errorText: this.errorText } })
      w.unref()
      this.workers.push(w)
    }
  }

  /** Waits (once) until every worker has loaded its modules. */
  private waitStarted(): void {
    if (this.started) return
    const t0 = Date.now()
    for (;;) {
      const ready = Atomics.load(this.ctl, READY)
      if (ready >= this.size) break
      if (Date.now() - t0 > START_TIMEOUT_MS) {
        throw new Error(`cpu backend: only ${ready} of ${this.size} worker threads started`)
      }
      Atomics.wait(this.ctl, READY, ready, 1000)
    }
    this.started = true
  }

  /** Runs tasks on workers 0..tasks.length-1 and `local` here; returns when all are done, throws a worker's error. */
  run(tasks: Task[], local: () => void): void {
    if (tasks.length > this.size) throw new Error(`cpu backend: ${tasks.length} tasks for ${this.size} workers`)
    if (this.busy) throw new Error('cpu backend: a parallel op started inside another one')
    this.waitStarted()
    this.busy = true
    Atomics.store(this.ctl, FAILED, 0)
    Atomics.store(this.ctl, PENDING, tasks.length)
    for (let i = 0; i < tasks.length; i++) this.workers[i]!.postMessage(tasks[i])
    let localError: unknown = null
    try {
      local()
    } catch (e) {
      localError = e
    }
    for (;;) {
      const pending = Atomics.load(this.ctl, PENDING)
      if (pending === 0) break
      Atomics.wait(this.ctl, PENDING, pending)
    }
    this.busy = false
    if (localError !== null) throw localError
    if (Atomics.load(this.ctl, FAILED) !== 0) {
      const end = this.errorText.indexOf(0)
      const text = Buffer.from(this.errorText.slice(0, end < 0 ? ERROR_BYTES : end)).toString('utf8')
      throw new Error(`cpu backend worker: ${text}`)
    }
  }

  /** Stops the workers (the pool is unusable afterwards). */
  close(): void {
    for (const w of this.workers) void w.terminate()
    this.workers.length = 0
  }
}
