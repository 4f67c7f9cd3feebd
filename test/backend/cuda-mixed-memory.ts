// Device memory state in mixed precision, against the CPU backend: the bf16 mirror of f32 weights follows every
// write (uploads, AdamW on the whole buffer or a segment, copies, zeroes); lazy zeros are overwritten by ops that
// accumulate and seen as real zeros by everything else; scratch slots give back what they outgrow, and the sums'
// partials fit theirs; freeing a view keeps its base; bf16 storage rounds on upload and converts on copy.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Backend, Tensor } from '../../src/backend/backend.js'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { CudaBackend } from '../../src/backend/cuda/index.js'
import { DeviceTensor, roundToBf16 } from '../../src/backend/cuda/memory.js'
import { assertClose } from './compare.js'
import { Pair, randn, type Both } from './cuda-mixed.js'

export function registerMixedMemory(): void {
  describe('cuda device memory state (mirrors, lazy zeros, scratch, bf16 storage) against the CPU backend', () => {
    let pair: Pair | undefined
    const P = (): Pair => (pair ??= new Pair())

    test('the weight mirror follows uploads and AdamW, also for a misaligned view into a flat buffer', () => {
      const p = P(), N = 16, C = 40, OC = 24, off = 3   // offset 3: 12-byte-aligned f32, 6-byte-aligned bf16
      const flat = p.full(randn(off + OC * C + 5, 0.1))
      const w: Both = { g: p.gpu.view(flat.g, off, OC * C), c: p.cpu.view(flat.c, off, OC * C) }
      const inp = p.act(randn(N * C)), out = p.zeros(N * OC, 'act')
      const forward = (label: string): void => {
        p.gpu.matmulForward(out.g, inp.g, w.g, null, N, C, OC)
        p.cpu.matmulForward(out.c, inp.c, w.c, null, N, C, OC)
        p.near(label, out)
      }
      forward('out with the first weights')
      const w2 = randn(OC * C, 0.1)
      p.gpu.upload(w.g, w2)
      p.cpu.upload(w.c, w2)
      forward('out after uploading new weights (mirror refreshed)')
      const grads = p.full(randn(flat.g.length)), m = p.full(new Float32Array(flat.g.length)), v = p.full(new Float32Array(flat.g.length))
      const opts = { lr: 0.05, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1, gradScale: 0.7 }
      p.gpu.adamwUpdate(flat.g, grads.g, m.g, v.g, opts)
      p.cpu.adamwUpdate(flat.c, grads.c, m.c, v.c, opts)
      assertClose('params after AdamW', p.gpu.download(flat.g), p.cpu.download(flat.c), { rtol: 1e-5, atol: 1e-6 })
      forward('out after AdamW (mirror written by the update)')
      p.gpu.adamwUpdate(p.gpu.view(flat.g, 0, 7), p.gpu.view(grads.g, 0, 7), p.gpu.view(m.g, 0, 7), p.gpu.view(v.g, 0, 7), { ...opts, step: 2 })
      p.cpu.adamwUpdate(p.cpu.view(flat.c, 0, 7), p.cpu.view(grads.c, 0, 7), p.cpu.view(m.c, 0, 7), p.cpu.view(v.c, 0, 7), { ...opts, step: 2 })
      forward('out after AdamW on an overlapping segment')
      // a segment at an offset writes the mirror at that offset (4: 16-byte-aligned f32, 8-byte-aligned bf16 mirror)
      const seg = (be: Backend, t: { flat: Tensor; grads: Tensor; m: Tensor; v: Tensor }, step: number): void =>
        be.adamwUpdate(be.view(t.flat, 4, 20), be.view(t.grads, 4, 20), be.view(t.m, 4, 20), be.view(t.v, 4, 20), { ...opts, step })
      seg(p.gpu, { flat: flat.g, grads: grads.g, m: m.g, v: v.g }, 3)
      seg(p.cpu, { flat: flat.c, grads: grads.c, m: m.c, v: v.c }, 3)
      forward('out after AdamW on a segment at offset 4')
      // a stale mirror (new weights uploaded) stays stale through AdamW on a segment: the next matmul refreshes all of it
      const w3 = randn(OC * C, 0.1)
      p.gpu.upload(w.g, w3)
      p.cpu.upload(w.c, w3)
      seg(p.gpu, { flat: flat.g, grads: grads.g, m: m.g, v: v.g }, 4)
      seg(p.cpu, { flat: flat.c, grads: grads.c, m: m.c, v: v.c }, 4)
      forward('out after an upload and AdamW on a segment')
      // a copy into the weights invalidates the mirror too
      const src = p.full(randn(OC * C, 0.1))
      p.gpu.copy(w.g, src.g)
      p.cpu.copy(w.c, src.c)
      forward('out after copying new weights in')
      p.gpu.zero(w.g)   // the backend zeroes lazily: the mirror must see the zeros
      p.cpu.zero(w.c)
      forward('out after zeroing the weights')
    })

    test('lazy zero: ops that accumulate into a freshly zeroed tensor overwrite it; any other use sees real zeros', () => {
      const p = P()
      // destinations full of large garbage, zeroed on both backends: the CPU really zeroes, the GPU defers
      const zeroed = (n: number): Both => { const t = p.act(randn(n, 100)); p.gpu.zero(t.g); p.cpu.zero(t.c); return t }
      const N = 24, H = 136, C = 40, OC = 72
      const inp = p.act(randn(N * 2 * H)), dout = p.act(randn(N * H)), dsw = zeroed(N * 2 * H)
      p.gpu.swigluBackward(dsw.g, dout.g, inp.g, N, H); p.cpu.swigluBackward(dsw.c, dout.c, inp.c, N, H)
      p.near('swiglu dinp into a zeroed buffer', dsw)
      const x = p.act(randn(N * H)), dg = zeroed(N * H)
      p.gpu.geluBackward(dg.g, dout.g, x.g, N * H); p.cpu.geluBackward(dg.c, dout.c, x.c, N * H)
      p.near('gelu dinp into a zeroed buffer', dg)
      const dg47 = zeroed(47)   // 47 = 5·8 + 7: the last 7 on the scalar path
      p.gpu.geluBackward(dg47.g, p.gpu.view(dout.g, 0, 47), p.gpu.view(x.g, 0, 47), 47)
      p.cpu.geluBackward(dg47.c, p.cpu.view(dout.c, 0, 47), p.cpu.view(x.c, 0, 47), 47)
      p.near('gelu dinp into a zeroed buffer of 47', dg47)
      const mi = p.act(randn(N * C)), w = p.full(randn(OC * C, 0.1)), dw = p.full(new Float32Array(OC * C)), mo = p.act(randn(N * OC))
      const dmi = zeroed(N * C)
      p.gpu.matmulBackward(dmi.g, dw.g, null, mo.g, mi.g, w.g, N, C, OC); p.cpu.matmulBackward(dmi.c, dw.c, null, mo.c, mi.c, w.c, N, C, OC)
      p.near('matmul dinp into a zeroed buffer', dmi)
      const [B, T, NH, KVH, HS] = [1, 70, 2, 1, 64], n = B * T * (NH + 2 * KVH) * HS
      const qkv = p.act(randn(n)), out = p.zeros(B * T * NH * HS, 'act'), lse = p.zeros(B * NH * T, 'full')
      p.gpu.attentionForward(out.g, lse.g, qkv.g, B, T, NH, KVH, HS); p.cpu.attentionForward(out.c, lse.c, qkv.c, B, T, NH, KVH, HS)
      p.cpu.upload(out.c, p.gpu.download(out.g))
      p.cpu.upload(lse.c, p.gpu.download(lse.g))
      const datt = p.act(randn(B * T * NH * HS)), dqkv = zeroed(n)
      p.gpu.attentionBackward(dqkv.g, datt.g, qkv.g, out.g, lse.g, B, T, NH, KVH, HS)
      p.cpu.attentionBackward(dqkv.c, datt.c, qkv.c, out.c, lse.c, B, T, NH, KVH, HS)
      p.near('attention dqkv into a zeroed buffer', dqkv, 2)
      const dpre = zeroed(n)
      p.gpu.ropeBackward(dpre.g, qkv.g, B, T, NH, KVH, HS, 10000, 0); p.cpu.ropeBackward(dpre.c, qkv.c, B, T, NH, KVH, HS, 10000, 0)
      p.near('rope backward into a zeroed buffer', dpre)
      // an op that writes fewer elements than the zeroed tensor holds: it accumulates onto real zeros
      const long = zeroed(N * 2 * H + 16)
      p.gpu.swigluBackward(long.g, dout.g, inp.g, N, H); p.cpu.swigluBackward(long.c, dout.c, inp.c, N, H)
      p.near('swiglu into a longer zeroed buffer (its tail stays zero)', long)
      // a zeroed view, then a different (overlapping) view of the allocation used as an accumulator and read back
      const data = randn(300, 100), base = p.gpu.alloc(300)
      p.gpu.upload(base, data)
      p.gpu.zero(p.gpu.view(base, 100, 100))
      const inner = p.gpu.view(base, 150, 24 * 2)   // overlaps the zeroed range, not equal to it
      p.gpu.swigluBackward(inner, p.gpu.view(dout.g, 0, 24), p.gpu.view(inp.g, 0, 48), 1, 24)
      const got = p.gpu.download(base)
      assert.deepEqual([...got.subarray(0, 100)], [...data.subarray(0, 100)], 'outside the zeroed range: untouched')
      assert.deepEqual([...got.subarray(100, 150)], new Array(50).fill(0), 'zeroed range before the view: zeros')
      assert.deepEqual([...got.subarray(198, 200)], [0, 0], 'zeroed range after the view: zeros')
      assert.deepEqual([...got.subarray(200)], [...data.subarray(200)])
      const ref = new CpuBackend(), r = ref.alloc(48), rd = ref.alloc(24), ri = ref.alloc(48)
      ref.upload(rd, p.gpu.download(dout.g).subarray(0, 24)); ref.upload(ri, p.gpu.download(inp.g).subarray(0, 48))
      ref.swigluBackward(r, rd, ri, 1, 24)
      assertClose('accumulated onto the cleared zeros', got.subarray(150, 198), ref.download(r), { rtol: 1e-5, atol: 1e-6 })
      // a view straddling the end of a zeroed range accumulates: the overlap is cleared, the rest stays lazy
      p.gpu.upload(base, data)
      p.gpu.zero(p.gpu.view(base, 100, 100))
      p.gpu.swigluBackward(p.gpu.view(base, 180, 48), p.gpu.view(dout.g, 0, 24), p.gpu.view(inp.g, 0, 48), 1, 24)
      const straddle = p.gpu.download(base)
      assert.deepEqual([...straddle.subarray(100, 180)], new Array(80).fill(0), 'the zeroed range before the view: zeros')
      assertClose('straddling view: accumulated onto zeros', straddle.subarray(180, 200), ref.download(r).subarray(0, 20), { rtol: 1e-5, atol: 1e-6 })
      const onData = Float32Array.from(ref.download(r).subarray(20), (g, i) => g + data[200 + i]!)
      assertClose('straddling view: accumulated onto the data past the range', straddle.subarray(200, 228), onData, { rtol: 1e-5, atol: 1e-4 })
    })

    test('a scratch slot that grows gives its old buffer back (device memory in use grows by the difference only)', () => {
      const ctx = P().gpu.ctx
      ctx.scratch('test-grow', 4096)
      const before = ctx.bytesInUse
      assert.equal(ctx.scratch('test-grow', 2048), ctx.scratch('test-grow', 4096), 'a smaller request reuses the buffer')
      ctx.scratch('test-grow', 65536)
      assert.equal(ctx.bytesInUse - before, 65536 - 4096)
    })

    // sum and sumSquares write one float64 partial per block (2048 elements each) into the 'sum-partial' scratch, which
    // is at least 1024 bytes (128 partials): 301 blocks write past a scratch sized for fewer (the emulator's guard page)
    test('sum and sumSquares over 301 blocks of partials equal a float64 host sum', () => {
      const be = new CudaBackend(), n = 300 * 2048 + 100, data = randn(n)   // a fresh backend: its scratch not yet grown
      const t = be.alloc(n)
      be.upload(t, data)
      let s = 0, q = 0, abs = 0
      for (const x of data) { s += x; q += x * x; abs += Math.abs(x) }
      // both sides sum exact terms (a float's square is exact in float64) in float64, in different orders: each is within
      // (n-1)·2^-53·Σ|term| of the exact sum (float32 accumulation misses this by ~40× for the sum, ~3·10^4× for squares)
      const tol = (terms: number): number => 2 * n * 2 ** -53 * terms
      const sum = be.sum(t), squares = be.sumSquares(t)
      assert.ok(Math.abs(sum - s) <= tol(abs), `sum ${sum}, expected ${s}`)
      assert.ok(Math.abs(squares - q) <= tol(q), `sumSquares ${squares}, expected ${q}`)
      // each element widened to float64 before it is squared: (1 + 2^-12)^2 needs 25 bits (a float square would drop
      // the 2^-24), and n of them sum exactly in float64
      const x = 1 + 2 ** -12, ones = be.alloc(1000)
      be.upload(ones, new Float32Array(1000).fill(x))
      assert.equal(be.sumSquares(ones), 1000 * x * x)
      assert.equal(be.sum(ones), 1000 * x)
    })

    // free() gives back whole allocations only: freeing a view (a slice of a flat buffer) must leave the buffer usable
    test('free of a strict view is ignored: the base keeps its memory and data; freeing the base gives it back', () => {
      const be = P().gpu, data = randn(300), base = be.alloc(300), out = be.alloc(300)
      be.upload(base, data)
      const used = be.ctx.bytesInUse
      be.free(be.view(base, 10, 100))
      assert.equal(be.ctx.bytesInUse, used, 'no device memory given back')
      assert.deepEqual(be.download(base), data)
      be.residualForward(out, base, base, 300)
      assert.deepEqual(be.download(out), data.map(x => 2 * x), 'the base still works as an op input (x + x is exact)')
      be.free(base)
      assert.equal(be.ctx.bytesInUse, used - 300 * 4)
      assert.throws(() => be.download(base), /download: src was freed/)
    })

    test('lazy zero of a whole flat gradient buffer (zeroGrad): weight gradients inside it are overwritten, the rest reads as zeros', () => {
      const p = P(), N = 24, C = 40, OC = 72, total = 2 * OC * C + 3 * C
      const grads = p.full(randn(total, 100))   // garbage, then zeroed as one range like GPT.zeroGrad
      p.gpu.zero(grads.g); p.cpu.zero(grads.c)
      const view = (t: Both, o: number, n: number): Both => ({ g: p.gpu.view(t.g, o, n), c: p.cpu.view(t.c, o, n) })
      const dw1 = view(grads, 0, OC * C), norm = view(grads, OC * C, C), dw2 = view(grads, OC * C + C, OC * C)
      const mi = p.act(randn(N * C)), w = p.full(randn(OC * C, 0.1)), mo = p.act(randn(N * OC))
      const x = p.full(randn(N * C)), rstd = p.full(new Float32Array(N).fill(0.5)), nd = p.act(randn(N * C)), dx = p.zeros(N * C, 'full')
      const memsets: number[] = [], memset = p.gpu.ctx.memsetZero.bind(p.gpu.ctx)
      p.gpu.ctx.memsetZero = (dst: number, bytes: number): void => { memsets.push(bytes); memset(dst, bytes) }
      try {
        for (const [i, dw] of [dw1, dw2, dw2].entries()) {   // the second dw2 accumulates onto the first
          const dmi = p.zeros(N * C, 'act')
          p.gpu.matmulBackward(dmi.g, dw.g, null, mo.g, mi.g, w.g, N, C, OC); p.cpu.matmulBackward(dmi.c, dw.c, null, mo.c, mi.c, w.c, N, C, OC)
          p.near(`dweight ${i} inside the zeroed buffer`, dw)
        }
        assert.deepEqual(memsets, [], 'weight gradients inside the zeroed buffer are overwritten: no memset')
        p.gpu.rmsnormBackward(dx.g, norm.g, nd.g, x.g, w.g, rstd.g, N, C); p.cpu.rmsnormBackward(dx.c, norm.c, nd.c, x.c, w.c, rstd.c, N, C)
        assert.deepEqual(memsets, [C * 4], 'an op that only accumulates clears just its own part')
      } finally { p.gpu.ctx.memsetZero = memset }
      p.near('norm dweight accumulated onto the cleared zeros', norm)
      // the bookkeeping: both weight gradients taken out of the range without a memset, the norm's part cleared, the
      // untouched tail still pending (p.near read only the views above)
      assert.deepEqual((grads.g as unknown as DeviceTensor).alloc.pendingZero, [{ offset: 2 * OC * C + C, length: 2 * C }])
      const tail = p.gpu.download(grads.g).subarray(2 * OC * C + C)
      assert.deepEqual([...tail], new Array(2 * C).fill(0), 'never written: zeros')
      p.near('the whole buffer', grads)
    })

    test('bf16 storage: upload rounds, copy converts both ways, zero and sums honour views', () => {
      const p = P(), data = randn(1000)
      const a = p.gpu.alloc(1000, { precision: 'compute' }), f = p.gpu.alloc(1000)
      p.gpu.upload(a, data)
      const rounded = roundToBf16(data)
      assert.deepEqual(p.gpu.download(a), rounded)
      p.gpu.copy(f, a)
      assert.deepEqual(p.gpu.download(f), rounded)
      p.gpu.upload(f, data)
      p.gpu.copy(a, f)
      assert.deepEqual(p.gpu.download(a), rounded, 'f32 -> bf16 copy rounds to nearest even like the host')
      let s = 0, q = 0
      for (const x of rounded) { s += x; q += x * x }
      assert.ok(Math.abs(p.gpu.sum(a) - s) <= 1e-9 * q, `sum ${p.gpu.sum(a)} vs ${s}`)
      assert.ok(Math.abs(p.gpu.sumSquares(a) - q) <= 1e-9 * q)
      p.gpu.zero(p.gpu.view(a, 10, 5))
      const z = p.gpu.download(a)
      assert.deepEqual([...z.subarray(9, 16)], [rounded[9], 0, 0, 0, 0, 0, rounded[15]])
    })

    // Every other convert writes to a whole tensor, scratch or a mirror (16-byte aligned); a copy into a view need not
    // be: f32 at element 1 (4 bytes in) or bf16 at 2. The 8-wide conversion would store misaligned there.
    test('copy converting f32 <-> bf16 into a view off a 16-byte boundary: values converted, nothing around it written', () => {
      const p = P(), n = 20, data = randn(n), rounded = roundToBf16(data)
      for (const to of ['f32', 'bf16'] as const) {
        const [srcPrecision, dstPrecision] = to === 'f32' ? ['compute', 'full'] as const : ['full', 'compute'] as const
        const src = p.gpu.alloc(n, { precision: srcPrecision })    // a whole allocation: aligned
        p.gpu.upload(src, data)
        for (const off of [1, 2, 3]) {
          const around = randn(n + 8), dst = p.gpu.alloc(n + 8, { precision: dstPrecision })
          p.gpu.upload(dst, around)
          p.gpu.copy(p.gpu.view(dst, off, n), src)
          const want = to === 'bf16' ? roundToBf16(around) : around
          want.set(rounded, off)
          assert.deepEqual(p.gpu.download(dst), want, `${to === 'f32' ? 'bf16 -> f32' : 'f32 -> bf16'} at element ${off}`)
        }
      }
    })
  })
}
