// When the GPU's 64x64x64 wgmma product (attention_wgmma_check) differs from the float64 one, which of the layouts
// the kernels assume did the tensor cores read otherwise? Each hypothesis recomputes the product with one assumption
// broken; the closest names the likely culprit, so a failing first run on a Hopper GPU points at wgmma.cuh's line.

type Hypothesis = [string, (a: Float32Array, b: Float32Array, transB: number) => Float32Array]

/** d (64 x 64) = a · B, B = bᵀ (transB 0, K-major) or b (transB 1, N-major), all row-major 64 x 64. */
export function product(a: Float32Array, b: Float32Array, transB: number): Float32Array {
  const d = new Float32Array(64 * 64)
  for (let i = 0; i < 64; i++) {
    for (let j = 0; j < 64; j++) {
      let sum = 0
      for (let k = 0; k < 64; k++) sum += a[i * 64 + k]! * (transB ? b[k * 64 + j]! : b[j * 64 + k]!)
      d[i * 64 + j] = sum
    }
  }
  return d
}

/** m with element (r, c) taken from (row(r, c), col(r, c)). */
const remap = (m: Float32Array, row: (r: number, c: number) => number, col: (r: number, c: number) => number): Float32Array =>
  Float32Array.from({ length: 64 * 64 }, (_, i) => m[row(i >> 6, i & 63) * 64 + col(i >> 6, i & 63)]!)

const hypotheses: Hypothesis[] = [
  ['as the kernels assume', product],
  ['B read with the other major-ness (the descriptor\'s or the instruction\'s transpose bit)', (a, b, t) => product(a, b, 1 - t)],
  ['B read without the 128-byte swizzle (chunk c of row r where the loader put chunk c ^ r % 8)',
    (a, b, t) => product(a, remap(b, r => r, (r, c) => (((c >> 3) ^ (r & 7)) << 3) | (c & 7)), t)],
  ['A fragments with k 0-7 and 8-15 swapped (registers a0,a1 and a2,a3 of each k16 step)',
    (a, b, t) => product(remap(a, r => r, (_, c) => c ^ 8), b, t)],
  // rows swapped in A or in D give the same product: one hypothesis
  ['rows g and g+8 swapped (registers a0/a1 and a2/a3 of the A fragments, or d0,d1 and d2,d3 of the D fragments)',
    (a, b, t) => remap(product(a, b, t), r => r ^ 8, (_, c) => c)],
  ['D fragments with column pairs swapped within each n8 tile', (a, b, t) => remap(product(a, b, t), r => r, (_, c) => c ^ 2)],
]

export const hypothesisNames: readonly string[] = hypotheses.map(([what]) => what)

/** The product the GPU would show under the hypothesis called `name`. */
export function hypothesisProduct(name: string, a: Float32Array, b: Float32Array, transB: number): Float32Array {
  return hypotheses.find(([what]) => what === name)![1](a, b, transB)
}

/** The hypotheses ranked by their largest difference from what the GPU wrote, closest first, one line. */
export function wgmmaDiagnosis(d: Float32Array, a: Float32Array, b: Float32Array, transB: number): string {
  const ranked = hypotheses.map(([what, f]) => {
    const want = f(a, b, transB)
    let worst = 0
    for (let i = 0; i < d.length; i++) worst = Math.max(worst, Math.abs(d[i]! - want[i]!))
    return { what, worst: Number.isNaN(worst) ? Infinity : worst }
  }).sort((x, y) => x.worst - y.worst)
  return `closest: ${ranked.map(h => `${h.what} (max error ${h.worst.toPrecision(3)})`).join('; then ')}`
}
