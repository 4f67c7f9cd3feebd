// cuBLASLt matmuls for the row-major Linear layout, as column-major GEMMs (a row-major (R,C) matrix is a
// column-major (C,R) one). bf16 operands (fp32 accumulation, bf16 or fp32 output) or fp32 operands (TF32 unless
// turned off); the bias rides the BIAS epilogue. Descriptors, layouts and the heuristic's algorithm are built
// once per shape, dtype, epilogue and pointer alignment, then reused; one 32 MiB workspace serves them all. With
// gemmTune > 1 the heuristic's top candidates are timed on a shape's first call and the fastest kept (gemm-tune.ts).

import type { CublasLt } from './ffi.js'
import { fastest, timeCandidates, type GemmTuning, type TuneDevice } from './gemm-tune.js'
import { alignmentOf, dtypeBytes } from './memory.js'

interface Operand { ptr: number; dtype: 'f32' | 'bf16' }

/** D (m,n) = op(A)·op(B) (+ D if accumulate) (+ bias (m) broadcast over columns); all column-major. */
export interface Gemm {
  transA: boolean; transB: boolean; m: number; n: number; k: number
  a: Operand; lda: number
  b: Operand; ldb: number
  d: Operand; ldd: number
  accumulate: boolean
  bias: Operand | null      // same dtype as d
}

export const WORKSPACE_BYTES = 32 * 1024 * 1024
const CUDA_R_32F = 0, CUDA_R_16BF = 14
const COMPUTE_32F = 68, COMPUTE_32F_FAST_TF32 = 77
const DESC_TRANSA = 3, DESC_TRANSB = 4, DESC_EPILOGUE = 7, DESC_BIAS_POINTER = 8
const EPILOGUE_DEFAULT = 1, EPILOGUE_BIAS = 4
const PREF_MAX_WORKSPACE = 1, PREF_ALIGN_A = 5, PREF_ALIGN_B = 6, PREF_ALIGN_C = 7, PREF_ALIGN_D = 8
const HEURISTIC_RESULT_BYTES = 96    // cublasLtMatmulHeuristicResult_t: algo (64), workspaceSize, state, waves, reserved

const dataType = (o: Operand): number => o.dtype === 'bf16' ? CUDA_R_16BF : CUDA_R_32F

interface Plan { desc: bigint; aL: bigint; bL: bigint; dL: bigint; algo: Uint8Array }

/** gemmTune > 1: how many of the heuristic's candidates to time, and the GPU to time them on. */
export interface TuneOptions { candidates: number; device: TuneDevice }

/** Everything that makes two GEMMs need different descriptors or algorithms. */
export function planKey(g: Gemm, tf32: boolean): string {
  return [g.transA ? 'T' : 'N', g.transB ? 'T' : 'N', g.m, g.n, g.k, g.lda, g.ldb, g.ldd, g.a.dtype, g.b.dtype, g.d.dtype,
    g.bias === null ? '-' : `bias${alignmentOf(g.bias.ptr)}`, alignmentOf(g.a.ptr), alignmentOf(g.b.ptr), alignmentOf(g.d.ptr),
    g.a.dtype === 'f32' && tf32 ? 'tf32' : 'f32acc'].join(',')
}

export function describeGemm(g: Gemm): string {
  return `m=${g.m} n=${g.n} k=${g.k} op(A)=${g.transA ? 'T' : 'N'} op(B)=${g.transB ? 'T' : 'N'} A ${g.a.dtype} lda=${g.lda} ` +
    `B ${g.b.dtype} ldb=${g.ldb} D ${g.d.dtype} ldd=${g.ldd}${g.bias === null ? '' : ' +bias'}${g.accumulate ? ' +=' : ''}`
}

export class LtMatmul {
  private readonly handle: bigint
  private readonly plans = new Map<string, Plan>()
  private readonly one = new Float32Array([1])
  private readonly zero = new Float32Array([0])
  private readonly ptrBuf = new BigUint64Array(1)
  readonly tunings: GemmTuning[] = []   // one per tuned shape, in the order first met

  constructor(private readonly lt: CublasLt, private readonly workspace: number, private readonly tf32: boolean,
              private readonly tune: TuneOptions | null = null) {
    const h: (bigint | null)[] = [null]
    lt.call('cublasLtCreate', h)
    this.handle = h[0]!
  }

  run(g: Gemm): void {
    if (g.a.dtype !== g.b.dtype) throw new Error(`cuda: matmul operands differ in type (${describeGemm(g)})`)
    if (g.bias !== null && g.bias.dtype !== g.d.dtype) throw new Error(`cuda: matmul bias type differs from the output's (${describeGemm(g)})`)
    const key = planKey(g, this.tf32)
    let plan = this.plans.get(key)
    if (plan === undefined) {
      plan = this.createPlan(g)
      this.plans.set(key, plan)
    }
    if (g.bias !== null) this.setPointer(plan.desc, g.bias.ptr)
    this.matmul(g, plan, plan.algo)
  }

  private matmul(g: Gemm, plan: Plan, algo: Uint8Array): void {
    this.lt.call('cublasLtMatmul', this.handle, plan.desc, this.one, g.a.ptr, plan.aL, g.b.ptr, plan.bL,
      g.accumulate ? this.one : this.zero, g.d.ptr, plan.dL, g.d.ptr, plan.dL, algo, this.workspace, WORKSPACE_BYTES, null)
  }

  private setPointer(desc: bigint, ptr: number): void {
    this.ptrBuf[0] = BigInt(ptr)
    this.lt.call('cublasLtMatmulDescSetAttribute', desc, DESC_BIAS_POINTER, this.ptrBuf, 8)
  }

  private createPlan(g: Gemm): Plan {
    const lt = this.lt, out: (bigint | null)[] = [null]
    const compute = g.a.dtype === 'f32' && this.tf32 ? COMPUTE_32F_FAST_TF32 : COMPUTE_32F
    lt.call('cublasLtMatmulDescCreate', out, compute, CUDA_R_32F)
    const desc = out[0]!
    const i32 = (v: number): Int32Array => new Int32Array([v])
    lt.call('cublasLtMatmulDescSetAttribute', desc, DESC_TRANSA, i32(g.transA ? 1 : 0), 4)
    lt.call('cublasLtMatmulDescSetAttribute', desc, DESC_TRANSB, i32(g.transB ? 1 : 0), 4)
    lt.call('cublasLtMatmulDescSetAttribute', desc, DESC_EPILOGUE, i32(g.bias === null ? EPILOGUE_DEFAULT : EPILOGUE_BIAS), 4)
    if (g.bias !== null) this.setPointer(desc, g.bias.ptr)
    const layout = (o: Operand, rows: number, cols: number, ld: number): bigint => {
      lt.call('cublasLtMatrixLayoutCreate', out, dataType(o), rows, cols, ld)
      return out[0]!
    }
    const aL = g.transA ? layout(g.a, g.k, g.m, g.lda) : layout(g.a, g.m, g.k, g.lda)
    const bL = g.transB ? layout(g.b, g.n, g.k, g.ldb) : layout(g.b, g.k, g.n, g.ldb)
    const dL = layout(g.d, g.m, g.n, g.ldd)
    lt.call('cublasLtMatmulPreferenceCreate', out)
    const pref = out[0]!
    try {
      lt.call('cublasLtMatmulPreferenceSetAttribute', pref, PREF_MAX_WORKSPACE, new BigUint64Array([BigInt(WORKSPACE_BYTES)]), 8)
      const aligns: [number, number][] = [[PREF_ALIGN_A, g.a.ptr], [PREF_ALIGN_B, g.b.ptr], [PREF_ALIGN_C, g.d.ptr], [PREF_ALIGN_D, g.d.ptr]]
      for (const [attr, ptr] of aligns) lt.call('cublasLtMatmulPreferenceSetAttribute', pref, attr, new Uint32Array([alignmentOf(ptr)]), 4)
      const requested = this.tune?.candidates ?? 1
      const results = new Uint8Array(HEURISTIC_RESULT_BYTES * requested), returned = [0]
      try {
        lt.call('cublasLtMatmulAlgoGetHeuristic', this.handle, desc, aL, bL, dL, dL, pref, requested, results, returned)
      } catch (e) { throw new Error(`${(e as Error).message} for ${describeGemm(g)}`) }
      if (returned[0]! < 1) throw new Error(`cuda: cuBLASLt has no algorithm for ${describeGemm(g)}`)
      // each result's state (offset 72) must be CUBLAS_STATUS_SUCCESS for its algorithm to be usable
      const states = new DataView(results.buffer), at = (i: number): number => i * HEURISTIC_RESULT_BYTES
      const algos = Array.from({ length: Math.min(returned[0]!, requested) }, (_, i) => i)
        .filter(i => i === 0 || states.getInt32(at(i) + 72, true) === 0).map(i => results.slice(at(i), at(i) + 64))
      const plan = { desc, aL, bL, dL, algo: algos[0]! }
      if (algos.length > 1) plan.algo = algos[this.choose(g, plan, algos)]!
      return plan
    } finally {
      lt.call('cublasLtMatmulPreferenceDestroy', pref)
    }
  }

  /** The index of the fastest of `algos` on g's operands (recorded in `tunings`); D is as it was after. */
  private choose(g: Gemm, plan: Plan, algos: Uint8Array[]): number {
    const saved = g.accumulate ? { ptr: g.d.ptr, bytes: ((g.n - 1) * g.ldd + g.m) * dtypeBytes[g.d.dtype] } : null
    const ms = timeCandidates(this.tune!.device, algos.length, i => this.matmul(g, plan, algos[i]!), saved)
    const chosen = fastest(ms)
    this.tunings.push({ gemm: describeGemm(g), ms, chosen })
    return chosen
  }
}
