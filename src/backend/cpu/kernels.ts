// Which GEMM kernel the CPU backend runs on: native BLAS (found at run time), our WebAssembly SIMD kernel, or
// the pure-JS reference loops. `auto` takes the first that works in that order; LLMTS_BLAS (auto | off | path)
// steers the BLAS lookup, so `LLMTS_BLAS=off` gives the WebAssembly path; LLMTS_KERNELS (auto | blas | wasm | js)
// and LLMTS_THREADS are the defaults of the `kernels` and `threads` options; LLMTS_WASM_FMA (auto | off) picks the
// WebAssembly build (wasm/module.ts). The choice is made once per backend.

import { availableParallelism } from 'node:os'
import { InputError } from '../../util/errors.js'
import { findBlas } from './blas.js'
import type { Gemm } from './gemm.js'
import { loadWasmGemm } from './wasm/gemm.js'
import { kernelInstance, WASM_FMA_SETTINGS, type KernelInstance } from './wasm/module.js'

type KernelChoice = 'auto' | 'blas' | 'wasm' | 'js'
const CHOICES: readonly string[] = ['auto', 'blas', 'wasm', 'js']
const MAX_THREADS = 1024   // more is a typo, and each worker costs memory

export interface CpuOptions {
  kernels?: KernelChoice   // default: $LLMTS_KERNELS, else 'auto'
  blas?: string            // auto | off | path to a BLAS library; default: $LLMTS_BLAS, else auto
  threads?: number         // threads (native BLAS and the worker pool); default: $LLMTS_THREADS, else all cores
  /** Sizes below which work stays on the JS loops (gemm, in multiply-adds) or on one thread (split, in elements);
   *  tests set 0 to run the fast paths on small shapes. */
  minWork?: { gemm?: number; split?: number }
}

export interface KernelPath {
  kind: 'blas' | 'wasm' | 'js'
  gemm: Gemm | null             // null: pure JS
  simd: KernelInstance | null   // WebAssembly SIMD element-wise kernels (softmax), on every path but 'js'
  threads: number               // 1 on the 'js' path
  description: string           // for humans: "OpenBLAS 0.3.21 (/usr/lib/.../libopenblas.so.0), 2 threads"
}

const plural = (n: number): string => `${n} thread${n === 1 ? '' : 's'}`

function jsPath(why: string): KernelPath {
  return { kind: 'js', gemm: null, simd: null, threads: 1, description: `pure JavaScript kernels${why}, 1 thread` }
}

/** Whether $LLMTS_THREADS sets a thread count: unset, empty and 0 (as --threads 0) mean every core. */
export function threadsFromEnv(): boolean {
  const v = process.env['LLMTS_THREADS'] ?? ''
  return v !== '' && v !== '0'
}

export function chooseKernels(opts: CpuOptions = {}): KernelPath {
  const choice = opts.kernels ?? process.env['LLMTS_KERNELS'] ?? 'auto'
  if (!CHOICES.includes(choice)) {
    throw new InputError(`cpu backend: LLMTS_KERNELS=${choice}, expected one of ${CHOICES.join(', ')}`)
  }
  const envThreads = process.env['LLMTS_THREADS'] ?? ''
  const fromEnv = opts.threads === undefined && threadsFromEnv()
  const threads = opts.threads ?? (fromEnv ? Number(envThreads) : availableParallelism())
  if (!(Number.isSafeInteger(threads) && threads >= 1 && threads <= MAX_THREADS)) {
    throw new InputError(fromEnv
      ? `cpu backend: LLMTS_THREADS=${envThreads}, expected an integer in [0, ${MAX_THREADS}] (0: every core)`
      : `cpu backend: threads must be an integer in [1, ${MAX_THREADS}], got ${opts.threads}`)
  }
  const fma = process.env['LLMTS_WASM_FMA'] ?? 'auto'
  if (fma !== '' && !WASM_FMA_SETTINGS.includes(fma)) {
    throw new InputError(`cpu backend: LLMTS_WASM_FMA=${fma}, expected one of ${WASM_FMA_SETTINGS.join(', ')}`)
  }
  if (choice === 'js') return jsPath('')
  const simd = kernelInstance()
  if (choice === 'auto' || choice === 'blas') {
    const setting = opts.blas ?? process.env['LLMTS_BLAS'] ?? 'auto'
    const blas = choice === 'blas' && setting === 'off' ? null : findBlas(setting)
    if (blas !== null) {
      blas.setThreads(threads)
      // the library's thread count is process-wide: re-assert this backend's before each of its calls
      const gemm: Gemm = { sgemm: (...a) => { if (blas.threads !== threads) blas.setThreads(threads); blas.sgemm(...a) } }
      return { kind: 'blas', gemm, simd, threads, description: `${blas.vendor} (${blas.path}), ${plural(threads)}` }
    }
    if (choice === 'blas') {
      throw new InputError(`cpu backend: no BLAS library found (LLMTS_BLAS=${setting}; ` +
        'install libopenblas0-pthread or set LLMTS_BLAS to a library path)')
    }
  }
  const wasm = loadWasmGemm()
  if (wasm !== null) {
    const why = choice === 'auto' ? ' (no native BLAS found)' : ''
    const kernels = simd?.variant === 'fma' ? 'WebAssembly SIMD kernels with relaxed-SIMD FMA' : 'WebAssembly SIMD kernels'
    return { kind: 'wasm', gemm: wasm, simd, threads, description: `${kernels}${why}, ${plural(threads)}` }
  }
  if (choice === 'wasm') throw new InputError('cpu backend: this JavaScript engine has no WebAssembly SIMD')
  return jsPath(' (no BLAS, no WebAssembly SIMD)')
}
