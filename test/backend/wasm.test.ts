// The WebAssembly path (kernels: 'wasm'): the committed module matches its source; the GEMM, exp, softmax +
// cross-entropy, activations and attention kernels match float64 references; then the conformance suite and model
// goldens run on that path (paths.ts). Both builds of the module (plain SIMD, relaxed-SIMD FMA) run all of it: the
// engine's own pick here, the other in a child run.

import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { attentionBackward, attentionForward } from '../../src/backend/cpu/attention.js'
import { crossEntropyBackward, crossEntropyForward } from '../../src/backend/cpu/crossentropy.js'
import { geluBackward, geluForward } from '../../src/backend/cpu/gelu.js'
import { swigluBackward, swigluForward } from '../../src/backend/cpu/swiglu.js'
import { geluBackwardWasm, geluForwardWasm, swigluBackwardWasm, swigluForwardWasm } from '../../src/backend/cpu/wasm/activations.js'
import { attentionBackwardWasm, attentionForwardWasm } from '../../src/backend/cpu/wasm/attention.js'
import { crossEntropyBackwardWasm, crossEntropyForwardWasm } from '../../src/backend/cpu/wasm/crossentropy.js'
import { loadWasmGemm } from '../../src/backend/cpu/wasm/gemm.js'
import { makeOpTable } from '../../src/backend/cpu/optable.js'
import { engineHasRelaxedSimd, KernelInstance, kernelInstance, wasmVariant } from '../../src/backend/cpu/wasm/module.js'
import { assertClose } from './compare.js'
import { registerPathSuites } from './paths.js'
import { checkSgemm } from './sgemm-check.js'
import { tapCount, tapFailures } from '../helpers/tap.js'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { InputError } from '../../src/util/errors.js'
import { withEnv } from '../helpers/env.js'

// LLMTS_TEST_WASM_BUILD (set by the last test below for its child run): the build this run must be on
const expected = process.env['LLMTS_TEST_WASM_BUILD']

test('a machine without a native BLAS (LLMTS_BLAS=off) gets the WebAssembly path on auto, and says which build', () => {
  const b = new CpuBackend({ kernels: 'auto', blas: 'off', threads: 1 })
  assert.equal(b.accel.kernels.kind, 'wasm')
  const variant = b.accel.kernels.simd!.variant
  if (expected !== undefined) assert.equal(variant, expected)
  assert.equal(variant, engineHasRelaxedSimd() && process.env['LLMTS_WASM_FMA'] !== 'off' ? 'fma' : 'simd')
  assert.equal(b.describe(),
    `cpu backend: WebAssembly SIMD kernels${variant === 'fma' ? ' with relaxed-SIMD FMA' : ''} (no native BLAS found), 1 thread`)
})

test('wasm: kernels-wasm.ts is what scripts/build-wasm.mjs compiles from kernels.wat (both builds)', (t) => {
  if (!existsSync(resolve(process.cwd(), 'node_modules/wabt'))) { t.skip('wabt (devDependency) not installed'); return }
  execFileSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], { cwd: process.cwd(), stdio: 'pipe' })
})

test('wasm: the relaxed-SIMD (FMA) build where the engine has relaxed SIMD, unless LLMTS_WASM_FMA=off; another value is refused', () => {
  assert.equal(wasmVariant({}), engineHasRelaxedSimd() ? 'fma' : 'simd')
  assert.equal(wasmVariant({ LLMTS_WASM_FMA: 'off' }), 'simd')
  withEnv({ LLMTS_WASM_FMA: 'on' }, () =>
    assert.throws(() => new CpuBackend({ kernels: 'wasm', threads: 1 }), (e: Error) => e instanceof InputError &&
      e.message === 'cpu backend: LLMTS_WASM_FMA=on, expected one of auto, off'))
})

// The other build runs this whole file again in a child: with LLMTS_WASM_FMA=off where the engine takes the FMA
// build (Node 22+, and Node 20 with the V8 flag module.ts switches on), else the FMA build where this run had it off.
test('wasm: this whole file passes on the other build too (plain SIMD, or relaxed-SIMD FMA)', { timeout: 300_000 }, (t) => {
  if (expected !== undefined) { t.skip('this is the child run'); return }
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env['NODE_TEST_CONTEXT']
  const args = ['--test', fileURLToPath(import.meta.url)]
  if (wasmVariant() === 'fma') {
    env['LLMTS_WASM_FMA'] = 'off'
    env['LLMTS_TEST_WASM_BUILD'] = 'simd'
  } else if (process.env['LLMTS_WASM_FMA'] === 'off' && engineHasRelaxedSimd()) {
    delete env['LLMTS_WASM_FMA']
    env['LLMTS_TEST_WASM_BUILD'] = 'fma'
  } else {
    t.skip('this Node has no relaxed SIMD, even with its V8 flag')
    return
  }
  const r = spawnSync(process.execPath, args, { env, encoding: 'utf8', maxBuffer: 64 << 20 })
  const build = env['LLMTS_TEST_WASM_BUILD'], passed = tapCount(r.stdout, 'pass')
  assert.equal(r.status, 0, `the ${build} build failed:\n${tapFailures(r.stdout)}\n${r.stderr.slice(-2000)}`)
  t.diagnostic(`${build} build: ${passed} passed, ${tapCount(r.stdout, 'skipped')} skipped`)
  assert.ok(passed >= 100, `only ${passed} tests passed on the ${build} build`)
})

// Node 20 validates relaxed SIMD only with --experimental-wasm-relaxed-simd: a child started without it must still
// get the FMA build (module.ts switches the flag on), wherever a child started with it validates the FMA module.
test('wasm: an engine with relaxed SIMD only behind its V8 flag (Node 20) gets the FMA build without it, also when named', (t) => {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env['LLMTS_WASM_FMA']
  const url = (p: string): string => new URL(`../../src/backend/cpu/wasm/${p}`, import.meta.url).href
  const probe = spawnSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--input-type=module', '-e',
    `import { kernelsFmaWasmBase64 as b } from '${url('kernels-wasm.js')}'; ` +
    `process.exit(WebAssembly.validate(Buffer.from(b, 'base64')) ? 0 : 3)`], { env, encoding: 'utf8' })
  if (probe.status !== 0) { t.skip(`no relaxed SIMD in this Node, even with its V8 flag: ${probe.stderr.trim()}`); return }
  const r = spawnSync(process.execPath, ['--input-type=module', '-e',
    `import { wasmVariant } from '${url('module.js')}'; console.log(wasmVariant())`], { env, encoding: 'utf8' })
  assert.equal(r.stdout.trim(), 'fma', r.stderr)
  // a worker thread is handed its build by name: the FMA one must instantiate in a fresh process as well
  const w = spawnSync(process.execPath, ['--input-type=module', '-e',
    `import { KernelInstance } from '${url('module.js')}'; console.log(new KernelInstance('fma').variant)`], { env, encoding: 'utf8' })
  assert.equal(w.stdout.trim(), 'fma', w.stderr)
})

test('wasm: sgemm on offset views, every transpose, beyond every block size, against float64 loops (each build this engine runs)', () => {
  for (const variant of engineHasRelaxedSimd() ? ['simd', 'fma'] as const : ['simd'] as const) {
    const g = loadWasmGemm(new KernelInstance(variant))
    assert.ok(g !== null, 'this Node has WebAssembly SIMD')
    // 130 > MC, 530 > NC, 300 > KC, 2300 > KB rows of B packed at once (C blocks go out and back in)
    checkSgemm(g, [[5, 7, 3], [4, 16, 1], [130, 530, 300], [2050, 5, 3], [20, 9, 2300]])
  }
})

// The packs transpose 4 rows × 4 k at a time and finish element by element: K below 4, K % 4 != 0 inside and after
// a 256-deep block (258), K a multiple of 4, with complete and ragged 4-row (A) and 8-column (B) panels.
test('wasm: sgemm where the packs\' 4×4 transposes meet ragged edges, against float64 loops (each build)', () => {
  for (const variant of engineHasRelaxedSimd() ? ['simd', 'fma'] as const : ['simd'] as const) {
    const g = loadWasmGemm(new KernelInstance(variant))
    assert.ok(g !== null, 'this Node has WebAssembly SIMD')
    checkSgemm(g, [[1, 1, 1], [4, 8, 4], [9, 13, 6], [8, 16, 7], [3, 5, 2], [12, 17, 258], [6, 9, 5]])
  }
})

test('wasm: vectorized exp within 2 ulp of Math.exp on [-87, 10], 0 below -87', () => {
  const k = kernelInstance()!
  const n = 4099, xs = new Float32Array(n)
  for (let i = 0; i < n; i++) xs[i] = -87 + (97 * i) / (n - 1)
  const mem = k.reserve(16 + n)
  mem.set(xs, 16)
  const sum = k.x.vexp_sum(16 * 4, n, 1, 0)
  const got = k.f32.slice(16, 16 + n), want = xs.map(x => Math.exp(x))
  assertClose('exp', got, Float64Array.from(xs, x => Math.exp(x)), { rtol: 2.5e-7, atol: 0 })
  assertClose('sum', [sum], [want.reduce((s, x) => s + x, 0)], { rtol: 1e-6, atol: 0 })
  k.f32.set([-88, -100, -Infinity, -87.5], 16)
  k.x.vexp_sum(16 * 4, 4, 1, 0)
  assert.deepEqual(Array.from(k.f32.subarray(16, 20)), [0, 0, 0, 0])
})

test('wasm: softmax + cross-entropy forward and backward on GPT-2 rows (V = 50257 of 50304) equals the float64 reference', () => {
  const N = 3, V = 50257, Vp = 50304
  const logits = new Float32Array(N * Vp)
  for (let i = 0; i < logits.length; i++) logits[i] = 4 * Math.sin(i * 0.37) + (i % Vp >= V ? 100 : 0)
  const targets = new Int32Array([7, -1, V - 1])
  const want = { losses: new Float32Array(N), probs: new Float32Array(N * Vp) }
  crossEntropyForward(want.losses, want.probs, logits, targets, N, V, Vp)
  const losses = new Float32Array(N), probs = logits.slice()
  crossEntropyForwardWasm(kernelInstance()!, losses, probs, probs, targets, N, V, Vp)   // in place, as the model does
  assertClose('losses', losses, want.losses, { rtol: 1e-6, atol: 1e-6 })
  assertClose('probs', probs, want.probs, { rtol: 1e-6, atol: 1e-12 })
  const wantD = new Float32Array(N * Vp)
  crossEntropyBackward(wantD, want.probs, targets, 0.37, N, V, Vp)
  crossEntropyBackwardWasm(kernelInstance()!, probs, probs, targets, 0.37, N, V, Vp)   // in place again
  assertClose('dlogits', probs, wantD, { rtol: 1e-6, atol: 1e-12 })
})

test('wasm: GELU and SwiGLU over several chunks, odd widths, saturating inputs, against the float64 JS ops', () => {
  const k = kernelInstance()!
  const N = 700, H = 37, n = N * 2 * H   // 51,800 elements: four chunks of GELU, rows that straddle SwiGLU's
  const x = new Float32Array(n), dout = new Float32Array(n), prior = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    x[i] = 8 * Math.sin(i * 0.61) * (i % 97 === 0 ? 20 : 1)   // mostly [-8, 8], some ±160 (exp saturates)
    dout[i] = Math.cos(i * 0.37)
    prior[i] = Math.sin(i * 1.3)
  }
  // float32 evaluation of σ (≈2 ulp) against float64: 2e-6 relative, atol for the values that cancel near 0
  const tol = { rtol: 2e-6, atol: 1e-6 }
  const want = new Float32Array(n), got = new Float32Array(n)
  geluForward(want, x, n)
  geluForwardWasm(k, got, x, n)
  assertClose('gelu forward', got, want, tol)
  const wantD = prior.slice(), gotD = prior.slice()
  geluBackward(wantD, dout, x, n)
  geluBackwardWasm(k, gotD, dout, x, n)
  assertClose('gelu backward (accumulated)', gotD, wantD, tol)
  const wantS = new Float32Array(N * H), gotS = new Float32Array(N * H)
  swigluForward(wantS, x, N, H)
  swigluForwardWasm(k, gotS, x, N, H)
  assertClose('swiglu forward', gotS, wantS, tol)
  const wantSD = prior.slice(), gotSD = prior.slice()
  swigluBackward(wantSD, dout.subarray(0, N * H), x, N, H)
  swigluBackwardWasm(k, gotSD, dout.subarray(0, N * H), x, N, H)
  assertClose('swiglu backward (accumulated)', gotSD, wantSD, tol)
})

test('wasm: the op table runs the wasm kernel on a thread with SIMD and the JS op on one without (bit for bit)', () => {
  const k = kernelInstance()!
  const N = 64, H = 33, n = N * 2 * H
  const x = Float32Array.from({ length: n }, (_, i) => 6 * Math.sin(i * 0.61))
  const bits = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength)
  const run = (f: (out: Float32Array) => void, len: number): Buffer => { const out = new Float32Array(len); f(out); return bits(out) }
  const simd = makeOpTable({ gemm: null, gemmMinWork: 0, simd: k }), plain = makeOpTable({ gemm: null, gemmMinWork: 0, simd: null })
  const cases = [
    { op: 'geluForward', len: n, table: (t: typeof simd) => (o: Float32Array) => t.geluForward(o, x, n),
      wasm: (o: Float32Array) => geluForwardWasm(k, o, x, n), js: (o: Float32Array) => geluForward(o, x, n) },
    { op: 'swigluForward', len: N * H, table: (t: typeof simd) => (o: Float32Array) => t.swigluForward(o, x, N, H),
      wasm: (o: Float32Array) => swigluForwardWasm(k, o, x, N, H), js: (o: Float32Array) => swigluForward(o, x, N, H) },
  ]
  for (const c of cases) {
    const wasm = run(c.wasm, c.len), js = run(c.js, c.len)
    assert.ok(!wasm.equals(js), `${c.op}: the two kernels must differ somewhere for this check to tell them apart`)
    assert.ok(run(c.table(simd), c.len).equals(wasm), `${c.op}: a SIMD thread's table must run the wasm kernel`)
    assert.ok(run(c.table(plain), c.len).equals(js), `${c.op}: a thread without SIMD must run the JS op`)
  }
})

test('wasm: strips_to_panels transposes query strips into key panels and writes no row past r', () => {
  const k = kernelInstance()!
  for (const [n, r] of [[13, 5], [16, 8], [9, 12], [1, 1]] as const) {
    const strips = Math.ceil(r / 8), panels = Math.ceil(n / 8), SRC = 16, DST = SRC + strips * n * 8 + 64
    const mem = k.reserve(DST + panels * r * 8 + 64)
    for (let i = 0; i < strips * n * 8 + 64; i++) mem[SRC + i] = i + 1
    mem.fill(-1, DST, DST + panels * r * 8 + 64)
    k.x.strips_to_panels(SRC * 4, n, r, DST * 4)
    for (let kp = 0; kp < panels; kp++) {
      for (let q = 0; q < r; q++) {
        for (let kk = 0; kk < 8 && kp * 8 + kk < n; kk++) {
          const key = kp * 8 + kk, want = Math.floor(q / 8) * n * 8 + key * 8 + (q % 8) + 1
          assert.equal(mem[DST + kp * r * 8 + q * 8 + kk], want, `n=${n} r=${r}: key ${key} of query ${q}`)
        }
      }
    }
    assert.ok(mem.subarray(DST + panels * r * 8, DST + panels * r * 8 + 64).every(x => x === -1), `n=${n} r=${r}: written past the last panel`)
  }
})

// Shapes the op fixtures (T ≤ 67, HS ≤ 8) do not reach: several 64-query blocks with a ragged last one (T = 130:
// r = 2), query strips and key panels cut mid-way (T = 45), head sizes of 64 and of 3 (ragged 4-row panels),
// groups of 1, 2 and 3 query heads per K/V head, and a second sequence. float64 reference on the same inputs.
test('wasm: attention forward and backward (query strips, softmax kernels) against the float64 JS reference', () => {
  const k = kernelInstance()!
  // several query blocks (T > 64), ragged strips and panels (T and HS not multiples of the block sizes)
  for (const [B, T, NH, KVH, HS] of [[2, 130, 4, 2, 16], [1, 45, 3, 1, 64], [2, 70, 2, 2, 3], [1, 8, 6, 2, 32]] as const) {
    const QKV = (NH + 2 * KVH) * HS, C = NH * HS
    const wave = (n: number, f: number, a: number): Float32Array => Float32Array.from({ length: n }, (_, i) => a * Math.sin(i * f + 0.3))
    const qkv = wave(B * T * QKV, 0.731, 1.7), dout = wave(B * T * C, 0.377, 1), prior = wave(B * T * QKV, 1.3, 0.5)
    const want = { out: new Float64Array(B * T * C), lse: new Float64Array(B * NH * T), dqkv: Float64Array.from(prior) }
    attentionForward(want.out, want.lse, Float64Array.from(qkv), B, T, NH, KVH, HS)
    attentionBackward(want.dqkv, Float64Array.from(dout), Float64Array.from(qkv), want.lse, B, T, NH, KVH, HS)
    const out = new Float32Array(B * T * C), lse = new Float32Array(B * NH * T), dqkv = prior.slice()
    attentionForwardWasm(k, out, lse, qkv, B, T, NH, KVH, HS)
    attentionBackwardWasm(k, dqkv, dout, qkv, Float32Array.from(want.lse), B, T, NH, KVH, HS)
    const shape = `B=${B} T=${T} NH=${NH} KVH=${KVH} HS=${HS}`
    assertClose(`out (${shape})`, out, want.out, { rtol: 1e-5, atol: 2e-6 })
    assertClose(`lse (${shape})`, lse, want.lse, { rtol: 1e-6, atol: 1e-6 })
    assertClose(`dqkv (${shape})`, dqkv, want.dqkv, { rtol: 1e-4, atol: 2e-5 })
  }
})

// the conformance suite and the model goldens, on the WebAssembly path
registerPathSuites('wasm', 'wasm')
