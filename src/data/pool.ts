// A pool of tokenizer worker threads. submit() sends a batch to the least busy worker and resolves with its
// tokens; callers keep the promises in submission order, which makes the output independent of the worker
// count and of timing. With 0 workers batches are tokenized on the calling thread.

import { Worker } from 'node:worker_threads'
import { tokenizeBatch, type TokenizeReply, type TokenizeRequest } from './tokenize-worker.js'

interface Pending { resolve: (t: Uint16Array) => void; reject: (e: Error) => void }

interface Slot { worker: Worker; pending: Map<number, Pending> }

export class TokenizerPool {
  private readonly slots: Slot[] = []
  private nextId = 0
  private failure: Error | null = null

  constructor(readonly workers: number, private readonly allowSpecial: boolean) {
    for (let i = 0; i < workers; i++) this.slots.push(this.startWorker())
  }

  private startWorker(): Slot {
    const worker = new Worker(new URL('./tokenize-worker.js', import.meta.url), { workerData: { llmtsTokenizeWorker: true } })
    const slot: Slot = { worker, pending: new Map() }
    worker.on('message', (reply: TokenizeReply) => {
      const p = slot.pending.get(reply.id)
      if (p === undefined) return
      slot.pending.delete(reply.id)
      if ('error' in reply) p.reject(new Error(`prepare: tokenizer worker failed: ${reply.error}`))
      else p.resolve(reply.tokens)
    })
    const fail = (e: Error): void => {
      this.failure ??= e
      for (const p of slot.pending.values()) p.reject(e)
      slot.pending.clear()
    }
    worker.on('error', e => fail(new Error(`prepare: tokenizer worker crashed: ${e.message}`)))
    worker.on('exit', code => { if (code !== 0) fail(new Error(`prepare: tokenizer worker exited with code ${code}`)) })
    return slot
  }

  /** Tokens of the pieces: [EOT if newDoc[i]] ++ encode(texts[i]) for each i, concatenated. */
  submit(texts: string[], newDoc: boolean[]): Promise<Uint16Array> {
    const req: TokenizeRequest = { id: this.nextId++, texts, newDoc, allowSpecial: this.allowSpecial }
    if (this.slots.length === 0) {
      try { return Promise.resolve(tokenizeBatch(req)) } catch (e) { return Promise.reject(e) }
    }
    if (this.failure !== null) return Promise.reject(this.failure)
    let slot = this.slots[0]!
    for (const s of this.slots) if (s.pending.size < slot.pending.size) slot = s
    return new Promise((resolve, reject) => {
      slot.pending.set(req.id, { resolve, reject })
      slot.worker.postMessage(req)
    })
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map(s => s.worker.terminate()))
    this.slots.length = 0
  }
}
