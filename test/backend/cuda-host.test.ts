// Host-side logic of the CUDA backend that needs no GPU: library discovery over a fake file system, the
// missing-library and missing-GPU messages, kernel signatures read from the .cu files and the packing of their
// arguments (checked against C struct layout rules), host bf16 rounding, NVRTC targets and cache keys.

import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { test } from 'node:test'
import { cacheKey, createCompiler, defaultCacheDir, nvrtcOptions, readHeaders, targetFor } from '../../src/backend/cuda/compile.js'
import type { Nvrtc } from '../../src/backend/cuda/ffi.js'
import { KernelRegistry, layoutParams, packArgs, paramKind, parseKernels, type KernelSig, type LaunchDriver } from '../../src/backend/cuda/kernels.js'
import { candidatePaths, expandGlob, loadLibrary, searchDirs, type SearchEnv } from '../../src/backend/cuda/libs.js'
import { fastest, formatTuning } from '../../src/backend/cuda/gemm-tune.js'
import { describeGemm, planKey, type Gemm } from '../../src/backend/cuda/matmul.js'
import { CudaBackend } from '../../src/backend/cuda/index.js'
import { alignmentOf, Allocation, bf16ToF32, f32ToBf16, fromBf16Bits, takePending, toBf16Bits } from '../../src/backend/cuda/memory.js'
import { InputError } from '../../src/util/errors.js'
import { withEnv } from '../helpers/env.js'

const kernelDir = resolve(process.cwd(), 'src/backend/cuda/kernels')

/** A fake file system: a set of files; folders are implied by their paths. */
function fakeEnv(files: string[], env: Record<string, string> = {}): SearchEnv {
  const set = new Set(files)
  return {
    env, home: '/home/u',
    exists: (p) => set.has(p),
    listDir: (dir) => {
      const prefix = dir.endsWith('/') ? dir : dir + '/'
      return [...new Set(files.filter(f => f.startsWith(prefix)).map(f => f.slice(prefix.length).split('/')[0]!))]
    },
  }
}

test('discovery: LLMTS_CUDA_LIBS first, then CUDA_HOME, bare sonames, toolkits, then Python wheels', () => {
  const e = fakeEnv([
    '/opt/mine/libcublasLt.so.12',
    '/usr/local/cuda-12.4/lib64/libcublasLt.so.12',
    '/usr/local/cuda-12.4/lib64/stubs/libcuda.so',
    '/home/u/venv/lib/python3.11/site-packages/nvidia/cublas/lib/libcublasLt.so.12',
    '/home/u/venv/lib/python3.11/site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12',
    '/home/u/venv/lib/python3.11/site-packages/nvidia/cu13/lib/libnvrtc.so.13',
  ], { LLMTS_CUDA_LIBS: '/opt/mine', CUDA_HOME: '/usr/local/cuda-12.4', LD_LIBRARY_PATH: '/usr/local/cuda-12.4/lib64/stubs' })
  assert.deepEqual(candidatePaths('cublasLt', e).slice(0, 3),
    ['/opt/mine/libcublasLt.so.12', '/usr/local/cuda-12.4/lib64/libcublasLt.so.12', 'libcublasLt.so.13'])
  const nvrtc = candidatePaths('nvrtc', e)
  assert.ok(nvrtc.includes('/home/u/venv/lib/python3.11/site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12'), nvrtc.join('\n'))
  assert.ok(nvrtc.includes('/home/u/venv/lib/python3.11/site-packages/nvidia/cu13/lib/libnvrtc.so.13'), 'CUDA 13 wheel layout')
  assert.ok(nvrtc.indexOf('libnvrtc.so.13') < nvrtc.findIndex(p => p.includes('site-packages')), 'the loader cache before wheels')
  assert.ok(!searchDirs(e).explicit.some(d => d.includes('stubs')), 'toolkit stub folders are never searched')
  assert.equal(candidatePaths('driver', e)[0], 'libcuda.so.1', 'the driver comes from the loader cache first')
  // a CUDA 12 driver cannot run CUDA 13 NVRTC output or cuBLASLt 13: those go last, in the same order
  const for12 = candidatePaths('nvrtc', e, 12)
  assert.deepEqual(for12.filter(p => p.includes('.so.13')), nvrtc.filter(p => p.includes('.so.13')))
  const last12 = for12.map(p => p.includes('.so.12')).lastIndexOf(true)
  assert.ok(last12 >= 0 && for12.findIndex(p => p.includes('.so.13')) > last12, for12.join('\n'))
  assert.deepEqual(candidatePaths('nvrtc', e, 13), nvrtc, 'a CUDA 13 driver keeps the newest-first order')
})

test('discovery: VIRTUAL_ENV and CONDA_PREFIX site-packages; glob expansion', () => {
  const e = fakeEnv(['/envs/a/lib/python3.12/site-packages/nvidia/cublas/lib/libcublasLt.so.12',
    '/c/lib/python3.10/site-packages/nvidia/cublas/lib/libcublasLt.so.11'], { VIRTUAL_ENV: '/envs/a', CONDA_PREFIX: '/c' })
  const c = candidatePaths('cublasLt', e)
  assert.ok(c.includes('/envs/a/lib/python3.12/site-packages/nvidia/cublas/lib/libcublasLt.so.12'))
  assert.ok(c.includes('/c/lib/python3.10/site-packages/nvidia/cublas/lib/libcublasLt.so.11'))
  assert.deepEqual(expandGlob('/envs/*/lib/python3*', e), ['/envs/a/lib/python3.12'])
})

test('discovery: NCCL from LLMTS_CUDA_LIBS, the loader cache, then the nvidia-nccl wheel', () => {
  const wheel = '/home/u/venv/lib/python3.12/site-packages/nvidia/nccl/lib/libnccl.so.2'
  const e = fakeEnv(['/opt/mine/libnccl.so.2', wheel], { LLMTS_CUDA_LIBS: '/opt/mine', VIRTUAL_ENV: '/home/u/venv' })
  const c = candidatePaths('nccl', e, 12)
  assert.deepEqual(c.slice(0, 3), ['/opt/mine/libnccl.so.2', 'libnccl.so.2', 'libnccl.so'], 'NCCL 2 is not a CUDA 2 library: no demotion')
  assert.ok(c.includes(wheel), c.join('\n'))
  const err = (() => { try { loadLibrary('nccl', () => { throw new Error('no') }, e) } catch (x) { return x as Error } return null })()
  assert.match(err?.message ?? 'no error', /NCCL .*pip install nvidia-nccl-cu13/)
})

test('a missing library is one InputError naming it, what was tried and LLMTS_CUDA_LIBS', () => {
  const e = fakeEnv(['/usr/lib/x86_64-linux-gnu/libcublasLt.so.12'])
  const err = (() => {
    try { loadLibrary('cublasLt', p => { throw new Error(`${p}: cannot open shared object file`) }, e) } catch (x) { return x as Error }
    return null
  })()
  assert.ok(err instanceof InputError, 'InputError: the CLI prints one line')
  assert.match(err.message, /cuBLASLt/)
  assert.match(err.message, /LLMTS_CUDA_LIBS/)
  assert.match(err.message, /tried \d+ paths/)
  assert.ok(!err.message.includes('\n'))
  const ok = loadLibrary('cublasLt', p => { if (!p.startsWith('/usr/lib/x86_64')) throw new Error('no'); return p }, e)
  assert.equal(ok.path, '/usr/lib/x86_64-linux-gnu/libcublasLt.so.12')
})

test('every kernel file parses; kernel names are unique; every parameter type is supported', () => {
  const files = readdirSync(kernelDir).filter(f => f.endsWith('.cu'))
  assert.ok(files.length >= 12, `kernel files: ${files.join(', ')}`)
  const seen = new Map<string, string>()
  for (const f of files) {
    const source = readFileSync(join(kernelDir, f), 'utf8')
    const sigs = parseKernels(source, f, readHeaders(kernelDir, source).map(h => h.text))
    assert.ok(sigs.length > 0, `${f} declares no extern "C" kernel`)
    for (const s of sigs) {
      assert.ok(!seen.has(s.name), `${s.name} in ${f} and ${seen.get(s.name)}`)
      seen.set(s.name, f)
      assert.equal(s.names.length, s.params.length)
    }
  }
  for (const k of ['rmsnorm_forward', 'attention_forward_d16', 'attention_backward_dkv_d32', 'adamw_update', 'convert']) {
    assert.ok(seen.has(k), `kernel ${k} is missing`)
  }
})

test('parameter kinds and C layout: 4-byte ints and floats, 8-byte pointers and long longs aligned to 8', () => {
  assert.equal(paramKind('const void* qkv'), 'p')
  assert.equal(paramKind('llm_bf16* mirror'), 'p')
  assert.equal(paramKind(' long long n'), 'l')
  assert.equal(paramKind('unsigned int x'), 'i')
  assert.equal(paramKind('double theta'), 'd')
  assert.throws(() => paramKind('float4 v'), /unsupported kernel parameter type/)
  // struct { void*; int; long long; float; float; void*; } -> offsets 0, 8, 16, 24, 28, 32; size 40
  assert.deepEqual(layoutParams(['p', 'i', 'l', 'f', 'f', 'p']), { offsets: [0, 8, 16, 24, 28, 32], size: 40 })
  // CU_LAUNCH_PARAM_BUFFER_SIZE is the end of the last parameter: the driver rejects tail padding (16 for (p, i))
  assert.deepEqual(layoutParams(['p', 'i']), { offsets: [0, 8], size: 12 })
  assert.equal(layoutParams(['p', 'p', 'p', 'p', 'i', 'i', 'i', 'i', 'i']).size, 52)   // crossentropy_forward
  const src = 'extern "C" __global__ void k(float* out, int n, long long m, float s, double d) {}'
  const sig: KernelSig = parseKernels(src)[0]!
  const view = new DataView(new ArrayBuffer(64))
  const size = packArgs(sig, [0x7f0012345600, -3, 2 ** 40 + 5, 0.5, 1 / 3], view)
  assert.equal(size, 40, 'the double after the float at 24 is aligned up to 32')
  assert.equal(view.getBigInt64(0, true), 0x7f0012345600n)
  assert.equal(view.getInt32(8, true), -3)
  assert.equal(view.getBigInt64(16, true), BigInt(2 ** 40 + 5))
  assert.equal(view.getFloat32(24, true), 0.5)
  assert.equal(view.getFloat64(32, true), 1 / 3)
  assert.throws(() => packArgs(sig, [0, 1, 2], view), /takes 5 arguments \(out, n, m, s, d\), got 3/)
  assert.throws(() => packArgs(sig, [0.5, 1, 2, 3, 4], view), /argument out = 0.5 is not an integer/)
})

test('parameter lists given by a #define are expanded (the attention wrappers)', () => {
  const src = '#define P void* out, const float* x, int n\nextern "C" __global__ void __launch_bounds__(128) k_d2(P) { body<2>(A); }'
  const [s] = parseKernels(src)
  assert.equal(s!.name, 'k_d2')
  assert.deepEqual(s!.params, ['p', 'p', 'i'])
  assert.deepEqual(s!.names, ['out', 'x', 'n'])
  // from an included header's text (attention_mma.cu takes its lists from attention_mma.cuh); unknown: refused
  const [h] = parseKernels('extern "C" __global__ void k(Q) {}', 'k.cu', ['// lists\n#define Q int n, double* y'])
  assert.deepEqual([h!.params, h!.names], [['i', 'p'], ['n', 'y']])
  assert.throws(() => parseKernels('extern "C" __global__ void k(Q) {}'), /unsupported kernel parameter type in "Q"/)
})

test('host bf16: round to nearest even, exact widening, NaN and infinities kept', () => {
  assert.equal(fromBf16Bits(toBf16Bits(1)), 1)
  assert.equal(toBf16Bits(1 + 2 ** -8), 0x3f80, 'a tie rounds to the even mantissa (down)')
  assert.equal(toBf16Bits(1 + 3 * 2 ** -8), 0x3f82, 'a tie rounds to the even mantissa (up)')
  assert.equal(toBf16Bits(1 + 2 ** -8 + 2 ** -20), 0x3f81, 'above the tie rounds up')
  assert.equal(fromBf16Bits(toBf16Bits(Infinity)), Infinity)
  assert.equal(fromBf16Bits(toBf16Bits(-Infinity)), -Infinity)
  assert.ok(Number.isNaN(fromBf16Bits(toBf16Bits(NaN))))
  assert.equal(fromBf16Bits(toBf16Bits(3.4e38)), Infinity, 'above the largest bf16 rounds to infinity')
  const x = new Float32Array([0.1, -2.5, 1e-30, 65504, -0, 3.14159])
  const back = bf16ToF32(f32ToBf16(x))
  for (let i = 0; i < x.length; i++) {
    assert.ok(Math.abs(back[i]! - x[i]!) <= Math.abs(x[i]!) * 2 ** -9, `${x[i]} -> ${back[i]}`)
    assert.equal(f32ToBf16(x.subarray(i, i + 1))[0], toBf16Bits(x[i]!), 'bulk and scalar agree')
  }
  // the bulk path (uploads) on its own, against bits worked out by hand: ties to the even mantissa (down from
  // 0x3f80|8000, up from 0x3f81|8000), negated; just above a tie; infinities; NaNs quiet with their sign; and the
  // largest float32, which is past the largest bf16 by more than half a step: infinity
  const bits = new Uint32Array([0x3f808000, 0x3f818000, 0xbf808000, 0xbf818000, 0x3f808001, 0x7f800000, 0xff800000,
    0x7fc00000, 0x7f800001, 0xff800001, 0x7f7fffff])
  const want = [0x3f80, 0x3f82, 0xbf80, 0xbf82, 0x3f81, 0x7f80, 0xff80, 0x7fc0, 0x7fc0, 0xffc0, 0x7f80]
  const hex = (a: ArrayLike<number>): string[] => Array.from(a, v => v.toString(16))
  assert.deepEqual(hex(f32ToBf16(new Float32Array(bits.buffer))), hex(want))
  assert.equal(new Float32Array(bits.buffer)[0], 1 + 2 ** -8)
  assert.equal(new Float32Array(bits.buffer)[1], 1 + 3 * 2 ** -8)
})

test('NVRTC target: sm_90a on Hopper, sm_80 on A100, PTX when NVRTC is older than the GPU, an error below sm_80', () => {
  assert.deepEqual(targetFor([9, 0], [12, 4], [80, 86, 89, 90]), { arch: 'sm_90a', kind: 'cubin' })
  assert.deepEqual(targetFor([9, 0], [11, 8], [80, 86, 89, 90]), { arch: 'sm_90', kind: 'cubin' })
  assert.deepEqual(targetFor([8, 0], [13, 0], []), { arch: 'sm_80', kind: 'cubin' })
  assert.deepEqual(targetFor([12, 0], [12, 4], [80, 86, 89, 90]), { arch: 'compute_90', kind: 'ptx' })
  assert.throws(() => targetFor([7, 5], [13, 0], [75, 80]), (e: Error) => e instanceof InputError && /8\.0 or newer/.test(e.message))
  // the wgmma kernels are built where NVRTC compiles for sm_90a (wgmma.cuh), whatever macros NVRTC itself defines
  assert.deepEqual(nvrtcOptions({ arch: 'sm_90a', kind: 'cubin' }), ['--gpu-architecture=sm_90a', '--std=c++17', '-DLLMTS_NVRTC=1', '-DLLMTS_SM90A=1'])
  assert.deepEqual(nvrtcOptions({ arch: 'compute_90', kind: 'ptx' }), ['--gpu-architecture=compute_90', '--std=c++17', '-DLLMTS_NVRTC=1'])
})

test('kernel cache: the key changes with source, headers, options and NVRTC version; folder from LLMTS_CACHE', () => {
  const h = [{ name: 'common.cuh', text: 'x' }], o = ['--gpu-architecture=sm_90a']
  const base = cacheKey('src', h, o, [12, 4], 'cubin')
  assert.equal(base, cacheKey('src', h, o, [12, 4], 'cubin'))
  assert.notEqual(base, cacheKey('src2', h, o, [12, 4], 'cubin'))
  assert.notEqual(base, cacheKey('src', [{ name: 'common.cuh', text: 'y' }], o, [12, 4], 'cubin'))
  assert.notEqual(base, cacheKey('src', h, ['--gpu-architecture=sm_80'], [12, 4], 'cubin'))
  assert.notEqual(base, cacheKey('src', h, o, [13, 0], 'cubin'))
  assert.equal(defaultCacheDir({ LLMTS_CACHE: '/data/c' }, '/home/u'), '/data/c/cuda')
  assert.equal(defaultCacheDir({}, '/home/u'), '/home/u/.cache/llmts/cuda')
})

/** An NVRTC stand-in whose "image" is the source and the header texts it was given; counts compiles. */
function fakeNvrtc(version: [number, number]): { nvrtc: Nvrtc; compiles: string[] } {
  const compiles: string[] = []
  let image = ''
  const nvrtc: Nvrtc = {
    path: 'fake', version, supportedArchs: () => [], raw: { nvrtcCompileProgram: () => 0 } as unknown as Nvrtc['raw'],
    call(name: string, ...args: unknown[]): void {
      if (name === 'nvrtcCreateProgram') {
        (args[0] as unknown[])[0] = 1n
        image = [args[1], ...(args[4] as string[])].join('|')
        compiles.push(args[2] as string)
      }
      if (name === 'nvrtcGetCUBINSize') (args[1] as number[])[0] = Buffer.byteLength(image)
      if (name === 'nvrtcGetCUBIN') Buffer.from(image).copy(args[1] as Uint8Array)
    },
  }
  return { nvrtc, compiles }
}

test('kernel cache on disk: a changed header, another NVRTC or fresh: true compiles again; otherwise the cached image', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llmts-cu-cache-'))
  try {
    const file = join(dir, 'k.cu'), header = join(dir, 'common.cuh'), cache = join(dir, 'cache')
    writeFileSync(file, '#include "common.cuh"\nkernel body')
    writeFileSync(header, 'header v1')
    const target = { arch: 'sm_90a', kind: 'cubin' } as const
    const a = fakeNvrtc([13, 0]), compiler = createCompiler(a.nvrtc, target, cache)
    const text = (img: Uint8Array): string => Buffer.from(img).toString()
    assert.equal(text(compiler.image(file)), '#include "common.cuh"\nkernel body|header v1')
    assert.equal(text(compiler.image(file)), '#include "common.cuh"\nkernel body|header v1')
    assert.equal(a.compiles.length, 1, 'the second call reads the cache')
    writeFileSync(header, 'header v2')   // only the header changed: a cached image of v1 would be stale
    assert.equal(text(compiler.image(file)), '#include "common.cuh"\nkernel body|header v2')
    assert.equal(a.compiles.length, 2)
    compiler.image(file, { fresh: true })
    assert.equal(a.compiles.length, 3, 'fresh: true ignores the cache')
    const b = fakeNvrtc([13, 1])
    createCompiler(b.nvrtc, target, cache).image(file)
    assert.equal(b.compiles.length, 1, 'another NVRTC version compiles its own image')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('matmul plans are keyed by shape, types, epilogue and pointer alignment', () => {
  const g: Gemm = { transA: true, transB: false, m: 96, n: 64, k: 32, a: { ptr: 4096, dtype: 'bf16' }, lda: 32,
    b: { ptr: 8192, dtype: 'bf16' }, ldb: 32, d: { ptr: 12288, dtype: 'f32' }, ldd: 96, accumulate: false, bias: null }
  const key = planKey(g, true)
  assert.equal(planKey({ ...g, a: { ptr: 4096 + 256, dtype: 'bf16' } }, true), key, 'same alignment, same plan')
  for (const op of ['a', 'b', 'd'] as const) {   // cuBLASLt's algorithm choice depends on each operand's alignment
    assert.notEqual(planKey({ ...g, [op]: { ...g[op], ptr: g[op].ptr + 2 } }, true), key, `a 2-byte-aligned ${op} needs its own algorithm`)
  }
  assert.notEqual(planKey({ ...g, bias: { ptr: 0, dtype: 'f32' } }, true), key)
  assert.notEqual(planKey({ ...g, n: 65 }, true), key)
  assert.equal(alignmentOf(0x1000), 256)
  assert.equal(alignmentOf(0x1008), 8)
  assert.match(describeGemm(g), /m=96 n=64 k=32 op\(A\)=T/)
})

test('takePending: only a range that holds [offset, offset+length) whole gives it up, keeping what lies either side', () => {
  const a = new Allocation(0, 100, 'f32')
  a.pendingZero = [{ offset: 10, length: 20 }, { offset: 50, length: 10 }]
  assert.equal(takePending(a, 25, 10), false, 'runs past the end of [10, 30)')
  assert.equal(takePending(a, 5, 10), false, 'starts before it')
  assert.equal(takePending(a, 30, 5), false, 'between the ranges')
  assert.deepEqual(a.pendingZero, [{ offset: 10, length: 20 }, { offset: 50, length: 10 }], 'a refusal changes nothing')
  assert.equal(takePending(a, 15, 5), true)
  assert.deepEqual(a.pendingZero, [{ offset: 10, length: 5 }, { offset: 20, length: 10 }, { offset: 50, length: 10 }])
  assert.equal(takePending(a, 50, 10), true, 'a whole range')
  assert.deepEqual(a.pendingZero, [{ offset: 10, length: 5 }, { offset: 20, length: 10 }])
})

test('the kernel registry: lazy per-file images, a refused cached image compiled afresh once, checked launches', () => {
  const images: string[] = [], launches: { grid: number[]; size: number }[] = []
  const compiler = {
    target: { arch: 'sm_90a', kind: 'cubin' as const },
    image: (file: string, o?: { fresh: boolean }) => {
      images.push(basename(file) + (o?.fresh ? ' fresh' : '')); return new Uint8Array([o?.fresh ? 2 : 1])
    },
  }
  const driver: LaunchDriver = {
    loadModule: (img) => { if (img[0] === 1) throw new Error('CUDA_ERROR_INVALID_IMAGE'); return 7n },
    getFunction: () => 9n,
    setMaxDynamicShared: () => {},
    staticShared: () => 0,
    launch: (_fn, grid, _block, _shared, pack) => { launches.push({ grid, size: pack(new DataView(new ArrayBuffer(4096))) }) },
  }
  const reg = new KernelRegistry(kernelDir, compiler, driver)
  assert.deepEqual(images, [], 'nothing compiles before a launch')
  reg.launch('convert', [3, 1, 1], [256, 1, 1], 0, [4096, 8192, 100, 1, 1])
  reg.launch('sum_partial', [1, 1, 1], [256, 1, 1], 0, [4096, 8192, 100, 0, 0])
  assert.deepEqual(images, ['memory.cu', 'memory.cu fresh'], 'one image per file; the refused cached one rebuilt once')
  assert.deepEqual(launches.map(l => l.size), [32, 32])   // void*, const void*, long long, int, int
  assert.throws(() => reg.launch('convert', [1, 1, 1], [256, 1, 1], 0, [1, 2]), /takes 5 arguments/)
  assert.throws(() => reg.launch('no_such_kernel', [1, 1, 1], [32, 1, 1], 0, []), /no kernel named no_such_kernel/)
  assert.throws(() => reg.launch('convert', [1, 70000, 1], [256, 1, 1], 0, [0, 0, 0, 0, 0]), /out of range/)
})

test('the kernel registry: the shared-memory opt-in counts static shared memory; a failed launch or sync names its kernel', () => {
  const optIns: number[] = []
  let failLaunch = false, failSync = false, syncs = 0
  const driver: LaunchDriver = {
    loadModule: () => 7n,
    getFunction: () => 9n,
    setMaxDynamicShared: (_fn, bytes) => { optIns.push(bytes) },
    staticShared: () => 128,   // as crossentropy_forward_staged's sh[32] floats
    launch: () => { if (failLaunch) throw new Error('cuLaunchKernel failed: CUDA_ERROR_INVALID_VALUE') },
  }
  const compiler = { target: { arch: 'sm_90a', kind: 'cubin' as const }, image: () => new Uint8Array([1]) }
  const reg = new KernelRegistry(kernelDir, compiler, driver, () => {
    syncs++; if (failSync) throw new Error('cuCtxSynchronize failed: CUDA_ERROR_ILLEGAL_ADDRESS')
  })
  const args = [4096, 8192, 100, 1, 1]
  reg.launch('convert', [1, 1, 1], [256, 1, 1], 48 * 1024 - 128, args)
  assert.deepEqual(optIns, [], 'static + dynamic = 48 KB needs no opt-in')
  reg.launch('convert', [1, 1, 1], [256, 1, 1], 48 * 1024 - 64, args)
  reg.launch('convert', [1, 1, 1], [256, 1, 1], 48 * 1024 - 100, args)
  assert.deepEqual(optIns, [48 * 1024 - 64], 'one opt-in once static + dynamic passes 48 KB; smaller launches reuse it')
  assert.equal(syncs, 3, 'with a sync callback, every launch waits')
  failLaunch = true
  assert.throws(() => reg.launch('convert', [2, 1, 1], [256, 1, 1], 0, args),
    /^Error: cuda: kernel convert \(grid 2×1×1, block 256×1×1, 0 B dynamic shared memory\): cuLaunchKernel failed: CUDA_ERROR_INVALID_VALUE$/)
  failLaunch = false; failSync = true
  assert.throws(() => reg.launch('convert', [1, 1, 1], [256, 1, 1], 0, args),
    /cuda: kernel convert .*cuCtxSynchronize failed: CUDA_ERROR_ILLEGAL_ADDRESS/)
})

test('LLMTS_CUDA_ATTENTION and LLMTS_CUDA_SYNC are checked before any GPU work: one InputError each', () => {
  for (const [name, value, message] of [
    ['LLMTS_CUDA_ATTENTION', 'fast', /LLMTS_CUDA_ATTENTION=fast is not one of auto, atomic-dq, 4-blocks, wgmma, wgmma-whole, reference/],
    ['LLMTS_CUDA_SYNC', 'yes', /LLMTS_CUDA_SYNC=yes is not one of 0, 1/]] as const) {
    withEnv({ [name]: value }, () =>
      assert.throws(() => new CudaBackend(), (e: unknown) => e instanceof InputError && message.test((e as Error).message)))
  }
})

test('LLMTS_CUDA_GEMM_TUNE and gemmTune: an integer 1..32, else one InputError naming the variable, the value and the range', () => {
  for (const value of ['0', '-1', 'x', '33', '1.5']) {
    withEnv({ LLMTS_CUDA_GEMM_TUNE: value }, () => assert.throws(() => new CudaBackend(), (e: unknown) => e instanceof InputError &&
      e.message === `cuda: LLMTS_CUDA_GEMM_TUNE=${value} is not an integer 1..32 (cuBLASLt algorithms to time per GEMM shape)`))
  }
  assert.throws(() => new CudaBackend({ gemmTune: 0 }), /^InputError: cuda: gemmTune=0 is not an integer 1\.\.32/)
})

test('gemm-tune: the fastest median is kept, the earlier on a tie; one log line per shape', () => {
  assert.equal(fastest([0.5, 0.3, 0.4]), 1)
  assert.equal(fastest([0.3, 0.3, 0.4]), 0)
  assert.equal(fastest([0.4, 0.2, 0.2]), 1)
  assert.equal(formatTuning({ gemm: 'm=768 n=16384 k=3072', ms: [0.5, 0.4], chosen: 1 }),
    'gemm-tune: m=768 n=16384 k=3072: candidate 1 of 2, 0.4000 ms (0.5000 ms for candidate 0, 20.0% less)')
  assert.equal(formatTuning({ gemm: 'm=8 n=8 k=8', ms: [0.25, 0.5], chosen: 0 }),
    'gemm-tune: m=8 n=8 k=8: candidate 0 of 2, 0.2500 ms (the heuristic\'s first)')
})

test('kernel headers: the ones a source includes, through other headers, each once, sorted by name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llmts-headers-'))
  try {
    writeFileSync(join(dir, 'common.cuh'), '#pragma once\n')
    writeFileSync(join(dir, 'tiles.cuh'), '#pragma once\n#include "common.cuh"\n')
    writeFileSync(join(dir, 'unused.cuh'), 'x')
    const got = readHeaders(dir, '#include "tiles.cuh"\n#include "common.cuh"\nextern "C" __global__ void k() {}')
    assert.deepEqual(got.map(h => h.name), ['common.cuh', 'tiles.cuh'])
    assert.equal(got[1]!.text, '#pragma once\n#include "common.cuh"\n')
    assert.deepEqual(readHeaders(dir, 'no includes'), [])
  } finally { rmSync(dir, { recursive: true, force: true }) }
  // every kernel file of the project resolves its headers (attention_mma.cu through attention_mma.cuh)
  const kdir = resolve(process.cwd(), 'src/backend/cuda/kernels')
  const names = readHeaders(kdir, readFileSync(join(kdir, 'attention_mma.cu'), 'utf8')).map(h => h.name)
  assert.deepEqual(names, ['attention_mma.cuh', 'common.cuh'])
})
