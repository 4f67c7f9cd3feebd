// The mixed-precision paths the model takes on CUDA, op by op against the CPU backend: activations stored in
// bf16 ({ precision: 'compute' }), parameters, gradients and statistics in f32, weights read through their bf16
// mirror (kept current: cuda-mixed-memory.ts). The CPU gets the same inputs rounded to bf16, so
// the differences are bf16 rounding of weights and outputs: 2e-2 of the tensor's largest value, plus 2e-2 relative.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Backend, Tensor } from '../../src/backend/backend.js'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { CudaBackend } from '../../src/backend/cuda/index.js'
import { roundToBf16 } from '../../src/backend/cuda/memory.js'
import { GPT } from '../../src/model/gpt.js'
import { loadGolden } from '../model/golden.js'
import { Rng } from '../../src/util/rng.js'
import { assertClose } from './compare.js'
import { withEnv } from '../helpers/env.js'

const rng = new Rng(11)
export function randn(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n)
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale
  return a
}
export function maxAbs(a: Float32Array): number { let m = 0; for (const x of a) m = Math.max(m, Math.abs(x)); return m }

/** The kernels `body` launches on `be` (its context's launch wrapped for the call). */
export function launchedKernels(be: CudaBackend, body: () => void): string[] {
  const ctx = be.ctx, launch = ctx.launch, names: string[] = []
  ctx.launch = (name, grid, block, shared, args) => { names.push(name); launch.call(ctx, name, grid, block, shared, args) }
  try { body() } finally { ctx.launch = launch }
  return names
}

/** A tensor on both backends: bf16 on the GPU ('compute') with the CPU holding the bf16-rounded values, or f32. */
export interface Both { g: Tensor; c: Tensor }

export class Pair {
  readonly gpu = new CudaBackend()
  readonly cpu: Backend = new CpuBackend()
  act(data: Float32Array): Both {
    const g = this.gpu.alloc(data.length, { precision: 'compute' }), c = this.cpu.alloc(data.length)
    this.gpu.upload(g, data)
    this.cpu.upload(c, roundToBf16(data))
    return { g, c }
  }
  full(data: Float32Array): Both {
    const g = this.gpu.alloc(data.length), c = this.cpu.alloc(data.length)
    this.gpu.upload(g, data)
    this.cpu.upload(c, data)
    return { g, c }
  }
  zeros(n: number, kind: 'act' | 'full'): Both { return kind === 'act' ? this.act(new Float32Array(n)) : this.full(new Float32Array(n)) }
  /** GPU result vs CPU result; k scales the tolerance (reason at the call). */
  near(label: string, t: Both, k = 1): void {
    const want = this.cpu.download(t.c)
    assertClose(label, this.gpu.download(t.g), want, { rtol: 2e-2 * k, atol: 2e-2 * k * Math.max(maxAbs(want), 1e-6) })
  }
}

/** One norm's backward on both backends, accumulating onto random priors (dinp stored as `dinp`), compared. */
function normBackwards(p: Pair, norm: 'rmsnorm' | 'layernorm', dinpKind: 'act' | 'full', N: number, C: number, inp: Both,
                       w: Both, dout: Both, mean: Both | null, rstd: Both): void {
  const dinp = dinpKind === 'act' ? p.act(randn(N * C)) : p.full(randn(N * C)), dw = p.full(randn(C)), db = p.full(randn(C))
  for (const side of ['g', 'c'] as const) {
    const be = side === 'g' ? p.gpu : p.cpu
    if (norm === 'rmsnorm') be.rmsnormBackward(dinp[side], dw[side], dout[side], inp[side], w[side], rstd[side], N, C)
    else be.layernormBackward(dinp[side], dw[side], db[side], dout[side], inp[side], w[side], mean![side], rstd[side], N, C)
  }
  p.near(`${norm} dinp (accumulated onto a prior)`, dinp)
  p.near(`${norm} dweight (accumulated onto a prior)`, dw)
  if (norm === 'layernorm') p.near('layernorm dbias (accumulated onto a prior)', db)
}

/** The fused residual + norm forward on both backends (res may be the a tensor), or with `unfused` residualForward and
 *  the norm's forward; returns the kernels the GPU launched. mean is unused for RMSNorm. */
function residualNormBoth(p: Pair, norm: 'rmsnorm' | 'layernorm', N: number, C: number,
                          t: { res: Both; out: Both; mean: Both; rstd: Both; a: Both; b: Both; w: Both; bias: Both },
                          opts: { unfused?: boolean } = {}): string[] {
  const run = (be: Backend, s: 'g' | 'c'): void => {
    if (opts.unfused === true) {
      be.residualForward(t.res[s], t.a[s], t.b[s], N * C)
      if (norm === 'rmsnorm') be.rmsnormForward(t.out[s], t.rstd[s], t.res[s], t.w[s], N, C, 1e-5)
      else be.layernormForward(t.out[s], t.mean[s], t.rstd[s], t.res[s], t.w[s], t.bias[s], N, C, 1e-5)
    } else if (norm === 'rmsnorm') be.residualRmsnormForward(t.res[s], t.out[s], t.rstd[s], t.a[s], t.b[s], t.w[s], N, C, 1e-5)
    else be.residualLayernormForward(t.res[s], t.out[s], t.mean[s], t.rstd[s], t.a[s], t.b[s], t.w[s], t.bias[s], N, C, 1e-5)
  }
  const ran = launchedKernels(p.gpu, () => run(p.gpu, 'g'))
  run(p.cpu, 'c')
  return ran
}

export function registerMixedPrecisionOps(): void {
  describe('cuda mixed precision (bf16 activations) against the CPU backend', () => {
    let pair: Pair | undefined
    const P = (): Pair => (pair ??= new Pair())

    test('matmul forward/backward: bf16 activations, f32 weights via the mirror, f32 and bf16 dout', () => {
      const p = P(), N = 64, C = 96, OC = 80
      const inp = p.act(randn(N * C)), w = p.full(randn(OC * C, 0.1)), bias = p.full(randn(OC)), out = p.zeros(N * OC, 'act')
      p.gpu.matmulForward(out.g, inp.g, w.g, bias.g, N, C, OC)
      p.cpu.matmulForward(out.c, inp.c, w.c, bias.c, N, C, OC)
      p.near('out', out)
      const flat = p.full(randn(OC + 3)), shifted: Both = { g: p.gpu.view(flat.g, 3, OC), c: p.cpu.view(flat.c, 3, OC) }
      p.gpu.matmulForward(out.g, inp.g, w.g, shifted.g, N, C, OC)   // a bias 12-byte aligned in f32, 6 in its bf16 mirror
      p.cpu.matmulForward(out.c, inp.c, w.c, shifted.c, N, C, OC)
      p.near('out with a misaligned bias', out)
      const inp32 = p.full(randn(N * C)), out32 = p.zeros(N * OC, 'full')   // all f32 (TF32): the 12-byte-aligned f32 bias itself
      p.gpu.matmulForward(out32.g, inp32.g, w.g, shifted.g, N, C, OC)
      p.cpu.matmulForward(out32.c, inp32.c, w.c, shifted.c, N, C, OC)
      p.near('f32 out with a misaligned f32 bias', out32)
      for (const kind of ['act', 'full'] as const) {
        const dout = kind === 'act' ? p.act(randn(N * OC)) : p.full(randn(N * OC))
        const dinp = p.zeros(N * C, 'act'), dw = p.full(randn(OC * C)), db = p.full(randn(OC))
        p.gpu.matmulBackward(dinp.g, dw.g, db.g, dout.g, inp.g, w.g, N, C, OC)
        p.cpu.matmulBackward(dinp.c, dw.c, db.c, dout.c, inp.c, w.c, N, C, OC)
        p.near(`dinp (dout ${kind})`, dinp)
        p.near(`dweight (dout ${kind}, accumulated onto a prior)`, dw)
        p.near(`dbias (dout ${kind})`, db)
      }
      // f32 inp and dout converted to bf16 side by side (a bf16 dinp asks for bf16 operands); N = 130 is no multiple
      // of the bias-gradient kernel's row groups
      const N2 = 130, inp2 = p.full(randn(N2 * C)), dout2 = p.full(randn(N2 * OC))
      const dinp2 = p.zeros(N2 * C, 'act'), dw2 = p.full(randn(OC * C)), db2 = p.full(randn(OC))
      p.gpu.matmulBackward(dinp2.g, dw2.g, db2.g, dout2.g, inp2.g, w.g, N2, C, OC)
      p.cpu.matmulBackward(dinp2.c, dw2.c, db2.c, dout2.c, inp2.c, w.c, N2, C, OC)
      p.near('dinp (f32 inp and dout, N=130)', dinp2)
      p.near('dweight (f32 inp and dout, N=130)', dw2)
      p.near('dbias (N=130)', db2)
    })

    test('matmul backward bias gradient: 16-byte loads (8 columns a lane) give the one-column path\'s bits', () => {
      // OC = 264: two column blocks of the 8-wide path, the second partial; a dout one element off a 16-byte boundary
      // takes the one-column path. Each column's sum runs in the same order on both, so the bits must agree.
      const p = P(), N = 130, C = 32, OC = 264
      const inp = p.act(randn(N * C)), w = p.full(randn(OC * C, 0.1)), values = randn(N * OC)
      for (const kind of ['act', 'full'] as const) {
        const make = (d: Float32Array): Both => kind === 'act' ? p.act(d) : p.full(d)
        const aligned = make(values), padded = make(new Float32Array([0, ...values]))
        const shifted: Both = { g: p.gpu.view(padded.g, 1, N * OC), c: p.cpu.view(padded.c, 1, N * OC) }
        const db = [p.zeros(OC, 'full'), p.zeros(OC, 'full')] as const, blocks: number[] = []
        const ctx = p.gpu.ctx, launch = ctx.launch
        ctx.launch = (name, grid, ...rest) => { if (name === 'bias_grad_partial') blocks.push(grid[0]); launch.call(ctx, name, grid, ...rest) }
        try {
          for (const [i, dout] of [aligned, shifted].entries()) {
            for (const side of ['g', 'c'] as const) {
              const be = side === 'g' ? p.gpu : p.cpu
              be.matmulBackward(null, p.zeros(OC * C, 'full')[side], db[i]![side], dout[side], inp[side], w[side], N, C, OC)
            }
          }
        } finally { ctx.launch = launch }
        assert.deepEqual(blocks, [2, 9], 'column blocks: 256 columns a block when aligned, 32 when not')
        p.near(`dbias, 8 columns a lane (dout ${kind})`, db[0])
        assert.deepEqual(p.gpu.download(db[0].g), p.gpu.download(db[1].g), `dbias, dout ${kind}: the two paths differ`)
      }
    })

    for (const C of [96, 33]) {
      test(`rmsnorm and layernorm: f32 residual in, bf16 out and dout, f32 dinp and dweight (C=${C})`, () => {
        const p = P(), N = 40
        const inp = p.full(randn(N * C, 2)), w = p.full(randn(C)), b = p.full(randn(C))
        const out = p.zeros(N * C, 'act'), mean = p.zeros(N, 'full'), rstd = p.zeros(N, 'full'), dout = p.act(randn(N * C))
        p.gpu.rmsnormForward(out.g, rstd.g, inp.g, w.g, N, C, 1e-5)
        p.cpu.rmsnormForward(out.c, rstd.c, inp.c, w.c, N, C, 1e-5)
        p.near('rmsnorm out', out)
        p.near('rmsnorm rstd', rstd, 0.01)
        normBackwards(p, 'rmsnorm', 'full', N, C, inp, w, dout, null, rstd)
        p.gpu.layernormForward(out.g, mean.g, rstd.g, inp.g, w.g, b.g, N, C, 1e-5)
        p.cpu.layernormForward(out.c, mean.c, rstd.c, inp.c, w.c, b.c, N, C, 1e-5)
        p.near('layernorm out', out)
        normBackwards(p, 'layernorm', 'full', N, C, inp, w, dout, mean, rstd)
      })
    }

    // The norm backward kernels per row width: 768 and 1024 (3 and 4 256-column chunks, 3 held in registers),
    // 520 (a partial last chunk), 1800 (8 chunks, mostly read twice), 2056 (past the register kernels: the 16-byte
    // fallback). N = 200 gives every warp several rows, so the per-warp register sums are exercised.
    for (const C of [768, 1024, 520, 1800, 2056]) {
      test(`rmsnorm and layernorm backward, bf16 but weights and statistics, several rows a warp (C=${C})`, () => {
        const p = P(), N = 200
        const inp = p.act(randn(N * C, 2)), w = p.full(randn(C)), dout = p.act(randn(N * C))
        const mean = p.full(randn(N, 0.1)), rstd = p.full(randn(N).map(x => 1 + 0.3 * Math.abs(x)))
        normBackwards(p, 'rmsnorm', 'act', N, C, inp, w, dout, null, rstd)
        normBackwards(p, 'layernorm', 'act', N, C, inp, w, dout, mean, rstd)
      })
    }

    // The backward kernels fold rows into one partial row per block, as many blocks as fit the GPU at once (2 an SM;
    // 1 for C > 1024 rows in layernorm): on a 40-SM device (the emulator's LLMTS_EMU_SMS; a real GPU has its own SMs,
    // an H100 132) 400 rows give 50 partials, more than one 32-row pass of the *_backward_finish sum.
    test('rmsnorm and layernorm backward with 50 partial rows to sum (C=768 and the odd C=33)', () => {
      const p = withEnv({ LLMTS_EMU_SMS: '40' }, () => new Pair())
      assert.ok(p.gpu.ctx.info.sms >= 25, `${p.gpu.ctx.info.sms} SMs`)
      for (const C of [768, 33]) {
        const N = 400, inp = p.act(randn(N * C, 2)), w = p.full(randn(C)), dout = p.act(randn(N * C))
        const mean = p.full(randn(N, 0.1)), rstd = p.full(randn(N).map(x => 1 + 0.3 * Math.abs(x)))
        normBackwards(p, 'rmsnorm', 'act', N, C, inp, w, dout, null, rstd)
        normBackwards(p, 'layernorm', 'act', N, C, inp, w, dout, mean, rstd)
      }
    })

    // f32 statistics that survive a large mean (the centered variance; E[x²] - m² in f32 loses it at mean 1000) and
    // RoPE at position 10^6 (angles in float64: a float angle is off by up to 0.06 rad there), f32 against the CPU
    test('layernorm of rows with mean 1000 and RoPE at position 10^6, in f32', () => {
      const p = P(), tight = (label: string, t: Both): void =>
        assertClose(label, p.gpu.download(t.g), p.cpu.download(t.c), { rtol: 1e-4, atol: 1e-4 * maxAbs(p.cpu.download(t.c)) })
      for (const C of [64, 33]) {   // the 16-byte and the scalar path
        const N = 6, inp = p.full(randn(N * C).map(v => 1000 + v)), w = p.full(randn(C)), b = p.full(randn(C))
        const out = p.zeros(N * C, 'full'), mean = p.zeros(N, 'full'), rstd = p.zeros(N, 'full')
        for (const [be, s] of [[p.gpu, 'g'], [p.cpu, 'c']] as const) {
          be.layernormForward(out[s], mean[s], rstd[s], inp[s], w[s], b[s], N, C, 1e-5)
        }
        tight(`layernorm out (C=${C})`, out); tight(`layernorm rstd (C=${C})`, rstd); tight(`layernorm mean (C=${C})`, mean)
      }
      const [B, T, NH, KVH, HS] = [1, 3, 2, 1, 64], qkv = p.full(randn(B * T * (NH + 2 * KVH) * HS)), rot = p.zeros(qkv.c.length, 'full')
      p.gpu.ropeForward(rot.g, qkv.g, B, T, NH, KVH, HS, 10000, 1_000_000)
      p.cpu.ropeForward(rot.c, qkv.c, B, T, NH, KVH, HS, 10000, 1_000_000)
      tight('rope at position 10^6', rot)
    })

    test('swiglu, gelu and the residual add with bf16 operands', () => {
      const p = P(), N = 24, H = 136, n = N * H
      const inp = p.act(randn(N * 2 * H, 2)), out = p.zeros(n, 'act'), dout = p.act(randn(n)), dinp = p.zeros(N * 2 * H, 'act')
      p.gpu.swigluForward(out.g, inp.g, N, H); p.cpu.swigluForward(out.c, inp.c, N, H)
      p.near('swiglu out', out)
      p.gpu.swigluBackward(dinp.g, dout.g, inp.g, N, H); p.cpu.swigluBackward(dinp.c, dout.c, inp.c, N, H)
      p.near('swiglu dinp', dinp)
      const x = p.act(randn(n, 3)), y = p.zeros(n, 'act'), dx = p.zeros(n, 'act')
      p.gpu.geluForward(y.g, x.g, n); p.cpu.geluForward(y.c, x.c, n)
      p.near('gelu out', y)
      p.gpu.geluBackward(dx.g, dout.g, x.g, n); p.cpu.geluBackward(dx.c, dout.c, x.c, n)
      p.near('gelu dinp', dx)
      const res = p.full(randn(n)), sum = p.zeros(n, 'full')
      p.gpu.residualForward(sum.g, res.g, y.g, n); p.cpu.residualForward(sum.c, res.c, y.c, n)
      p.near('f32 + bf16 residual', sum)
      p.gpu.residualForward(res.g, res.g, y.g, n); p.cpu.residualForward(res.c, res.c, y.c, n)
      p.near('residual in place', res)
    })

    // The fused residual + norm as the model calls it: f32 residual a, bf16 projection output b, f32 res and
    // statistics, bf16 out; also in place (res = a, as decoding does) and into a bf16 res (whose rounded values the
    // norm must read). C=768 runs the fused kernel, C=33 (odd) the two unfused ones. On the GPU the fused kernel must
    // equal the unfused pair bit for bit (same sums, same rounding); against the CPU the differences are bf16 rounding.
    for (const C of [768, 33]) {
      test(`residual + rmsnorm / layernorm forward: f32 a + bf16 b, f32 or bf16 res, bf16 out, also in place (C=${C})`, () => {
        const p = P(), N = 40, w = p.full(randn(C)), bias = p.full(randn(C)), b = p.act(randn(N * C))
        for (const norm of ['rmsnorm', 'layernorm'] as const) {
          const want = C === 768 ? [`residual_${norm}_forward_c3`] : ['residual_forward', `${norm}_forward`]
          for (const res of ['f32', 'bf16', 'a'] as const) {
            const outputs = (): { res: Both; out: Both; mean: Both; rstd: Both } => ({
              res: p.zeros(N * C, res === 'bf16' ? 'act' : 'full'), out: p.zeros(N * C, 'act'),
              mean: p.zeros(N, 'full'), rstd: p.zeros(N, 'full') })
            const a = p.full(randn(N * C, 2)), t = { ...outputs(), a, b, w, bias }
            if (res === 'a') t.res = a
            assert.deepEqual(residualNormBoth(p, norm, N, C, t), want)
            p.near(`${norm} res (res ${res})`, t.res)
            p.near(`${norm} out (res ${res})`, t.out)
            const statK = res === 'bf16' ? 1 : 0.01   // f32 statistics, of bf16-rounded values when res is bf16 (CPU: f32 res)
            p.near(`${norm} rstd (res ${res})`, t.rstd, statK)
            if (norm === 'layernorm') p.near(`${norm} mean (res ${res})`, t.mean, statK)
            if (res === 'a') continue
            const u = { ...outputs(), a, b, w, bias }
            residualNormBoth(p, norm, N, C, u, { unfused: true })
            for (const k of ['res', 'out', 'mean', 'rstd'] as const) {
              const label: string = `GPU ${norm} ${k} (res ${res}): fused differs from unfused`
              assert.deepEqual(p.gpu.download(t[k].g), p.gpu.download(u[k].g), label)
            }
          }
        }
      })
    }

    test('embeddings: f32 residual out, f32 gradient of repeated tokens', () => {
      const p = P(), B = 2, T = 5, C = 64, Vp = 16
      const wte = p.full(randn(Vp * C)), wpe = p.full(randn(8 * C)), out = p.zeros(B * T * C, 'full')
      const tokens = new Int32Array([1, 4, 1, 0, 4, 4, 15, 1, 2, 3]), tg = p.gpu.allocInt(B * T), tc = p.cpu.allocInt(B * T)
      p.gpu.uploadInt(tg, tokens); p.cpu.uploadInt(tc, tokens)
      p.gpu.encoderForward(out.g, tg, wte.g, wpe.g, B, T, C, 2); p.cpu.encoderForward(out.c, tc, wte.c, wpe.c, B, T, C, 2)
      p.near('encoded', out, 0.001)
      const dout = p.full(randn(B * T * C)), dwte = p.full(randn(Vp * C)), dwpe = p.full(randn(8 * C))
      p.gpu.encoderBackward(dwte.g, dwpe.g, dout.g, tg, B, T, C); p.cpu.encoderBackward(dwte.c, dwpe.c, dout.c, tc, B, T, C)
      p.near('dwte', dwte, 0.001)
      p.near('dwpe', dwpe, 0.001)
      // a bf16 dwte: the compare-and-swap atomic add on the 32-bit word holding two elements, which threads of
      // neighbouring channels (and, C odd, of neighbouring tokens' rows) update at once. Distinct tokens: bf16 adds
      // into one element in a thread order the GPU does not fix would round differently from run to run
      const C2 = 5, dout2 = p.full(randn(B * T * C2)), dwte2 = p.act(randn(Vp * C2))
      const distinct = new Int32Array([3, 7, 1, 0, 12, 5, 15, 2, 9, 4]), dg = p.gpu.allocInt(B * T), dc = p.cpu.allocInt(B * T)
      p.gpu.uploadInt(dg, distinct); p.cpu.uploadInt(dc, distinct)
      p.gpu.encoderBackward(dwte2.g, null, dout2.g, dg, B, T, C2); p.cpu.encoderBackward(dwte2.c, null, dout2.c, dc, B, T, C2)
      p.near('bf16 dwte (compare-and-swap adds)', dwte2)
    })

    // An out-of-range token id (negative or >= Vp) gives a NaN row (the CUDA kernels' contract; the CPU backend
    // refuses it) on both the 8-wide (C=8) and the scalar path, and adds nothing to dwte
    test('embeddings: a token outside 0..Vp-1 gives a NaN row and no gradient', () => {
      const be = P().gpu, Vp = 16, tokens = new Int32Array([0, Vp, -1, Vp + 3, 15]), t = be.allocInt(5)
      be.uploadInt(t, tokens)
      for (const C of [5, 8]) {
        const table = randn(Vp * C), wte = be.alloc(Vp * C), out = be.alloc(5 * C), dwte = be.alloc(Vp * C)
        be.upload(wte, table)
        be.encoderForward(out, t, wte, null, 1, 5, C, 0)
        const rows = be.download(out)
        for (const [r, tok] of tokens.entries()) {
          const want = tok >= 0 && tok < Vp ? [...table.subarray(tok * C, tok * C + C)] : new Array(C).fill(NaN)
          assert.deepEqual([...rows.subarray(r * C, r * C + C)], want, `C=${C} row ${r} (token ${tok})`)
        }
        be.upload(dwte, new Float32Array(Vp * C))
        be.upload(out, new Float32Array(5 * C).fill(1))
        be.encoderBackward(dwte, null, out, t, 1, 5, C)
        const grad = be.download(dwte), want = new Float32Array(Vp * C)
        want.fill(1, 0, C); want.fill(1, 15 * C, 16 * C)
        assert.deepEqual(grad, want, `C=${C}: only tokens 0 and 15 receive gradient`)
      }
    })

    test('recompute: norm outputs and MLP activations recomputed in backward give the same loss and gradients', () => {
      for (const name of ['variant', 'gpt2']) {
        const g = loadGolden(name), be = P().gpu
        const run = (recompute: boolean): [number, Float32Array] => {
          const m = new GPT(be, g.config, { maxBatch: g.B, maxSeqLen: g.T, recompute })
          m.setParams(g.params)
          m.zeroGrad()
          const loss = m.forward(g.tokens, g.targets, g.B, g.T, 1)
          m.backward(1)
          return [loss, m.getGrads()]
        }
        const [[l0, g0], [l1, g1]] = [run(false), run(true)]
        assert.equal(l1, l0, `${name}: loss`)
        assertClose(`${name}: gradients with recompute`, g1, g0, { rtol: 1e-6, atol: 1e-6 * maxAbs(g0) })
      }
    })
  })
}
