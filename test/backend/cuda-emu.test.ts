// The CUDA backend end to end without a GPU: builds the CPU emulator of test/backend/cuda-emu (a stand-in
// libcuda/NVRTC/cuBLASLt; kernels compiled by g++ and run with one fiber per CUDA thread) and runs the GPU test
// suite (cuda.test.ts) against it in a child process. It exercises the real host code — koffi bindings, argument
// packing, NVRTC caching, cuBLASLt descriptors, bf16 mirrors — and the real kernel source, not GPU timing or
// memory-model subtleties. Skipped without g++ on x86-64 Linux, or with LLMTS_CUDA_EMU=0. Build cached in .cache/.

import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const emuSrc = resolve(process.cwd(), 'test/backend/cuda-emu')
const sources = ['emu.hpp', 'gen.mjs', 'runtime.cpp', 'fake.cpp', 'fake-lt.cpp']

function skipReason(): string | null {
  if (process.env['LLMTS_CUDA_EMU'] === '0') return 'LLMTS_CUDA_EMU=0'
  if (process.platform !== 'linux' || process.arch !== 'x64') return `the emulator needs x86-64 Linux (this is ${process.platform}-${process.arch})`
  try { execFileSync('g++', ['--version'], { stdio: 'ignore' }) } catch { return 'g++ not found' }
  return null
}

/** Builds (or reuses) the emulator libraries in .cache/llmts-cuda-emu/<hash of the sources>; returns that folder. */
function buildEmulator(): string {
  const hash = createHash('sha256')
  for (const f of sources) hash.update(readFileSync(join(emuSrc, f)))
  const dir = resolve(process.cwd(), '.cache/llmts-cuda-emu', hash.digest('hex').slice(0, 16))
  if (existsSync(join(dir, 'libcuda.so.1'))) return dir
  const tmp = `${dir}.tmp-${process.pid}`
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp, { recursive: true })
  for (const f of ['emu.hpp', 'gen.mjs']) copyFileSync(join(emuSrc, f), join(tmp, f))
  const cxx = ['-std=c++20', '-O2', '-g', '-fPIC', '-shared', '-Wall', '-Werror', '-pthread']
  execFileSync('g++', [...cxx, '-I', tmp, join(emuSrc, 'runtime.cpp'), '-o', join(tmp, 'libllmtsemu-rt.so')])
  execFileSync('g++', [...cxx, join(emuSrc, 'fake.cpp'), join(emuSrc, 'fake-lt.cpp'), '-o', join(tmp, 'libllmtsemu.so'), '-ldl'])
  for (const name of ['libcuda.so.1', 'libnvrtc.so.13', 'libcublasLt.so.13']) symlinkSync('libllmtsemu.so', join(tmp, name))
  rmSync(dir, { recursive: true, force: true })
  renameSync(tmp, dir)
  return dir
}

test('the CUDA test suite passes on the CPU emulator (host code, kernels, cuBLASLt mapping)', { timeout: 1_200_000 }, async (t) => {
  const reason = skipReason()
  if (reason !== null) { t.skip(reason); return }
  const dir = buildEmulator()
  const suite = fileURLToPath(new URL('./cuda.test.js', import.meta.url))
  const env: NodeJS.ProcessEnv = { ...process.env, LLMTS_CUDA_LIBS: dir, LLMTS_EMU_DIR: dir, LLMTS_CACHE: join(dir, 'cache') }
  delete env['NODE_TEST_CONTEXT']   // else the child talks node:test's parent protocol instead of printing TAP
  let stdout = ''
  try {
    ({ stdout } = await run(process.execPath, [suite], { env, cwd: process.cwd(), maxBuffer: 64 << 20 }))
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string }
    const failures = (err.stdout ?? '').split('\n').filter(l => /not ok|error:|expected|got /.test(l)).slice(0, 40).join('\n')
    assert.fail(`the emulated CUDA suite failed:\n${failures}\n${(err.stderr ?? '').slice(-2000)}`)
  }
  const count = (k: string): number => Number(new RegExp(`^# ${k} (\\d+)`, 'm').exec(stdout)?.[1] ?? NaN)
  t.diagnostic(`emulated suite: ${count('pass')} passed, ${count('skipped')} skipped, ${count('fail')} failed`)
  assert.equal(count('fail'), 0)
  assert.ok(count('pass') >= 100, `only ${count('pass')} tests passed: did the suite skip for want of a device?`)
})
