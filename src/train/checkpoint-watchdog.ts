// The watchdog of CheckpointSaver (checkpoint-writer.ts): this thread starts the save thread and watches it from its
// own event loop, which stays free while the main thread blocks in Atomics.wait (where the save thread's 'exit' event,
// delivered on the main thread's loop, is never seen). A save thread that ends without running a JS handler of its own
// (process.exit, out of memory, a module that fails to load) is flagged here, with its exit code, and the main thread
// woken. It beats a heartbeat too (flag [4], from this loop, free during any save): a main thread that sees no beat for
// a while takes this thread for dead, with nobody left to wake it. Tiny on purpose: it imports nothing that can fail,
// and the main <-> save thread port only passes through.

import { Worker, workerData, type MessagePort } from 'node:worker_threads'

/** What the watchdog posts on `watch` when the save thread ended unasked: its exit code and error event, if any. */
export interface SaverDeath { code: number; error: string | null }

// flag: the layout of CheckpointSaver's (checkpoint-writer.ts): [0] answers posted, [1] ready, [2] ended, [3] stopping,
// [4] heartbeat
const { port, watch, flag, beatMs } = workerData as { port: MessagePort; watch: MessagePort; flag: Int32Array; beatMs: number }
// test hook, read here (this thread imports nothing of ours): LLMTS_TEST_WATCHDOG_FAULT=start ends this thread with
// process.exit(9) before its first beat, =ready once the save thread is ready, =throw throws then (test-hooks.ts)
const fault = process.env['LLMTS_TEST_WATCHDOG_FAULT']
if (fault === 'start') process.exit(9)
setInterval(() => {
  Atomics.add(flag, 4, 1)
  if (Atomics.load(flag, 1) === 1 && fault === 'ready') process.exit(9)
  if (Atomics.load(flag, 1) === 1 && fault === 'throw') throw new Error('test hook: the watchdog fails (LLMTS_TEST_WATCHDOG_FAULT)')
}, beatMs)
Atomics.add(flag, 4, 1)
const saver = new Worker(new URL('./checkpoint-worker.js', import.meta.url), { workerData: { port, flag }, transferList: [port] })
let error: string | null = null
saver.on('error', (e: Error) => { error = e.message })   // emitted before 'exit': a module load, ERR_WORKER_OUT_OF_MEMORY
saver.on('exit', code => {
  if (Atomics.load(flag, 3) === 1) return   // close() stopped it: the run's normal end, no death
  watch.postMessage({ code, error } satisfies SaverDeath)   // before the flag, as the save thread's answers
  Atomics.store(flag, 2, 1)
  Atomics.notify(flag, 0)   // a wait for a save
  Atomics.notify(flag, 1)   // a wait for the thread to be ready
})
