// Every CUDA kernel file compiles with nvcc for sm_80 (A100) and sm_90a (H100) with warnings as errors, so no
// kernel that fails to build can land (CI has nvcc but no GPU). When an NVRTC library is present the same files
// also go through NVRTC — the compiler the backend really uses at run time, which sees no CUDA headers.
// Skipped with a message when nvcc is absent. Files compile two at a time (CI has two cores).

import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'

const run = promisify(execFile)
const kernelDir = resolve(process.cwd(), 'src/backend/cuda/kernels')
const files = readdirSync(kernelDir).filter(f => f.endsWith('.cu')).sort()

function nvccVersion(): string | null {
  try {
    return execFileSync('nvcc', ['--version'], { encoding: 'utf8' }).split('\n').find(l => l.includes('release')) ?? 'nvcc'
  } catch { return null }
}

/** Runs jobs with at most `width` in flight; resolves to each job's error message (or null). */
async function pool<T>(items: T[], width: number, job: (x: T) => Promise<void>): Promise<(string | null)[]> {
  const out: (string | null)[] = new Array(items.length).fill(null)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      try { await job(items[i]!) } catch (e) { out[i] = (e as { stderr?: string }).stderr || (e as Error).message }
    }
  }
  await Promise.all(Array.from({ length: width }, worker))
  return out
}

const nvcc = nvccVersion()

test('nvcc compiles every kernel for sm_80 and sm_90a with warnings as errors', { timeout: 300_000 }, async (t) => {
  if (nvcc === null) { t.skip('nvcc not found on PATH (CI has it; the GPU path compiles with NVRTC at run time)'); return }
  t.diagnostic(nvcc.trim())
  const out = mkdtempSync(join(tmpdir(), 'llmts-nvcc-'))
  try {
    // one nvcc run per file builds both architectures (one front-end pass)
    const errors = await pool(files, 2, (f) => run('nvcc', ['-fatbin', '-std=c++17', '-Werror', 'all-warnings',
      '-gencode', 'arch=compute_80,code=sm_80', '-gencode', 'arch=compute_90a,code=sm_90a',
      '-I', kernelDir, '-o', join(out, f.replace(/\.cu$/, '.fatbin')), join(kernelDir, f)]).then(() => undefined))
    const failed = files.map((f, i) => [f, errors[i]] as const).filter(([, e]) => e !== null)
    assert.equal(failed.length, 0, failed.map(([f, e]) => `${f}:\n${e}`).join('\n'))
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
})

// The wgmma kernels are built only where wgmma exists (wgmma.cuh's LLM_WGMMA): a guard that went wrong would compile
// them empty on the H100, or try wgmma on an A100. As NVRTC at run time: no sm_90a feature macro, LLMTS_SM90A instead.
test('the wgmma kernels hold wgmma in sm_90a PTX (nvcc, and with only the backend\'s LLMTS_SM90A) and none for sm_80 or compute_90',
  { timeout: 120_000 }, async (t) => {
    if (nvcc === null) { t.skip('nvcc not found on PATH'); return }
    const ptx = async (args: string[]): Promise<number> => {
      const { stdout } = await run('nvcc', ['-ptx', '-std=c++17', ...args, '-I', kernelDir, '-o', '-', join(kernelDir, 'attention_wgmma.cu')],
        { maxBuffer: 64 << 20 })
      return stdout.split('wgmma.mma_async').length - 1
    }
    const [sm90a, backend, sm80, compute90] = await Promise.all([['-arch=sm_90a'], ['-arch=compute_90', '-DLLMTS_SM90A=1'],
      ['-arch=sm_80'], ['-arch=compute_90']].map(ptx))
    assert.ok(sm90a > 0 && backend === sm90a, `wgmma.mma_async count: sm_90a ${sm90a}, with LLMTS_SM90A ${backend}`)
    assert.deepEqual([sm80, compute90], [0, 0])
  })

test('NVRTC (no CUDA headers, as at run time) compiles every kernel', { timeout: 300_000 }, async (t) => {
  let nvrtc
  try {
    nvrtc = (await import('../../src/backend/cuda/ffi.js')).loadNvrtc()
  } catch (e) {
    t.skip(`no NVRTC library (${(e as Error).message.slice(0, 120)})`)
    return
  }
  const { compileSource, nvrtcOptions, readHeaders, targetFor } = await import('../../src/backend/cuda/compile.js')
  const { readFileSync } = await import('node:fs')
  const target = targetFor([9, 0], nvrtc.version, nvrtc.supportedArchs())
  t.diagnostic(`NVRTC ${nvrtc.version.join('.')} from ${nvrtc.path}, target ${target.arch}`)
  for (const f of files) {
    const source = readFileSync(join(kernelDir, f), 'utf8')
    const image = compileSource(nvrtc, f, source, readHeaders(kernelDir, source), nvrtcOptions(target), target.kind)
    assert.ok(image.length > 1000, `${f}: ${image.length} bytes`)
  }
})
