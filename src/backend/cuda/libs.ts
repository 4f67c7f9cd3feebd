// Finding the CUDA libraries at run time (nothing native is built at install): the driver (libcuda.so.1),
// NVRTC, cuBLASLt and NCCL (multi-GPU training only), searched in LLMTS_CUDA_LIBS, CUDA_HOME/CUDA_PATH,
// LD_LIBRARY_PATH, the dynamic loader's own cache (bare sonames), the usual toolkit folders, and the NVIDIA Python
// wheels' site-packages/nvidia/*/lib (a PyTorch install carries cuBLASLt, NVRTC and NCCL there). Pure over an
// injected file system, so it is testable.

import { existsSync, readdirSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { InputError } from '../../util/errors.js'

type LibKind = 'driver' | 'nvrtc' | 'cublasLt' | 'nccl'

/** Sonames per library, newest first. */
const libNames: Record<LibKind, string[]> = {
  driver: ['libcuda.so.1', 'libcuda.so'],
  nvrtc: ['libnvrtc.so.13', 'libnvrtc.so.12', 'libnvrtc.so.11.2', 'libnvrtc.so'],
  cublasLt: ['libcublasLt.so.13', 'libcublasLt.so.12', 'libcublasLt.so.11', 'libcublasLt.so'],
  nccl: ['libnccl.so.2', 'libnccl.so'],
}

const describe: Record<LibKind, string> = {
  driver: 'the NVIDIA driver library libcuda.so.1 (is an NVIDIA driver installed? inside a container, run it with --gpus)',
  nvrtc: 'NVRTC (libnvrtc.so.13/12): install the CUDA toolkit or `pip install nvidia-cuda-nvrtc-cu12`',
  cublasLt: 'cuBLASLt (libcublasLt.so.13/12): install the CUDA toolkit or `pip install nvidia-cublas-cu12`',
  nccl: 'NCCL (libnccl.so.2, needed for training on several GPUs): `pip install nvidia-nccl-cu13` (-cu12 for a CUDA 12 ' +
    'driver; a PyTorch install carries it) or the libnccl2 package of the CUDA repositories',
}

/** What discovery reads: the environment and a directory listing (tests pass fakes). */
export interface SearchEnv {
  env: Record<string, string | undefined>
  home: string
  listDir(dir: string): string[]   // [] when missing or unreadable
  exists(path: string): boolean
}

export function realSearchEnv(): SearchEnv {
  return {
    env: process.env, home: homedir(),
    listDir: (dir) => { try { return readdirSync(dir) } catch { return [] } },
    exists: (p) => existsSync(p),
  }
}

/** Expands a path whose segments may be `*` (or contain one, like `python3*`), in sorted order. */
export function expandGlob(pattern: string, e: SearchEnv): string[] {
  const parts = pattern.split('/')
  let acc = [parts[0] === '' ? '/' : parts[0]!]
  for (const part of parts.slice(1)) {
    if (part === '') continue
    if (!part.includes('*')) { acc = acc.map(a => join(a, part)); continue }
    const re = new RegExp('^' + part.split('*').map(s => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$')
    acc = acc.flatMap(a => e.listDir(a).filter(n => re.test(n)).sort().reverse().map(n => join(a, n)))
  }
  return acc
}

/** Python site-packages folders that may hold NVIDIA wheels (venvs, conda, pyenv, user and system installs). */
function sitePackagesDirs(e: SearchEnv): string[] {
  const env = e.env, h = e.home
  const prefixes = [env['VIRTUAL_ENV'], env['CONDA_PREFIX'], '/opt/conda', '/usr/local', '/usr', join(h, '.local')]
  const patterns: string[] = []
  for (const p of prefixes) {
    if (p === undefined || p === '') continue
    patterns.push(`${p}/lib/python3*/site-packages`, `${p}/lib/python3*/dist-packages`)
  }
  patterns.push('/usr/lib/python3/dist-packages', `${h}/.pyenv/versions/*/lib/python3*/site-packages`,
    `${h}/*/lib/python3*/site-packages`, '/opt/*/lib/python3*/site-packages', '/opt/venv*/lib/python3*/site-packages',
    '/workspace/*/lib/python3*/site-packages')
  for (const p of (env['PYTHONPATH'] ?? '').split(':')) if (p !== '') patterns.push(p)
  return unique(patterns.flatMap(p => expandGlob(p, e)))
}

/** Library folders in search order (see the file header); no folder twice, toolkit stub folders skipped. */
export function searchDirs(e: SearchEnv): { explicit: string[]; standard: string[] } {
  const split = (v: string | undefined): string[] => (v ?? '').split(':').filter(s => s !== '')
  const cudaHomes = [e.env['CUDA_HOME'], e.env['CUDA_PATH'], e.env['CUDA_ROOT']].filter((s): s is string => !!s)
  const explicit = [
    ...split(e.env['LLMTS_CUDA_LIBS']),
    ...cudaHomes.flatMap(h => [join(h, 'lib64'), join(h, 'lib'), join(h, 'targets/x86_64-linux/lib')]),
    ...split(e.env['LD_LIBRARY_PATH']),
  ]
  const standard = [
    '/usr/local/cuda/lib64', ...expandGlob('/usr/local/cuda-*/lib64', e), '/usr/lib/x86_64-linux-gnu',
    '/usr/lib64', '/usr/local/nvidia/lib64', '/usr/lib/wsl/lib', '/usr/lib',
    ...sitePackagesDirs(e).flatMap(sp => expandGlob(`${sp}/nvidia/*/lib`, e)),
  ]
  const notStub = (d: string): boolean => !/\/stubs\/?$/.test(d)
  return { explicit: unique(explicit).filter(notStub), standard: unique(standard).filter(notStub) }
}

/**
 * Paths to try for one library, best first: existing files in the explicit folders, then the bare sonames
 * (the dynamic loader's cache: for the driver this is the one matching the kernel module), then existing files
 * in the standard folders and wheels.
 */
export function candidatePaths(kind: LibKind, e: SearchEnv, maxMajor = Infinity): string[] {
  const { explicit, standard } = searchDirs(e)
  const inDirs = (dirs: string[]): string[] =>
    dirs.flatMap(d => libNames[kind].map(n => join(d, n))).filter(p => e.exists(p))
  const all = unique([...inDirs(explicit), ...libNames[kind], ...inDirs(standard)])
  // a CUDA 13 NVRTC/cuBLASLt needs a CUDA 13 driver: libraries no newer than the driver's CUDA come first
  const fits = (p: string): boolean => Number(/\.so\.(\d+)/.exec(p)?.[1] ?? 0) <= maxMajor
  return [...all.filter(fits), ...all.filter(p => !fits(p))]
}

/**
 * Tries each candidate with `open` (koffi.load in the backend); the first that opens wins. maxMajor: the CUDA
 * major version of the driver (libraries of a newer CUDA are tried last).
 */
export function loadLibrary<L>(kind: LibKind, open: (path: string) => L, e: SearchEnv = realSearchEnv(),
                               maxMajor = Infinity): { lib: L; path: string } {
  const tried: string[] = []
  for (const path of candidatePaths(kind, e, maxMajor)) {
    try { return { lib: open(path), path } } catch (err) {
      tried.push(`${path} (${firstLine((err as Error).message)})`)
    }
  }
  const shown = tried.filter(t => !/No such file|cannot open shared object/.test(t)).slice(0, 4)
  throw new InputError(`cuda: cannot load ${describe[kind]}; tried ${tried.length} paths` +
    (shown.length > 0 ? `, e.g. ${shown.join('; ')}` : '') + ' (or set LLMTS_CUDA_LIBS=<folder with the library>)')
}

function firstLine(s: string): string { return s.split('\n')[0]!.slice(0, 160) }

function unique(xs: string[]): string[] { return [...new Set(xs)] }
