// The worker thread of CheckpointSaver (checkpoint-writer.ts), started by its watchdog (checkpoint-watchdog.ts): raises
// a flag once ready, then runs each save it is sent, posts its warnings and then 'done' with the save's number (the
// error, if any, and the snapshot's buffers handed back), and counts it on the flag the main thread waits on.

import { getPriority, setPriority } from 'node:os'
import { workerData, type MessagePort } from 'node:worker_threads'
import type { SaverJobMessage, SaverMessage, SentError } from './checkpoint-writer.js'
import { saverStaleAnswer, saverThreadFault } from './test-hooks.js'

const { port, flag } = workerData as { port: MessagePort; flag: Int32Array }
// below the training threads (on Linux, pid 0 is this thread alone): on a CPU backend whose threads take every core, a
// save competing at equal priority slowed the steps more than it saved
try { setPriority(0, Math.min(19, getPriorityOr0() + 10)) } catch { /* not allowed: equal priority */ }

function getPriorityOr0(): number {
  try { return getPriority(0) } catch { return 0 }
}

let current = 0   // the number of the last save sent: a throw outside a save's handling answers for it

function finish(seq: number, error: SentError | null, buffers: ArrayBuffer[], warned: string[]): void {
  port.postMessage({ kind: 'done', seq, error, buffers, warned } satisfies SaverMessage, buffers)
  answered()
}

function answered(): void {
  Atomics.add(flag, 0, 1)
  Atomics.notify(flag, 0)
}

// imported here rather than statically: a module that fails to load is reported as the save's error, not a hang
const modules = Promise.all([import('./checkpoint-writer.js'), import('./checkpoint.js')])
const ready = (): void => { Atomics.store(flag, 1, 1); Atomics.notify(flag, 1) }
modules.then(ready, ready)

// A throw outside a save's try (a bug; the answer not posted) would end this thread unanswered: it gets an answer still,
// with the error's message, and the flag raised (an end that runs no handler here is the watchdog's to report)
function died(e: unknown): void {
  try {
    port.postMessage({ kind: 'done', seq: current, buffers: [], warned: [],
      error: { kind: 'Error', message: `checkpoint worker failed: ${e instanceof Error ? e.message : String(e)}` } } satisfies SaverMessage)
  } finally {
    answered()
  }
}
process.on('uncaughtException', died)
process.on('unhandledRejection', died)

port.on('message', ({ seq, job, warned }: SaverJobMessage) => {
  current = seq
  const buffers = [job.ck.params, job.ck.optimizer?.m, job.ck.optimizer?.v].filter(a => a !== undefined).map(a => a.buffer as ArrayBuffer)
  modules.then(([w, ck]) => {
    saverStaleAnswer(error => finish(seq - 1, error, [], []))
    saverThreadFault()
    for (const p of warned) ck.warned.add(p)
    let error: SentError | null = null
    try { w.performSave(job, line => port.postMessage({ kind: 'warn', line } satisfies SaverMessage)) } catch (e) { error = w.sendError(e) }
    finish(seq, error, buffers, [...ck.warned])
  }, (e: unknown) => finish(seq, { kind: 'Error', message: `checkpoint worker: ${(e as Error).message}` }, buffers, warned))
})
