// Native BLAS through the koffi FFI: finds OpenBLAS, BLIS, MKL or Apple Accelerate at run time and calls
// cblas_sgemm directly on Float32Array memory (koffi passes a typed array as a pointer to its first element,
// subarray offsets included; nothing is copied). One-row products (sampling's decode) go to cblas_sgemv: OpenBLAS's
// sgemm packs the whole weight for M = 1, 4-6x slower than its gemv (bench/inference). LLMTS_BLAS = auto | off | /path/to/lib picks the library;
// auto only accepts a generic libblas.so.3 when it is really a tuned vendor build (reference BLAS is slower
// than our WebAssembly kernel).

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { basename } from 'node:path'
import { InputError } from '../../util/errors.js'

/** 'N': the operand as stored (row-major); 'T': its transpose. */
export type Trans = 'N' | 'T'

interface Blas {
  readonly vendor: string           // 'OpenBLAS 0.3.21 ...', 'BLIS 0.9.0', 'MKL', 'Accelerate', ...
  readonly path: string             // the file actually loaded (or the name given to the loader)
  /** Threads the library uses (null when it has no setter we know of). */
  readonly threads: number | null
  setThreads(n: number): void
  /**
   * Row-major c[cOff..] = op(A)·op(B) + beta·c, op(A): (M,K), op(B): (K,N), c: (M,N) with row stride ldc.
   * a, b, c are read/written at the given element offsets (views, no copies).
   */
  sgemm(ta: Trans, tb: Trans, M: number, N: number, K: number, a: Float32Array, aOff: number, lda: number,
        b: Float32Array, bOff: number, ldb: number, beta: number, c: Float32Array, cOff: number, ldc: number): void
}

const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112

/** Libraries tried by `auto`, fastest families first. */
function candidates(): string[] {
  if (process.platform === 'darwin') {
    return ['/System/Library/Frameworks/Accelerate.framework/Accelerate', 'libopenblas.dylib',
      '/opt/homebrew/opt/openblas/lib/libopenblas.dylib', '/usr/local/opt/openblas/lib/libopenblas.dylib']
  }
  if (process.platform === 'win32') return ['libopenblas.dll', 'openblas.dll', 'mkl_rt.2.dll', 'libblis.dll']
  return ['libopenblas.so.0', 'libopenblas.so', 'libopenblasp.so.0', 'libopenblaso.so.0', 'libblis.so.4',
    'libblis.so.3', 'libblis.so', 'libmkl_rt.so.2', 'libmkl_rt.so', 'libblas.so.3', 'libcblas.so.3']
}

type Koffi = typeof import('koffi')
type Lib = ReturnType<Koffi['load']>

function loadKoffi(): Koffi | null {
  try {
    return createRequire(import.meta.url)('koffi') as Koffi
  } catch {
    return null     // no prebuilt koffi for this platform: the WebAssembly path takes over
  }
}

/** A function of lib, or null when the symbol is absent. */
function optionalFunc(lib: Lib, decl: string): ((...args: unknown[]) => unknown) | null {
  try {
    return lib.func(decl) as (...args: unknown[]) => unknown
  } catch {
    return null
  }
}

/** The loaded file's real path from /proc/self/maps (Linux), else the name we asked for. */
function resolveLoadedPath(name: string): string {
  if (name.startsWith('/')) return name
  try {
    const stem = basename(name).replace(/\.(so|dylib|dll).*$/, '')
    const maps = readFileSync('/proc/self/maps', 'utf8').split('\n')
    const hit = maps.map(l => l.slice(l.indexOf('/'))).find(p => p.startsWith('/') && basename(p).startsWith(stem))
    return hit ?? name
  } catch {
    return name
  }
}

interface Probe { vendor: string; setThreads: ((n: number) => void) | null; getThreads: (() => number) | null }

/** Which implementation a library is, from its vendor-specific symbols; null for a generic (reference) BLAS. */
function probeVendor(lib: Lib, name: string): Probe | null {
  const openblasConfig = optionalFunc(lib, 'const char *openblas_get_config(void)')
  if (openblasConfig !== null) {
    const set = optionalFunc(lib, 'void openblas_set_num_threads(int n)')
    const get = optionalFunc(lib, 'int openblas_get_num_threads(void)')
    return { vendor: String(openblasConfig()).split(' ').slice(0, 2).join(' '),
      setThreads: set && (n => { set(n) }), getThreads: get && (() => Number(get())) }
  }
  const blisVersion = optionalFunc(lib, 'const char *bli_info_get_version_str(void)')
  if (blisVersion !== null) {
    const set = optionalFunc(lib, 'void bli_thread_set_num_threads(long n)')
    const get = optionalFunc(lib, 'long bli_thread_get_num_threads(void)')
    return { vendor: `BLIS ${String(blisVersion())}`, setThreads: set && (n => { set(n) }),
      getThreads: get && (() => Number(get())) }
  }
  const mklSet = optionalFunc(lib, 'void MKL_Set_Num_Threads(int n)')
  if (mklSet !== null) {
    const get = optionalFunc(lib, 'int MKL_Get_Max_Threads(void)')
    return { vendor: 'Intel MKL', setThreads: n => { mklSet(n) }, getThreads: get && (() => Number(get())) }
  }
  if (name.includes('Accelerate')) return { vendor: 'Apple Accelerate', setThreads: null, getThreads: null }
  return null
}

/** Loads one library; null when it is missing, lacks cblas_sgemm, or (unless explicit) is not a tuned vendor build. */
function tryLoad(koffi: Koffi, name: string, how: { explicit: boolean }): Blas | null {
  let lib: Lib
  try {
    lib = koffi.load(name)
  } catch {
    return null
  }
  const fn = optionalFunc(lib, 'void cblas_sgemm(int order, int ta, int tb, int M, int N, int K, float alpha, ' +
    'const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)')
  if (fn === null) return null
  const gemv = optionalFunc(lib, 'void cblas_sgemv(int order, int ta, int M, int N, float alpha, const float *A, int lda, ' +
    'const float *X, int incx, float beta, float *Y, int incy)')
  const probe = probeVendor(lib, name) ?? (how.explicit ? { vendor: 'BLAS', setThreads: null, getThreads: null } : null)
  if (probe === null) return null
  const at = (x: Float32Array, off: number): Float32Array => off === 0 ? x : x.subarray(off)
  let threads = probe.getThreads?.() ?? null
  return {
    vendor: probe.vendor,
    path: resolveLoadedPath(name),
    get threads() { return threads },
    setThreads(n: number) {
      if (probe.setThreads === null) return
      probe.setThreads(n)
      threads = probe.getThreads?.() ?? n
    },
    sgemm(ta, tb, M, N, K, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc) {
      if (M === 0 || N === 0) return
      if (M === 1 && K > 0 && gemv !== null) {   // c (1,N) = op(B)ᵀ·a, with a's K values lda apart when ta = 'T'
        const [rows, cols] = tb === 'T' ? [N, K] : [K, N]
        gemv(ROW_MAJOR, tb === 'T' ? NO_TRANS : TRANS, rows, cols, 1, at(b, bOff), ldb, at(a, aOff), ta === 'N' ? 1 : lda,
          beta, at(c, cOff), 1)
        return
      }
      fn(ROW_MAJOR, ta === 'N' ? NO_TRANS : TRANS, tb === 'N' ? NO_TRANS : TRANS, M, N, K, 1,
        at(a, aOff), lda, at(b, bOff), ldb, beta, at(c, cOff), ldc)
    },
  }
}

const cache = new Map<string, Blas | null>()

/**
 * The BLAS for a setting: 'off' → null; 'auto' → the first tuned library found, or null; a path → that
 * library or an InputError saying why it cannot be used. Loaded once per setting per process.
 */
export function findBlas(setting: string = process.env['LLMTS_BLAS'] ?? 'auto'): Blas | null {
  const key = setting.trim() === '' ? 'auto' : setting.trim()
  if (key === 'off') return null
  if (cache.has(key)) return cache.get(key)!
  // OpenBLAS threads spin ~2^28 cycles after each call by default, stealing the cores our worker threads
  // need between BLAS calls; 2^4 makes them sleep at once (read when the library loads; a user's value wins)
  process.env['OPENBLAS_THREAD_TIMEOUT'] ??= '4'
  const koffi = loadKoffi()
  let found: Blas | null = null
  if (key === 'auto') {
    for (const name of candidates()) {
      found = koffi === null ? null : tryLoad(koffi, name, { explicit: false })
      if (found !== null) break
    }
  } else {
    if (koffi === null) {
      throw new InputError(`blas: LLMTS_BLAS=${key} but the koffi FFI module does not load on this platform`)
    }
    found = tryLoad(koffi, key, { explicit: true })
    if (found === null) {
      throw new InputError(`blas: LLMTS_BLAS=${key} cannot be loaded or has no cblas_sgemm ` +
        '(expected auto, off, or a path to OpenBLAS/BLIS/MKL)')
    }
  }
  cache.set(key, found)
  return found
}
