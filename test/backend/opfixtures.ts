// Loads the op-level golden files written by reference/ops_reference.py (test/fixtures/ops/<op>.safetensors):
// __metadata__.cases lists each case's dims; tensors are named "<case>.<tensor>".

import { resolve } from 'node:path'
import { readSafetensors, toFloat32, toInt32, type SafetensorsFile } from '../helpers/safetensors.js'

export interface OpCase {
  name: string
  dims: Record<string, number | boolean>
  /** A dimension or option of the case; throws when absent (a fixture/test mismatch). */
  n(key: string): number
  has(tensor: string): boolean
  f32(tensor: string): Float32Array
  i32(tensor: string): Int32Array
}

export function loadOpCases(op: string): OpCase[] {
  const path = resolve(process.cwd(), 'test/fixtures/ops', `${op}.safetensors`)
  const file: SafetensorsFile = readSafetensors(path)
  const cases = JSON.parse(file.metadata['cases'] ?? '[]') as ({ name: string } & Record<string, number | boolean>)[]
  if (cases.length === 0) throw new Error(`${path} lists no cases (rerun reference/ops_reference.py)`)
  return cases.map(c => ({
    name: c.name,
    dims: c,
    n(key: string): number {
      const v = c[key]
      if (typeof v !== 'number') throw new Error(`${path}: case ${c.name} has no number ${key}`)
      return v
    },
    has: (t: string) => file.tensors.has(`${c.name}.${t}`),
    f32: (t: string) => toFloat32(file, `${c.name}.${t}`),
    i32: (t: string) => toInt32(file, `${c.name}.${t}`),
  }))
}
