// One GPU as the backend sees it: the driver's primary context on a device, memory (cuMemAlloc per tensor,
// freed explicitly or when the tensor is garbage-collected), synchronous copies on the legacy default stream
// (so every copy is ordered after the kernels before it), kernel launches with arguments packed into one
// native buffer, NVRTC and cuBLASLt loaded on first use, scratch buffers, and CUDA-event timing.

import { createCompiler, defaultCacheDir, kernelDir, targetFor, type CompileTarget } from './compile.js'
import { allocNative, loadCublasLt, loadDriver, loadNvrtc, type Driver, type NativeBlock } from './ffi.js'
import { KernelRegistry, type LaunchDriver } from './kernels.js'
import type { GemmTuning } from './gemm-tune.js'
import { LtMatmul, WORKSPACE_BYTES } from './matmul.js'
import { InputError } from '../../util/errors.js'
import { Allocation, dtypeBytes, type DType } from './memory.js'

const ATTR_MAJOR = 75, ATTR_MINOR = 76, ATTR_SMS = 16, ATTR_SHARED_OPTIN = 97, FUNC_MAX_DYNAMIC_SHARED = 8, FUNC_PREFERRED_CARVEOUT = 9,
  FUNC_SHARED_SIZE = 1
const ARG_BYTES = 4096

export interface ContextOptions {
  device?: number            // ordinal, default 0 (CUDA_VISIBLE_DEVICES applies)
  tf32?: boolean             // TF32 for fp32 matmuls (default true)
  syncLaunches?: boolean     // wait for every kernel, so a fault names its kernel (slow; for debugging)
  /** cuBLASLt algorithms to time per GEMM shape, keeping the fastest (1, the default: the heuristic's first;
   *  gemm-tune.ts). LLMTS_CUDA_GEMM_TUNE sets it from the environment. */
  gemmTune?: number
}

interface DeviceInfo {
  name: string; cc: [number, number]; sms: number; totalBytes: number; driverVersion: number
  maxSharedPerBlock: number   // bytes of shared memory one block may use (static + dynamic, after opting in)
}

export class CudaContext {
  readonly info: DeviceInfo
  private readonly args: NativeBlock
  private readonly extra: NativeBlock
  private readonly sizeBox: NativeBlock
  private registry: KernelRegistry | null = null
  private target: CompileTarget | null = null
  readonly libraries: Record<string, string> = {}   // which library files were loaded (for logs)
  private matmul: LtMatmul | null = null
  private readonly scratchBufs = new Map<string, { ptr: number; bytes: number }>()
  private readonly finalizer = new FinalizationRegistry<number[]>(ptrs => this.release(ptrs))
  private readonly sizes = new Map<number, number>()   // device pointer -> bytes, for the accounting below
  bytesInUse = 0      // device memory held by this context's allocations (tensors, mirrors, scratch, workspace)
  peakBytes = 0

  constructor(readonly driver: Driver, readonly ordinal: number, private readonly opts: ContextOptions) {
    const d = driver, count = [0], dev = [0], v = [0]
    d.call('cuInit', 0)
    d.call('cuDriverGetVersion', v)
    d.call('cuDeviceGetCount', count)
    if (count[0] === 0) throw new InputError('cuda: the driver sees no NVIDIA GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES)')
    if (ordinal >= count[0]!) throw new InputError(`cuda: device ${ordinal} requested, ${count[0]} visible`)
    d.call('cuDeviceGet', dev, ordinal)
    const attr = (a: number): number => { const out = [0]; d.call('cuDeviceGetAttribute', out, a, dev[0]); return out[0]! }
    const nameBuf = Buffer.alloc(256), total = [0]
    d.call('cuDeviceGetName', nameBuf, 256, dev[0])
    d.call('cuDeviceTotalMem_v2', total, dev[0])
    const ctx: (bigint | null)[] = [null]
    d.call('cuDevicePrimaryCtxRetain', ctx, dev[0])
    d.call('cuCtxSetCurrent', ctx[0])
    this.libraries['driver'] = driver.path
    this.info = { name: nameBuf.toString('utf8').replace(/\0[\s\S]*$/, ''), cc: [attr(ATTR_MAJOR), attr(ATTR_MINOR)],
      sms: attr(ATTR_SMS), totalBytes: total[0]!, driverVersion: v[0]!, maxSharedPerBlock: attr(ATTR_SHARED_OPTIN) }
    this.args = allocNative(ARG_BYTES)
    this.extra = allocNative(5 * 8)
    this.sizeBox = allocNative(8)
    const e = this.extra.view   // {CU_LAUNCH_PARAM_BUFFER_POINTER, args, CU_LAUNCH_PARAM_BUFFER_SIZE, &size, END}
    e.setBigUint64(0, 1n, true); e.setBigUint64(8, this.args.ptr, true)
    e.setBigUint64(16, 2n, true); e.setBigUint64(24, this.sizeBox.ptr, true); e.setBigUint64(32, 0n, true)
  }

  // ---- memory -------------------------------------------------------------------------------------------

  /** A zero-filled allocation of n elements, freed by free() or once no tensor (view) references it. */
  alloc(n: number, dtype: DType): Allocation {
    const bytes = Math.max(n * dtypeBytes[dtype], 16)
    const out = [0]
    this.driver.call('cuMemAlloc_v2', out, bytes)
    this.driver.call('cuMemsetD8_v2', out[0], 0, bytes)
    const a = new Allocation(out[0]!, n, dtype)
    this.account(out[0]!, bytes)
    a.native = [out[0]!]
    this.finalizer.register(a, a.native, a)
    return a
  }

  /** A bf16 copy buffer for an f32 allocation (freed with it). */
  allocMirror(a: Allocation): number {
    const out = [0], bytes = Math.max(a.length * 2, 16)
    this.driver.call('cuMemAlloc_v2', out, bytes)
    this.account(out[0]!, bytes)
    a.native.push(out[0]!)
    return out[0]!
  }

  free(a: Allocation): void {
    if (a.freed) return
    a.freed = true
    this.finalizer.unregister(a)
    this.release(a.native)
  }

  private account(ptr: number, bytes: number): void {
    this.sizes.set(ptr, bytes)
    this.bytesInUse += bytes
    this.peakBytes = Math.max(this.peakBytes, this.bytesInUse)
  }

  private release(ptrs: number[]): void {
    this.driver.call('cuCtxSynchronize')   // kernels still reading the memory finish first
    for (const p of ptrs) {
      this.driver.call('cuMemFree_v2', p)
      this.bytesInUse -= this.sizes.get(p) ?? 0
      this.sizes.delete(p)
    }
  }

  htod(dst: number, src: ArrayBufferView): void { if (src.byteLength > 0) this.driver.call('cuMemcpyHtoD_v2', dst, src, src.byteLength) }
  dtoh(dst: ArrayBufferView, src: number): void { if (dst.byteLength > 0) this.driver.call('cuMemcpyDtoH_v2', dst, src, dst.byteLength) }
  dtod(dst: number, src: number, bytes: number): void { if (bytes > 0) this.driver.call('cuMemcpyDtoD_v2', dst, src, bytes) }
  memsetZero(dst: number, bytes: number): void { if (bytes > 0) this.driver.call('cuMemsetD8_v2', dst, 0, bytes) }
  synchronize(): void { this.driver.call('cuCtxSynchronize') }

  /** A scratch buffer for one purpose, grown on demand (work on the one stream is ordered, so reuse is safe). */
  scratch(slot: string, bytes: number): number {
    const have = this.scratchBufs.get(slot)
    if (have !== undefined && have.bytes >= bytes) return have.ptr
    if (have !== undefined) this.release([have.ptr])
    const out = [0], size = Math.max(bytes, 1024)
    this.driver.call('cuMemAlloc_v2', out, size)
    this.account(out[0]!, size)
    this.scratchBufs.set(slot, { ptr: out[0]!, bytes: size })
    return out[0]!
  }

  // ---- kernels and matmuls ------------------------------------------------------------------------------

  /** The CUDA major version the driver supports (12 for 12040): NVRTC/cuBLASLt of a newer CUDA cannot run on it. */
  private get cudaMajor(): number { return Math.floor(this.info.driverVersion / 1000) }

  /** The NVRTC target of this GPU (loads NVRTC). */
  get compileTarget(): CompileTarget {
    void this.kernels
    return this.target!
  }

  get kernels(): KernelRegistry {
    if (this.registry === null) {
      const nvrtc = loadNvrtc(this.cudaMajor)
      this.libraries['nvrtc'] = `${nvrtc.path} (NVRTC ${nvrtc.version.join('.')})`
      const target = targetFor(this.info.cc, nvrtc.version, nvrtc.supportedArchs())
      this.registry = new KernelRegistry(kernelDir(), createCompiler(nvrtc, target, defaultCacheDir()), this.launchDriver(),
        this.opts.syncLaunches === true ? () => this.synchronize() : undefined)
      this.target = target
    }
    return this.registry
  }

  launch(name: string, grid: [number, number, number], block: [number, number, number], sharedBytes: number,
         args: readonly number[]): void {
    this.kernels.launch(name, grid, block, sharedBytes, args)
  }

  get lt(): LtMatmul {
    if (this.matmul === null) {
      const lt = loadCublasLt(this.cudaMajor)
      this.libraries['cublasLt'] = `${lt.path} (cuBLASLt ${lt.version})`
      const candidates = this.opts.gemmTune ?? 1
      this.matmul = new LtMatmul(lt, this.scratch('cublasLt-workspace', WORKSPACE_BYTES), this.opts.tf32 ?? true,
        candidates > 1 ? { candidates, device: this } : null)
    }
    return this.matmul
  }

  /** The GEMM shapes tuned so far (gemmTune > 1; empty before the first matmul). */
  gemmTuning(): GemmTuning[] { return [...(this.matmul?.tunings ?? [])] }

  private launchDriver(): LaunchDriver {
    const d = this.driver
    return {
      loadModule: (image) => { const m: (bigint | null)[] = [null]; d.call('cuModuleLoadData', m, image); return m[0]! },
      getFunction: (mod, name) => { const f: (bigint | null)[] = [null]; d.call('cuModuleGetFunction', f, mod, name); return f[0]! },
      setMaxDynamicShared: (fn, bytes) => {
        d.call('cuFuncSetAttribute', fn, FUNC_MAX_DYNAMIC_SHARED, bytes)
        // and the largest shared-memory carveout (a hint): the blocks fit an SM as far as registers allow (the staged
        // classifier needs 2 × 100.5 KB, the attention backward 2-3 × 55-65 KB)
        d.call('cuFuncSetAttribute', fn, FUNC_PREFERRED_CARVEOUT, 100)
      },
      staticShared: (fn) => { const v = [0]; d.call('cuFuncGetAttribute', v, FUNC_SHARED_SIZE, fn); return v[0]! },
      launch: (fn, grid, block, sharedBytes, pack) => {
        const size = pack(this.args.view)
        this.sizeBox.view.setBigUint64(0, BigInt(size), true)
        d.call('cuLaunchKernel', fn, grid[0], grid[1], grid[2], block[0], block[1], block[2], sharedBytes, null, null, this.extra.ptr)
      },
    }
  }

  // ---- timing -------------------------------------------------------------------------------------------

  /** A recorded event on the default stream (for per-op profiling). */
  recordEvent(): bigint {
    const ev: (bigint | null)[] = [null]
    this.driver.call('cuEventCreate', ev, 0)
    this.driver.call('cuEventRecord', ev[0], null)
    return ev[0]!
  }

  /** Milliseconds between two recorded events (waits for the second); destroys both. */
  elapsedMs(start: bigint, end: bigint): number {
    this.driver.call('cuEventSynchronize', end)
    const ms = [0]
    this.driver.call('cuEventElapsedTime', ms, start, end)
    this.driver.call('cuEventDestroy_v2', start)
    this.driver.call('cuEventDestroy_v2', end)
    return ms[0]!
  }

  memInfo(): { free: number; total: number } {
    const free = [0], total = [0]
    this.driver.call('cuMemGetInfo_v2', free, total)
    return { free: free[0]!, total: total[0]! }
  }
}

let shared: Driver | null = null

/** The process's driver binding (loaded once) and a context on `device`. */
export function openContext(opts: ContextOptions = {}): CudaContext {
  shared ??= loadDriver()
  return new CudaContext(shared, opts.device ?? 0, opts)
}
