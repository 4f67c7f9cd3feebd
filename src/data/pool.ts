// A pool of tokenizer worker threads. run() queues a task; a worker takes the next one whenever it has fewer
// than perWorker in hand (pulled, not assigned up front, so a slow task never leaves work stranded behind it).
// Callers keep the promises in submission order, which makes the output independent of the worker count and of
// timing. With 0 workers tasks run on the calling thread.

import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { InputError } from '../util/errors.js'
import { workerExecArgv } from '../util/workers.js'
import { runTokenizeTask, type TokenizeResult, type TokenizeTask } from './tokenize-task.js'
import type { TokenizeReply, TokenizeRequest } from './tokenize-worker.js'

interface Job { req: TokenizeRequest; resolve: (r: TokenizeResult) => void; reject: (e: Error) => void }

interface Slot { worker: Worker; jobs: Map<number, Job> }

/** The tokenizer threads to start for a user's --workers `n`: at most one per core (the work is CPU-bound, and each
 *  thread holds its own tokenizer: --workers 1000 asked for 1,000 of them and over 13 GB). The CLIs apply it; the
 *  pool itself starts what it is given, so tests can run more workers than the machine has cores. */
export function tokenizerWorkers(n: number): number {
  return Math.min(n, availableParallelism())
}

export class TokenizerPool {
  private readonly slots: Slot[] = []
  private readonly waiting: Job[] = []
  private readonly perWorker: number
  private readonly allowSpecial: boolean
  private nextId = 0
  private failure: Error | null = null

  constructor(readonly workers: number, opts: { allowSpecial: boolean; perWorker?: number }) {
    this.allowSpecial = opts.allowSpecial
    this.perWorker = Math.max(1, opts.perWorker ?? 2)
    for (let i = 0; i < workers; i++) this.slots.push(this.startWorker())
  }

  private startWorker(): Slot {
    const worker = new Worker(new URL('./tokenize-worker.js', import.meta.url),
      { execArgv: workerExecArgv(), workerData: { llmtsTokenizeWorker: true } })
    const slot: Slot = { worker, jobs: new Map() }
    worker.on('message', (reply: TokenizeReply) => {
      const job = slot.jobs.get(reply.id)
      if (job === undefined) return
      slot.jobs.delete(reply.id)
      if ('error' in reply) job.reject(reply.inputError ? new InputError(reply.error) : new Error(`prepare: tokenizer worker failed: ${reply.error}`))
      else job.resolve({ tokens: reply.tokens, documents: reply.documents, ...(reply.invalidUtf8 !== undefined ? { invalidUtf8: reply.invalidUtf8 } : {}) })
      this.dispatch()
    })
    const fail = (e: Error): void => {
      this.failure ??= e
      for (const job of [...slot.jobs.values(), ...this.waiting.splice(0)]) job.reject(this.failure)
      slot.jobs.clear()
    }
    worker.on('error', e => fail(new Error(`prepare: tokenizer worker crashed: ${e.message}`)))
    worker.on('exit', code => { if (code !== 0) fail(new Error(`prepare: tokenizer worker exited with code ${code}`)) })
    return slot
  }

  /** Hands waiting jobs to the workers with the fewest in hand, up to perWorker each. */
  private dispatch(): void {
    while (this.waiting.length > 0) {
      let slot: Slot | undefined
      for (const s of this.slots) if (s.jobs.size < this.perWorker && (slot === undefined || s.jobs.size < slot.jobs.size)) slot = s
      if (slot === undefined) return
      const job = this.waiting.shift()!
      slot.jobs.set(job.req.id, job)
      slot.worker.postMessage(job.req)
    }
  }

  /** The task's tokens and document count. */
  run(task: TokenizeTask): Promise<TokenizeResult> {
    if (this.slots.length === 0) return runTokenizeTask(task, { allowSpecial: this.allowSpecial })
    if (this.failure !== null) return Promise.reject(this.failure)
    return new Promise((resolve, reject) => {
      this.waiting.push({ req: { id: this.nextId++, task, allowSpecial: this.allowSpecial }, resolve, reject })
      this.dispatch()
    })
  }

  async close(): Promise<void> {
    const closing = new Error('prepare: the tokenizer pool was closed')
    for (const job of this.waiting.splice(0)) job.reject(closing)
    this.failure ??= closing
    await Promise.all(this.slots.map(s => s.worker.terminate()))
    this.slots.length = 0
  }
}
