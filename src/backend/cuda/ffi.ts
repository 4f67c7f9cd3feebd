// koffi bindings to the CUDA driver API (libcuda.so.1), NVRTC and cuBLASLt, loaded lazily by libs.ts. Every
// call's status is checked and reported with the call's name and the library's own error name
// (cuGetErrorName, nvrtcGetErrorString, cublasLtGetStatusName). Device pointers are plain numbers (CUdeviceptr
// values stay below 2^53); handles (contexts, modules, descriptors) are koffi's BigInt pointers.

import koffi from 'koffi'
import { dirname } from 'node:path'
import { InputError } from '../../util/errors.js'
import { expandGlob, loadLibrary, realSearchEnv } from './libs.js'

export type Handle = bigint | null
type Fn = (...args: unknown[]) => unknown

const opaque = (name: string): void => { koffi.pointer(name, koffi.opaque()) }
for (const name of ['CUcontext', 'CUmodule', 'CUfunction', 'CUstream', 'CUevent', 'nvrtcProgram', 'LtHandle']) opaque(name)

/** Declares every prototype of `protos` in `lib`; a missing symbol names the library and the function. */
export function bind(lib: ReturnType<typeof koffi.load>, path: string, protos: string[]): Record<string, Fn> {
  const out: Record<string, Fn> = {}
  for (const proto of protos) {
    const name = /(\w+)\s*\(/.exec(proto)![1]!
    try { out[name] = lib.func(proto) as Fn } catch (e) {
      throw new InputError(`cuda: ${path} has no ${name} (${(e as Error).message}); the library is too old or not the real one`)
    }
  }
  return out
}

// ---- driver API ------------------------------------------------------------------------------------------

export interface Driver {
  readonly path: string
  call(name: string, ...args: unknown[]): void     // throws on a non-zero CUresult
  raw: Record<string, Fn>
  errorName(code: number): string
}

const driverProtos = [
  'int cuInit(unsigned int flags)',
  'int cuDriverGetVersion(_Out_ int *version)',
  'int cuDeviceGetCount(_Out_ int *count)',
  'int cuDeviceGet(_Out_ int *device, int ordinal)',
  'int cuDeviceGetName(_Out_ uint8_t *name, int len, int device)',
  'int cuDeviceGetAttribute(_Out_ int *value, int attrib, int device)',
  'int cuDeviceTotalMem_v2(_Out_ size_t *bytes, int device)',
  'int cuDevicePrimaryCtxRetain(_Out_ CUcontext *ctx, int device)',
  'int cuCtxSetCurrent(CUcontext ctx)',
  'int cuCtxSynchronize()',
  'int cuMemGetInfo_v2(_Out_ size_t *free, _Out_ size_t *total)',
  'int cuMemAlloc_v2(_Out_ uint64_t *dptr, size_t bytes)',
  'int cuMemFree_v2(uint64_t dptr)',
  'int cuMemcpyHtoD_v2(uint64_t dst, const void *src, size_t bytes)',
  'int cuMemcpyDtoH_v2(void *dst, uint64_t src, size_t bytes)',
  'int cuMemcpyDtoD_v2(uint64_t dst, uint64_t src, size_t bytes)',
  'int cuMemsetD8_v2(uint64_t dst, uint8_t value, size_t bytes)',
  'int cuModuleLoadData(_Out_ CUmodule *module, const void *image)',
  'int cuModuleGetFunction(_Out_ CUfunction *fn, CUmodule module, const char *name)',
  'int cuFuncSetAttribute(CUfunction fn, int attrib, int value)',
  'int cuFuncGetAttribute(_Out_ int *value, int attrib, CUfunction fn)',
  'int cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, ' +
    'unsigned int by, unsigned int bz, unsigned int sharedBytes, CUstream stream, void *params, void *extra)',
  'int cuStreamCreate(_Out_ CUstream *stream, unsigned int flags)',
  'int cuStreamSynchronize(CUstream stream)',
  'int cuStreamDestroy_v2(CUstream stream)',
  'int cuEventCreate(_Out_ CUevent *event, unsigned int flags)',
  'int cuEventRecord(CUevent event, CUstream stream)',
  'int cuEventSynchronize(CUevent event)',
  'int cuEventElapsedTime(_Out_ float *ms, CUevent start, CUevent end)',
  'int cuEventDestroy_v2(CUevent event)',
  'int cuGetErrorName(int code, _Out_ const char **name)',
  'int cuGetErrorString(int code, _Out_ const char **text)',
]

export function loadDriver(): Driver {
  const { lib, path } = loadLibrary('driver', p => koffi.load(p))
  const raw = bind(lib, path, driverProtos)
  const errorName = (code: number): string => {
    const name: (string | null)[] = [null], text: (string | null)[] = [null]
    raw['cuGetErrorName']!(code, name)
    raw['cuGetErrorString']!(code, text)
    return `${name[0] ?? `CUresult ${code}`}${text[0] ? ` (${text[0]})` : ''}`
  }
  const call = (name: string, ...args: unknown[]): void => {
    const rc = raw[name]!(...args) as number
    if (rc !== 0) throw driverError(name, rc, errorName(rc))
  }
  return { path, raw, call, errorName }
}

/** The error of a failed driver call: missing GPU and out-of-memory are the user's situation (InputError). */
function driverError(call: string, code: number, name: string): Error {
  const msg = `cuda: ${call} failed: ${name}`
  if (code === 100) return new InputError(`${msg}; no NVIDIA GPU is visible (check nvidia-smi, CUDA_VISIBLE_DEVICES)`)
  if (code === 34) return new InputError(`${msg}; this libcuda is the toolkit's stub, not the driver (drop .../stubs from LD_LIBRARY_PATH)`)
  if (code === 222 || code === 803 || code === 804) {   // UNSUPPORTED_PTX_VERSION, SYSTEM_DRIVER_MISMATCH, COMPAT_NOT_SUPPORTED
    return new InputError(`${msg}; the NVIDIA driver is older than the CUDA libraries in use ` +
      `(update the driver or use NVRTC/cuBLASLt of the driver's CUDA version)`)
  }
  if (code === 2) return new InputError(`${msg}; the GPU is out of memory (try a smaller --batch-size)`)
  return new Error(msg)
}

// ---- NVRTC ------------------------------------------------------------------------------------------------

export interface Nvrtc {
  readonly path: string
  readonly version: [number, number]
  call(name: string, ...args: unknown[]): void
  raw: Record<string, Fn>
  supportedArchs(): number[]    // e.g. [75, 80, 86, 89, 90, ...]; [] when this NVRTC cannot tell
}

const nvrtcProtos = [
  'int nvrtcVersion(_Out_ int *major, _Out_ int *minor)',
  'const char *nvrtcGetErrorString(int result)',
  'int nvrtcCreateProgram(_Out_ nvrtcProgram *prog, const char *src, const char *name, int numHeaders, ' +
    'const char **headers, const char **includeNames)',
  'int nvrtcCompileProgram(nvrtcProgram prog, int numOptions, const char **options)',
  'int nvrtcGetProgramLogSize(nvrtcProgram prog, _Out_ size_t *size)',
  'int nvrtcGetProgramLog(nvrtcProgram prog, _Out_ uint8_t *log)',
  'int nvrtcGetCUBINSize(nvrtcProgram prog, _Out_ size_t *size)',
  'int nvrtcGetCUBIN(nvrtcProgram prog, _Out_ uint8_t *cubin)',
  'int nvrtcGetPTXSize(nvrtcProgram prog, _Out_ size_t *size)',
  'int nvrtcGetPTX(nvrtcProgram prog, _Out_ uint8_t *ptx)',
  'int nvrtcDestroyProgram(_Inout_ nvrtcProgram *prog)',
]

/** NVRTC; driverMajor: the driver's CUDA major version (an NVRTC no newer than it is preferred). */
export function loadNvrtc(driverMajor = Infinity): Nvrtc {
  const { lib, path } = loadLibrary('nvrtc', p => {
    // NVRTC dlopens libnvrtc-builtins by soname; loading it first from the same folder makes that succeed
    // for wheel installs whose folder is on no search path.
    if (p.includes('/')) {
      for (const b of expandGlob(`${dirname(p)}/libnvrtc-builtins.so*`, realSearchEnv())) {
        try { koffi.load(b); break } catch { /* the next one, or NVRTC finds its own */ }
      }
    }
    return koffi.load(p)
  }, realSearchEnv(), driverMajor)
  const raw = bind(lib, path, nvrtcProtos)
  const call = (name: string, ...args: unknown[]): void => {
    const rc = raw[name]!(...args) as number
    if (rc !== 0) throw new Error(`cuda: ${name} failed: ${raw['nvrtcGetErrorString']!(rc) as string} (nvrtcResult ${rc})`)
  }
  const major = [0], minor = [0]
  call('nvrtcVersion', major, minor)
  const supportedArchs = (): number[] => {
    try {
      const f = lib.func('int nvrtcGetNumSupportedArchs(_Out_ int *n)') as Fn
      const g = lib.func('int nvrtcGetSupportedArchs(_Out_ int *archs)') as Fn
      const n = [0]
      if (f(n) !== 0) return []
      const archs = new Int32Array(n[0]!)
      return g(archs) === 0 ? [...archs] : []
    } catch { return [] }
  }
  return { path, version: [major[0]!, minor[0]!], call, raw, supportedArchs }
}

// ---- cuBLASLt ---------------------------------------------------------------------------------------------

export interface CublasLt {
  readonly path: string
  readonly version: number
  call(name: string, ...args: unknown[]): void
  raw: Record<string, Fn>
}

const ltProtos = [
  'size_t cublasLtGetVersion()',
  'const char *cublasLtGetStatusName(int status)',
  'int cublasLtCreate(_Out_ LtHandle *handle)',
  'int cublasLtMatmulDescCreate(_Out_ void **desc, int computeType, int scaleType)',
  'int cublasLtMatmulDescSetAttribute(void *desc, int attr, const void *buf, size_t size)',
  'int cublasLtMatrixLayoutCreate(_Out_ void **layout, int type, uint64_t rows, uint64_t cols, int64_t ld)',
  'int cublasLtMatmulPreferenceCreate(_Out_ void **pref)',
  'int cublasLtMatmulPreferenceSetAttribute(void *pref, int attr, const void *buf, size_t size)',
  'int cublasLtMatmulPreferenceDestroy(void *pref)',
  'int cublasLtMatmulAlgoGetHeuristic(LtHandle handle, void *desc, void *adesc, void *bdesc, void *cdesc, ' +
    'void *ddesc, void *pref, int requested, _Out_ uint8_t *results, _Out_ int *returned)',
  'int cublasLtMatmul(LtHandle handle, void *desc, const void *alpha, uint64_t A, void *adesc, uint64_t B, ' +
    'void *bdesc, const void *beta, uint64_t C, void *cdesc, uint64_t D, void *ddesc, const void *algo, ' +
    'uint64_t workspace, size_t workspaceBytes, CUstream stream)',
]

const ltStatusNames: Record<number, string> = {
  1: 'CUBLAS_STATUS_NOT_INITIALIZED', 3: 'CUBLAS_STATUS_ALLOC_FAILED', 7: 'CUBLAS_STATUS_INVALID_VALUE',
  8: 'CUBLAS_STATUS_ARCH_MISMATCH', 11: 'CUBLAS_STATUS_MAPPING_ERROR', 13: 'CUBLAS_STATUS_EXECUTION_FAILED',
  14: 'CUBLAS_STATUS_INTERNAL_ERROR', 15: 'CUBLAS_STATUS_NOT_SUPPORTED', 16: 'CUBLAS_STATUS_LICENSE_ERROR',
}

/** A cuBLAS status as a name (the library's own name when it can give one). */
function cublasStatusName(status: number, lookup?: (s: number) => string | null): string {
  let name: string | null = null
  try { name = lookup?.(status) ?? null } catch { name = null }
  return name ?? ltStatusNames[status] ?? `cublasStatus ${status}`
}

export function loadCublasLt(driverMajor = Infinity): CublasLt {
  const { lib, path } = loadLibrary('cublasLt', p => koffi.load(p), realSearchEnv(), driverMajor)
  const raw = bind(lib, path, ltProtos)
  const call = (name: string, ...args: unknown[]): void => {
    const rc = raw[name]!(...args) as number
    if (rc !== 0) {
      const status = cublasStatusName(rc, s => raw['cublasLtGetStatusName']!(s) as string | null)
      throw new Error(`cuda: ${name} failed: ${status}`)
    }
  }
  return { path, version: Number(raw['cublasLtGetVersion']!()), call, raw }
}

// ---- native scratch for kernel arguments -----------------------------------------------------------------

/** A block of native memory that never moves (koffi.alloc), with a DataView over it and its address. */
export interface NativeBlock { ptr: bigint; view: DataView; bytes: number }

export function allocNative(bytes: number): NativeBlock {
  const ptr = koffi.alloc('uint8_t', bytes) as bigint
  return { ptr, view: new DataView(koffi.view(ptr, bytes)), bytes }
}
