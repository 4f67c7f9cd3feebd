// Builds the CPU emulator of the CUDA libraries (this folder's C++: a stand-in libcuda, NVRTC, cuBLASLt and NCCL) into
// .cache/llmts-cuda-emu/<hash of the sources>, once per source change. Shared by the emulated test suite and
// bench/cuda-memory (the GPU memory plan without a GPU). The environment in emulatorEnv points the backend at it.

import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const sources = ['emu.hpp', 'schedule.hpp', 'gen.mjs', 'runtime.cpp', 'collective.inc', 'fake.cpp', 'fake-lt.cpp', 'fake-nccl.cpp']
// this file runs as <repository>/dist/test/backend/cuda-emu/build.js
const repository = fileURLToPath(new URL('../../../../', import.meta.url))

/** Why the emulator cannot run here (null: it can). */
export function emulatorSkipReason(): string | null {
  if (process.env['LLMTS_CUDA_EMU'] === '0') return 'LLMTS_CUDA_EMU=0'
  if (process.platform !== 'linux' || process.arch !== 'x64') return `the emulator needs x86-64 Linux (this is ${process.platform}-${process.arch})`
  try { execFileSync('g++', ['--version'], { stdio: 'ignore' }) } catch { return 'g++ not found' }
  return null
}

/** Builds (or reuses) the emulator libraries under `root` (the repository); returns their folder. */
export function buildEmulator(root = repository): string {
  const emuSrc = resolve(root, 'test/backend/cuda-emu')
  const hash = createHash('sha256')
  for (const f of sources) hash.update(readFileSync(join(emuSrc, f)))
  const dir = resolve(root, '.cache/llmts-cuda-emu', hash.digest('hex').slice(0, 16))
  if (existsSync(join(dir, 'libcuda.so.1'))) return dir
  const tmp = `${dir}.tmp-${process.pid}`
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp, { recursive: true })
  for (const f of ['emu.hpp', 'gen.mjs']) copyFileSync(join(emuSrc, f), join(tmp, f))
  const cxx = ['-std=c++20', '-O2', '-g', '-fPIC', '-shared', '-Wall', '-Werror', '-pthread']
  execFileSync('g++', [...cxx, '-I', tmp, join(emuSrc, 'runtime.cpp'), '-o', join(tmp, 'libllmtsemu-rt.so')])
  execFileSync('g++', [...cxx, join(emuSrc, 'fake.cpp'), join(emuSrc, 'fake-lt.cpp'), '-o', join(tmp, 'libllmtsemu.so'), '-ldl'])
  for (const name of ['libcuda.so.1', 'libnvrtc.so.13', 'libcublasLt.so.13']) symlinkSync('libllmtsemu.so', join(tmp, name))
  // NCCL is a library of its own, as it is on a real system; it shares fake.cpp's device memory (the dynamic loader
  // maps libllmtsemu.so once, whichever name loaded it first)
  execFileSync('g++', [...cxx, join(emuSrc, 'fake-nccl.cpp'), '-o', join(tmp, 'libnccl.so.2'), '-L', tmp, '-lllmtsemu', '-Wl,-rpath,$ORIGIN'])
  // A finished folder is never replaced: another process may have renamed its build into place meanwhile and be
  // using it (it loads libcublasLt lazily; a second copy of the library would not share the first's allocations).
  // Only a broken folder (no libcuda.so.1, from an old interrupted build) is moved aside, then the rename retried.
  for (let attempt = 0; ; attempt++) {
    try { renameSync(tmp, dir); return dir } catch (e) {
      if (existsSync(join(dir, 'libcuda.so.1'))) { rmSync(tmp, { recursive: true, force: true }); return dir }
      if (attempt > 0 || !existsSync(dir)) throw e
      const aside = `${dir}.broken-${process.pid}`
      renameSync(dir, aside)
      rmSync(aside, { recursive: true, force: true })
    }
  }
}

/** The environment that runs the CUDA backend on the emulator in `dir` (plan: the memory plan only, no kernels run). */
export function emulatorEnv(dir: string, { plan = false } = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LLMTS_CUDA_LIBS: dir, LLMTS_EMU_DIR: dir, LLMTS_CACHE: join(dir, 'cache') }
  if (plan) env['LLMTS_EMU_PLAN'] = '1'
  else delete env['LLMTS_EMU_PLAN']
  delete env['NODE_TEST_CONTEXT']   // else a child test file talks node:test's parent protocol instead of printing TAP
  return env
}
