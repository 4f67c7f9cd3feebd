// The array types the CPU op functions work over. Every op is written once over FloatArray so the backend
// runs it on Float32Array and the finite-difference tests run the very same code on Float64Array.

export type FloatArray = Float32Array | Float64Array

/** Throws (a bug, not bad input) unless `t` holds at least `n` elements. */
export function needLength(op: string, arg: string, t: { length: number }, n: number): void {
  if (t.length < n) throw new Error(`cpu backend: ${op}: ${arg} has ${t.length} elements, needs at least ${n}`)
}
