// Kernel launch plumbing: each kernel's parameter list is read from its extern "C" declaration in the .cu file
// (so host and device can never disagree on argument order or width), arguments are packed with C alignment
// into ONE native buffer passed through cuLaunchKernel's `extra` (CU_LAUNCH_PARAM_BUFFER_POINTER), and each
// kernel file is compiled lazily (compile.ts) the first time one of its kernels runs.

import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { readHeaders, type Compiler } from './compile.js'

/** p: pointer (8 bytes), i: 32-bit int, l: 64-bit int, f: float, d: double. */
type ParamKind = 'p' | 'i' | 'l' | 'f' | 'd'
export interface KernelSig { name: string; file: string; params: ParamKind[]; names: string[] }

const paramBytes: Record<ParamKind, number> = { p: 8, i: 4, l: 8, f: 4, d: 8 }

/** The kind of one C parameter declaration, e.g. `const void* qkv` -> 'p', `long long n` -> 'l'. */
export function paramKind(decl: string): ParamKind {
  if (decl.includes('*')) return 'p'
  const type = decl.trim().replace(/\s+\w+$/, '').replace(/\bconst\b/g, '').replace(/\s+/g, ' ').trim()
  switch (type) {
    case 'int': case 'unsigned': case 'unsigned int': return 'i'
    case 'long long': case 'unsigned long long': case 'size_t': case 'long': return 'l'
    case 'float': return 'f'
    case 'double': return 'd'
    default: throw new Error(`cuda: unsupported kernel parameter type in "${decl.trim()}"`)
  }
}

/** Every `extern "C" __global__ void name(...)` of a source, with single-line #define parameter lists expanded
 *  (defined in the source or in the texts of the headers it includes). */
export function parseKernels(source: string, file = '<source>', headers: readonly string[] = []): KernelSig[] {
  const strip = (t: string): string => t.replace(/\/\/[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '')
  const text = strip(source), macros = new Map<string, string>()
  for (const t of [...headers.map(strip), text]) for (const m of t.matchAll(/^#define\s+(\w+)\s+(.*)$/gm)) macros.set(m[1]!, m[2]!.trim())
  const sigs: KernelSig[] = []
  const bounds = '(?:__launch_bounds__\\s*\\([^)]*\\)\\s+)?'
  const re = new RegExp(`extern\\s+"C"\\s+__global__\\s+${bounds}void\\s+${bounds}(\\w+)\\s*\\(([^)]*)\\)`, 'g')
  for (const m of text.matchAll(re)) {
    let list = m[2]!.trim()
    if (macros.has(list)) list = macros.get(list)!
    const decls = list === '' || list === 'void' ? [] : list.split(',')
    sigs.push({ name: m[1]!, file, params: decls.map(paramKind), names: decls.map(d => d.trim().split(/[\s*]+/).pop()!) })
  }
  return sigs
}

/**
 * Byte offsets of each parameter with C alignment, and the total size: the end of the last parameter, WITHOUT
 * tail padding (the driver rejects a CU_LAUNCH_PARAM_BUFFER_SIZE that counts it, e.g. 16 for (int*, int)).
 */
export function layoutParams(params: ParamKind[]): { offsets: number[]; size: number } {
  const offsets: number[] = []
  let at = 0
  for (const k of params) {
    const n = paramBytes[k]
    at = Math.ceil(at / n) * n
    offsets.push(at)
    at += n
  }
  return { offsets, size: at }
}

/** Writes args into view per sig (pointers and 64-bit ints as exact integers); returns the byte size. */
export function packArgs(sig: KernelSig, args: readonly number[], view: DataView): number {
  if (args.length !== sig.params.length) {
    throw new Error(`cuda: kernel ${sig.name} takes ${sig.params.length} arguments (${sig.names.join(', ')}), got ${args.length}`)
  }
  const { offsets, size } = layoutParams(sig.params)
  if (size > view.byteLength) throw new Error(`cuda: kernel ${sig.name}'s arguments need ${size} bytes`)
  for (let i = 0; i < args.length; i++) {
    const v = args[i]!, o = offsets[i]!, k = sig.params[i]!
    if (!Number.isFinite(v)) throw new Error(`cuda: kernel ${sig.name} argument ${sig.names[i]} is ${v}`)
    if (k === 'p' || k === 'l') {
      if (!Number.isSafeInteger(v)) throw new Error(`cuda: kernel ${sig.name} argument ${sig.names[i]} = ${v} is not an integer`)
      view.setBigInt64(o, BigInt(v), true)
    } else if (k === 'i') {
      if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 32) throw new Error(
        `cuda: kernel ${sig.name} argument ${sig.names[i]} = ${v} is not a 32-bit integer`)
      view.setInt32(o, v | 0, true)
    } else if (k === 'f') view.setFloat32(o, v, true)
    else view.setFloat64(o, v, true)
  }
  return size
}

/** Everything the registry needs from the driver (index.ts wires the real one). */
export interface LaunchDriver {
  loadModule(image: Uint8Array): bigint
  getFunction(module: bigint, name: string): bigint
  setMaxDynamicShared(fn: bigint, bytes: number): void
  staticShared(fn: bigint): number   // bytes of the kernel's own __shared__ arrays
  launch(fn: bigint, grid: [number, number, number], block: [number, number, number], sharedBytes: number,
         args: (view: DataView) => number): void
}

/** All kernels of a folder, compiled file by file on first use. */
export class KernelRegistry {
  private readonly sigs = new Map<string, KernelSig>()
  private readonly modules = new Map<string, bigint>()
  private readonly functions = new Map<string, { fn: bigint; sig: KernelSig; maxShared: number }>()

  /** With `sync`, every launch waits for its kernel (LLMTS_CUDA_SYNC=1): a fault is then reported by the kernel
   *  that caused it, not by the next call that happens to synchronize. */
  constructor(readonly dir: string, private readonly compiler: Compiler, private readonly driver: LaunchDriver,
              private readonly sync?: () => void) {
    for (const f of readdirSync(dir).filter(n => n.endsWith('.cu')).sort()) {
      const file = join(dir, f), source = readFileSync(file, 'utf8')
      for (const s of parseKernels(source, file, readHeaders(dir, source).map(h => h.text))) {
        if (this.sigs.has(s.name)) throw new Error(`cuda: kernel ${s.name} is declared in ${this.sigs.get(s.name)!.file} and ${file}`)
        this.sigs.set(s.name, s)
      }
    }
  }

  has(name: string): boolean { return this.sigs.has(name) }

  /** Launches kernel `name`; args in declaration order (pointers as numbers, 0 = null). */
  launch(name: string, grid: [number, number, number], block: [number, number, number], sharedBytes: number,
         args: readonly number[]): void {
    const k = this.lookup(name)
    if (sharedBytes > k.maxShared) {   // past what needs no opt-in: 48 KB less the kernel's static shared memory
      this.driver.setMaxDynamicShared(k.fn, sharedBytes)
      k.maxShared = sharedBytes
    }
    if (grid.some(g => !(g >= 1)) || grid[1] > 65535 || grid[2] > 65535) {
      throw new Error(`cuda: kernel ${name} launch grid ${grid.join('×')} is out of range`)
    }
    try {
      this.driver.launch(k.fn, grid, block, sharedBytes, view => packArgs(k.sig, args, view))
      this.sync?.()
    } catch (e) {
      const where = `grid ${grid.join('×')}, block ${block.join('×')}, ${sharedBytes} B dynamic shared memory`
      throw new Error(`cuda: kernel ${name} (${where}): ${(e as Error).message}`, { cause: e })
    }
  }

  /** Compiles every kernel file now (the first training step otherwise pays for it). */
  compileAll(): void { for (const name of this.sigs.keys()) this.lookup(name) }

  private lookup(name: string): { fn: bigint; sig: KernelSig; maxShared: number } {
    const hit = this.functions.get(name)
    if (hit !== undefined) return hit
    const sig = this.sigs.get(name)
    if (sig === undefined) throw new Error(`cuda: no kernel named ${name} in ${this.dir}`)
    let mod = this.modules.get(sig.file)
    if (mod === undefined) {
      try {
        mod = this.driver.loadModule(this.compiler.image(sig.file))
      } catch {   // a damaged or foreign cache entry: compile afresh once (a real failure then throws)
        mod = this.driver.loadModule(this.compiler.image(sig.file, { fresh: true }))
      }
      this.modules.set(sig.file, mod)
    }
    const fn = this.driver.getFunction(mod, name)
    const entry = { fn, sig, maxShared: 48 * 1024 - this.driver.staticShared(fn) }
    this.functions.set(name, entry)
    return entry
  }
}
