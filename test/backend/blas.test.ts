// The native-BLAS path (kernels: 'blas'): the binding itself (all four transposes on subarray views, whose
// offsets must reach the C side, against float64 loops; one-row products, which go to sgemv, too), describe(), a bad LLMTS_BLAS, then the conformance
// suite and model goldens on that path (paths.ts). Honours LLMTS_BLAS; skips cleanly when no BLAS library is
// found or LLMTS_BLAS=off (CI installs libopenblas0-pthread to run it).

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { findBlas } from '../../src/backend/cpu/blas.js'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { registerPathSuites } from './paths.js'
import { checkSgemm } from './sgemm-check.js'

const blas = findBlas()   // $LLMTS_BLAS: a path that cannot be loaded throws here, failing this file loudly

if (blas === null) {
  test('BLAS path', (t) => {
    t.skip(`no BLAS library found (LLMTS_BLAS=${process.env['LLMTS_BLAS'] ?? 'auto'}; apt-get install libopenblas0-pthread)`)
  })
} else {
  test('blas: sgemm on offset views, every transpose, beta 0 and 1, against float64 loops', () => {
    checkSgemm(blas)
    const shared = (n: number): Float32Array => new Float32Array(new SharedArrayBuffer(4 * n))
    checkSgemm(blas, [[9, 11, 13]], shared)
  })

  test('blas: one-row products (the cblas_sgemv route) on offset views, every transpose, beta 0 and 1', () => {
    checkSgemm(blas, [[1, 1, 1], [1, 53, 300], [1, 70, 7], [1, 5, 257]])
  })

  test('blas: describe() names the library and the thread count', () => {
    assert.match(new CpuBackend({ kernels: 'blas', threads: 1 }).describe(), /^cpu backend: .+ \(.+\), 1 thread$/)
  })

  test('blas: LLMTS_BLAS naming a missing library is a one-line input error', () => {
    assert.throws(() => findBlas('/nonexistent/libnothing.so'), /^InputError: blas: LLMTS_BLAS=\/nonexistent\/libnothing.so cannot be loaded/)
  })

  registerPathSuites('blas', 'blas')
}
