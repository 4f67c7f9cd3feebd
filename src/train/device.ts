// --device and --threads: pick the Backend. cpu is always there; cuda loads src/backend/cuda lazily when this
// build has it (a clear InputError otherwise, e.g. no driver or GPU); auto is cuda when that works, else cpu.
// threads (CPU only): 0 = the backend's default ($LLMTS_THREADS, else every core). precision (GPU only): bf16 mixed
// precision by default; the CPU computes in fp32 and refuses bf16 or tf32.

import type { Backend } from '../backend/backend.js'
import { CpuBackend } from '../backend/cpu/index.js'
import { InputError } from '../util/errors.js'
import type { Device, Precision } from './config.js'

/** The CUDA backend module's expected export (issue 6); probed at run time so this build compiles without it. */
interface CudaModule {
  createCudaBackend?: (opts?: { device?: number; storage?: 'mixed' | 'f32'; tf32?: boolean }) => Backend | Promise<Backend>
}

interface BackendChoice {
  threads?: number
  ordinal?: number   // the GPU (default 0); a data-parallel rank uses its own
  precision?: Precision
}

export async function createBackend(device: Device, choice: BackendChoice = {}): Promise<Backend> {
  const precision = choice.precision ?? 'auto'
  const cpu = (why = ''): Backend => {
    refuseCpuPrecision(precision, why)
    return new CpuBackend(choice.threads !== undefined && choice.threads > 0 ? { threads: choice.threads } : {})
  }
  if (device === 'cpu') return cpu()
  if (device === 'auto') {
    // a machine without a usable NVIDIA GPU (no driver, no device, no CUDA libraries) answers with an InputError:
    // then the CPU; any other failure of the CUDA backend is a bug and surfaces
    try { return await createCuda(choice.ordinal, precision) } catch (e) {
      if (e instanceof InputError) return cpu(` (--device auto found none: ${e.message})`)
      throw e
    }
  }
  return createCuda(choice.ordinal, precision)
}

/** An InputError for a GPU-only --precision on the CPU (`why`: how the CPU was chosen, when not by --device cpu). */
export function refuseCpuPrecision(precision: Precision, why = ''): void {
  if (precision === 'bf16' || precision === 'tf32') {
    throw new InputError(`device: --precision ${precision} needs an NVIDIA GPU${why} (the CPU backend computes in fp32; ` +
      'give --precision fp32 or auto)')
  }
}

async function createCuda(ordinal = 0, precision: Precision = 'auto'): Promise<Backend> {
  let mod: CudaModule
  try {
    const path = '../backend/cuda/index.js'   // a variable, so tsc does not require the module to exist
    mod = await import(path) as CudaModule
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e
    throw new InputError('device: the CUDA backend is not available in this build (use --device cpu)')
  }
  if (mod.createCudaBackend === undefined) throw new InputError('device: the CUDA backend is not available in this build (use --device cpu)')
  const storage = precision === 'auto' || precision === 'bf16' ? 'mixed' : 'f32'
  return mod.createCudaBackend({ device: ordinal, storage, tf32: precision !== 'fp32' })
}

/** The line a command prints at start: what computes (kernels, threads or GPU). */
export function describeBackend(b: Backend): string {
  return b.describe?.() ?? `${b.name} backend`
}
