// The tokenization pipeline shared by `prepare` and `prepare fineweb`: source items in, token batches out, in
// source order. Text pieces are batched (~batchChars each), Parquet tasks go as they are; a pool of worker
// threads runs them, and each result is handed on as soon as it and all earlier ones are done, while later
// tasks still run. At most alivePerWorker·workers tasks exist at once (queued, running or done but not yet
// handed on), which bounds memory; the bytes written never depend on the worker count.

import { TokenizerPool } from './pool.js'
import type { InvalidRows, TokenizeResult, TokenizeTask } from './tokenize-task.js'
import type { SourceItem } from './sources/source.js'

const pipelineDefaults = {
  batchChars: 1 << 18,        // characters of text pieces per task
  perWorker: 2,               // tasks a worker holds at once: one running, one being read
  alivePerWorker: 4,          // tasks in existence per worker (the rest: done, waiting for an earlier one)
}

/** A source item, optionally tagged with where it lies in the input (fineweb's resume points). */
export type PipelineItem<P> = SourceItem & { at?: P }

interface TokenBatch<P> {
  tokens: Uint16Array         // (n) ids, EOT before every document begun in the batch
  documents: number           // documents begun in the batch
  bytes: number               // bytesRead() when the batch was submitted
  at: P | undefined           // tag of the batch's first item
  invalidUtf8?: InvalidRows   // a Parquet task's rows whose text was not UTF-8
}

interface PipelineOptions {
  workers: number             // 0: tokenize on the calling thread
  allowSpecial: boolean
  bytesRead?: () => number
  signal?: AbortSignal
}

/** Keeps results in submission order and hands each on once it and all before it are done. */
class InOrder<M> {
  private chain: Promise<void> = Promise.resolve()
  private alive = 0
  private failure: { error: unknown } | undefined
  private wake: (() => void) | undefined

  constructor(private readonly capacity: number, private readonly onResult: (r: TokenizeResult, meta: M) => void) {}

  /** Adds a running task; waits while `capacity` tasks are alive. Throws the first failure, in order. */
  async add(work: Promise<TokenizeResult>, meta: M): Promise<void> {
    work.catch(() => { /* awaited, in order, below */ })
    this.alive++
    this.chain = this.chain.then(async () => {
      try {
        const r = await work
        if (this.failure === undefined) this.onResult(r, meta)
      } finally {
        this.alive--
        this.wake?.()
      }
    }).catch(error => {
      this.failure ??= { error }
      this.wake?.()
    })
    while (this.alive >= this.capacity && this.failure === undefined) await new Promise<void>(r => { this.wake = r })
    this.wake = undefined
    if (this.failure !== undefined) throw this.failure.error
  }

  async finish(): Promise<void> {
    await this.chain
    if (this.failure !== undefined) throw this.failure.error
  }

  /** Hands nothing more on; resolves when the tasks already added have settled. */
  async abandon(): Promise<void> {
    this.failure ??= { error: new Error('pipeline: abandoned') }
    await this.chain
  }
}

/** Tokenizes `items` on `opts.workers` threads and calls onBatch with each batch, in order; see the header. */
export async function tokenizeInOrder<P>(items: AsyncIterable<PipelineItem<P>>, opts: PipelineOptions,
                                         onBatch: (b: TokenBatch<P>) => void): Promise<void> {
  const pool = new TokenizerPool(opts.workers, { allowSpecial: opts.allowSpecial, perWorker: pipelineDefaults.perWorker })
  const order = new InOrder<{ bytes: number; at: P | undefined }>(Math.max(1, opts.workers * pipelineDefaults.alivePerWorker), (r, meta) => {
    if (opts.signal?.aborted) throw opts.signal.reason
    onBatch({ ...r, ...meta })
  })
  const submit = (task: TokenizeTask, at: P | undefined): Promise<void> => order.add(pool.run(task), { bytes: opts.bytesRead?.() ?? 0, at })
  let texts: string[] = []
  let newDoc: boolean[] = []
  let chars = 0
  let textAt: P | undefined
  const flushText = async (): Promise<void> => {
    if (texts.length === 0) return
    const task: TokenizeTask = { kind: 'text', texts, newDoc }
    texts = []; newDoc = []; chars = 0
    await submit(task, textAt)
  }
  try {
    for await (const item of items) {
      if (opts.signal?.aborted) throw opts.signal.reason
      if ('parquet' in item) {
        await flushText()
        await submit({ kind: 'parquet', task: item.parquet }, item.at)
        continue
      }
      if (texts.length === 0) textAt = item.at
      texts.push(item.text)
      newDoc.push(item.newDoc)
      chars += item.text.length
      if (chars >= pipelineDefaults.batchChars) await flushText()
    }
    await flushText()
    await order.finish()
  } finally {
    await pool.close()
    await order.abandon() // after an error: nothing reaches onBatch once this function has settled
  }
}
