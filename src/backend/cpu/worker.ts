// Entry of a CPU-backend worker thread (pool.ts): loads this thread's kernels, then runs each posted task from
// the op table and reports completion through the shared control words (PENDING decremented and notified;
// FAILED set with the message in the shared error buffer).

import { parentPort, workerData } from 'node:worker_threads'
import { makeOpTable, type OpFn } from './optable.js'
import type { Task, WorkerSetup } from './pool.js'
import { loadWasmGemm } from './wasm/gemm.js'
import { kernelInstance } from './wasm/module.js'

const PENDING = 0, READY = 1, FAILED = 2

const setup = workerData as WorkerSetup & { ctl: Int32Array; errorText: Uint8Array }
const simd = setup.simd === null ? null : kernelInstance(setup.simd)   // the caller's build, not this thread's own pick
const ops = makeOpTable({ gemm: setup.gemm === 'wasm' ? loadWasmGemm(simd) : null, gemmMinWork: setup.gemmMinWork, simd })

function fail(e: unknown): void {
  const text = Buffer.from(e instanceof Error ? (e.stack ?? e.message) : String(e)).subarray(0, setup.errorText.length - 1)
  if (Atomics.compareExchange(setup.ctl, FAILED, 0, 1) === 0) {
    setup.errorText.fill(0)
    setup.errorText.set(text)
  }
}

parentPort!.on('message', (task: Task) => {
  try {
    const fn: OpFn | undefined = (ops as Record<string, OpFn>)[task.op]   // a message is untyped: checked here
    if (fn === undefined) throw new Error(`unknown op ${task.op}`)
    fn(...task.args)
  } catch (e) {
    fail(e)
  } finally {
    Atomics.sub(setup.ctl, PENDING, 1)
    Atomics.notify(setup.ctl, PENDING)
  }
})

Atomics.add(setup.ctl, READY, 1)
Atomics.notify(setup.ctl, READY)
