// NVRTC compilation of one kernel file for the device's architecture (a cubin for sm_XY — sm_90a on Hopper —
// or, when NVRTC is older than the GPU, PTX for the newest architecture it knows, which the driver JITs), cached
// on disk by a hash of the source, its headers, the options and the NVRTC version: in the cache's cuda/
// folder (util/cache.ts: ~/.cache/llmts/cuda by default). Kernel sources are found beside the package's src/ tree (they ship with it).

import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { makeDirs, writeFileAtomic } from '../../util/atomic.js'
import { cacheRoot } from '../../util/cache.js'
import { InputError } from '../../util/errors.js'
import type { Nvrtc } from './ffi.js'

export interface CompileTarget { arch: string; kind: 'cubin' | 'ptx' }

/** What to build for compute capability cc with an NVRTC of `version` that supports `supported` (may be []). */
export function targetFor(cc: [number, number], version: [number, number], supported: number[]): CompileTarget {
  const sm = cc[0] * 10 + cc[1]
  if (sm < 80) throw new InputError(`cuda: the GPU has compute capability ${cc[0]}.${cc[1]}; ` +
    `bf16 training needs 8.0 or newer (Ampere, Ada, Hopper, Blackwell)`)
  if (supported.length === 0 || supported.includes(sm)) {
    return { arch: sm === 90 && version[0] >= 12 ? 'sm_90a' : `sm_${sm}`, kind: 'cubin' }
  }
  const older = supported.filter(a => a <= sm)
  if (older.length === 0) throw new InputError(`cuda: NVRTC ${version.join('.')} cannot compile for sm_${sm} or any older architecture`)
  return { arch: `compute_${Math.max(...older)}`, kind: 'ptx' }
}

/** NVRTC's options for a target; sm_90a also gets LLMTS_SM90A, so the wgmma kernels (wgmma.cuh) do not depend on
 *  NVRTC defining nvcc's __CUDA_ARCH_FEAT_SM90_ALL. */
export function nvrtcOptions(t: CompileTarget): string[] {
  return [`--gpu-architecture=${t.arch}`, '--std=c++17', '-DLLMTS_NVRTC=1', ...(t.arch === 'sm_90a' ? ['-DLLMTS_SM90A=1'] : [])]
}

/** The disk-cache key: everything that changes the compiled image. */
export function cacheKey(source: string, headers: { name: string; text: string }[], options: string[],
                         nvrtcVersion: [number, number], kind: string): string {
  const h = createHash('sha256')
  h.update(JSON.stringify({ source, headers, options, nvrtc: nvrtcVersion, kind }))
  return h.digest('hex')
}

export function defaultCacheDir(env: Record<string, string | undefined> = process.env, home = homedir()): string {
  return join(cacheRoot(env, home), 'cuda')
}

/** The folder of the .cu files: LLMTS_CUDA_KERNELS, or src/backend/cuda/kernels of the package this file is in. */
export function kernelDir(env: Record<string, string | undefined> = process.env): string {
  if (env['LLMTS_CUDA_KERNELS']) return resolve(env['LLMTS_CUDA_KERNELS'])
  const here = dirname(fileURLToPath(import.meta.url))
  const candidates = [join(here, 'kernels'), resolve(here, '../../../../src/backend/cuda/kernels')]
  const found = candidates.find(d => existsSync(join(d, 'common.cuh')))
  if (found === undefined) throw new Error(`cuda: kernel sources not found (looked in ${candidates.join(', ')}; set LLMTS_CUDA_KERNELS)`)
  return found
}

/** The headers a kernel source includes (`#include "x.cuh"` from its folder, followed through the headers), sorted
 *  by name: NVRTC gets their text, since it reads no files, and the cache key covers them. */
export function readHeaders(dir: string, source: string): { name: string; text: string }[] {
  const found = new Map<string, string>(), todo = [source]
  while (todo.length > 0) {
    for (const m of todo.pop()!.matchAll(/^#include "([^"]+)"/gm)) {
      if (found.has(m[1]!)) continue
      const text = readFileSync(join(dir, m[1]!), 'utf8')
      found.set(m[1]!, text)
      todo.push(text)
    }
  }
  return [...found.keys()].sort().map(name => ({ name, text: found.get(name)! }))
}

export interface Compiler {
  readonly target: CompileTarget
  /** The compiled image of a kernel file (with its headers), from the disk cache unless `fresh`. */
  image(file: string, opts?: { fresh: boolean }): Uint8Array
}

export function createCompiler(nvrtc: Nvrtc, target: CompileTarget, cacheDir: string): Compiler {
  return {
    target,
    image(file: string, opts = { fresh: false }): Uint8Array {
      const source = readFileSync(file, 'utf8')
      const headers = readHeaders(dirname(file), source)
      const options = nvrtcOptions(target)
      const key = cacheKey(source, headers, options, nvrtc.version, target.kind)
      const cached = join(cacheDir, `${basename(file, '.cu')}-${target.arch}-${key.slice(0, 16)}.${target.kind}`)
      if (!opts.fresh && existsSync(cached)) return readFileSync(cached)
      const image = compileSource(nvrtc, basename(file), source, headers, options, target.kind)
      try {
        makeDirs(dirname(cached))
        writeFileAtomic(cached, image)
      } catch { /* a read-only cache only costs a recompile next time */ }
      return image
    },
  }
}

/** One NVRTC run; a failed compile throws with NVRTC's log (the file name and line of each error). */
export function compileSource(nvrtc: Nvrtc, name: string, source: string, headers: { name: string; text: string }[],
                              options: string[], kind: 'cubin' | 'ptx'): Uint8Array {
  const prog: (bigint | null)[] = [null]
  nvrtc.call('nvrtcCreateProgram', prog, source, name, headers.length, headers.map(h => h.text), headers.map(h => h.name))
  try {
    const rc = nvrtc.raw['nvrtcCompileProgram']!(prog[0], options.length, options) as number
    if (rc !== 0) {
      const size = [0]
      nvrtc.call('nvrtcGetProgramLogSize', prog[0], size)
      const log = Buffer.alloc(size[0]!)
      nvrtc.call('nvrtcGetProgramLog', prog[0], log)
      throw new Error(`cuda: NVRTC could not compile ${name} (${options.join(' ')}):\n${log.toString('utf8').replace(/\0+$/, '')}`)
    }
    const sizeFn = kind === 'cubin' ? 'nvrtcGetCUBINSize' : 'nvrtcGetPTXSize'
    const getFn = kind === 'cubin' ? 'nvrtcGetCUBIN' : 'nvrtcGetPTX'
    const size = [0]
    nvrtc.call(sizeFn, prog[0], size)
    const out = new Uint8Array(size[0]!)
    nvrtc.call(getFn, prog[0], out)
    return out
  } finally {
    nvrtc.call('nvrtcDestroyProgram', prog)
  }
}
