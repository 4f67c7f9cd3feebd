// The worker pool and the op splitting of accel.ts: ranges cover their span exactly once, a task really runs
// on the other thread (it writes into shared memory), a worker's error surfaces on the caller with its message,
// and a thrown local slice still waits for the workers before rethrowing.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { splitRange } from '../../src/backend/cpu/accel.js'
import type { OpName } from '../../src/backend/cpu/optable.js'
import { WorkerPool } from '../../src/backend/cpu/pool.js'
import { workerExecArgv } from '../../src/util/workers.js'
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

test('splitRange: aligned pieces that cover [0, n) once', () => {
  assert.deepEqual(splitRange(100, 2, 16), [[0, 64], [64, 100]])
  assert.deepEqual(splitRange(10, 4), [[0, 3], [3, 6], [6, 9], [9, 10]])
  assert.deepEqual(splitRange(5, 8), [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]])
  assert.deepEqual(splitRange(0, 2), [])
  for (const [n, parts, align] of [[1000, 3, 16], [17, 2, 1], [4096, 7, 16]] as const) {
    const r = splitRange(n, parts, align)
    assert.ok(r.length <= parts)
    assert.equal(r[0]![0], 0)
    assert.equal(r[r.length - 1]![1], n)
    for (let i = 1; i < r.length; i++) { assert.equal(r[i]![0], r[i - 1]![1]); assert.equal(r[i]![0] % align, 0) }
  }
})

test('pool: a task runs on a worker over shared memory; errors come back with their message', () => {
  const pool = new WorkerPool(1, { simd: 'simd', gemm: 'wasm', gemmMinWork: 0 })
  try {
    const n = 1000
    const sab = (): Float32Array => new Float32Array(new SharedArrayBuffer(4 * n))
    const out = sab(), a = sab(), b = sab()
    for (let i = 0; i < n; i++) { a[i] = i; b[i] = 2 * i }
    let localRan = false
    pool.run([{ op: 'residualForward', args: [out.subarray(500), a.subarray(500), b.subarray(500), 500] }], () => { localRan = true })
    assert.ok(localRan)
    assert.equal(out[499], 0, 'the worker wrote only its slice')
    assert.equal(out[500], 1500)
    assert.equal(out[999], 2997)
    assert.throws(() => pool.run([{ op: 'noSuchOp' as OpName, args: [] }], () => {}), /cpu backend worker: .*unknown op noSuchOp/)
    assert.throws(() => pool.run([{ op: 'residualForward', args: [out, a, b, n] }], () => { throw new Error('local failure') }), /local failure/)
    pool.run([{ op: 'residualForward', args: [out, a, b, 10] }], () => {})   // still usable afterwards
  } finally {
    pool.close()
  }
})

test('pool under `node --input-type=module -e`: the workers start (eval flags are not passed to them)', () => {
  assert.deepEqual(workerExecArgv(['--input-type=module', '-e', 'code', '--max-old-space-size=4096', '-p', 'x']),
    ['--max-old-space-size=4096'])
  const code = `import { WorkerPool } from ${JSON.stringify(pathToFileURL(resolve('dist/src/backend/cpu/pool.js')).href)}
    const pool = new WorkerPool(1, { simd: true, gemm: 'wasm', gemmMinWork: 0 })
    const out = new Float32Array(new SharedArrayBuffer(4 * 4)), a = new Float32Array(new SharedArrayBuffer(16)).fill(1)
    pool.run([{ op: 'residualForward', args: [out, a, a, 4] }], () => {})
    console.log(out.join(','))`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout.trim(), '2,2,2,2')
})
