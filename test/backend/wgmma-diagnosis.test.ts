// The wgmma failure diagnosis (wgmma-diagnosis.ts) on products made wrong on purpose: each broken assumption, as the
// GPU would show it, is named first, for both major-nesses; the intended product is named first when nothing is wrong.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { bf16ToF32, f32ToBf16 } from '../../src/backend/cuda/memory.js'
import { hypothesisNames, hypothesisProduct, wgmmaDiagnosis } from './wgmma-diagnosis.js'
import { randn } from './cuda-mixed.js'

test('wgmma diagnosis: every broken layout is told apart from the others and named first', () => {
  const a = bf16ToF32(f32ToBf16(randn(64 * 64))), b = bf16ToF32(f32ToBf16(randn(64 * 64)))
  for (const transB of [0, 1]) {
    for (const name of hypothesisNames) {
      const d = hypothesisProduct(name, a, b, transB)
      assert.ok(wgmmaDiagnosis(d, a, b, transB).startsWith(`closest: ${name} (max error 0`), `${name}, transB ${transB}`)
    }
  }
  const nan = new Float32Array(64 * 64).fill(NaN)
  assert.match(wgmmaDiagnosis(nan, a, b, 0), /max error Infinity/)
})
