// The sequence ops on CUDA in mixed precision, against the CPU backend and against each other: RoPE (both launch
// paths, in place and not, accumulating or into a lazily zeroed buffer), attention (tensor-core kernels, the
// atomic-dQ backward and the reference kernels) and the classifier (the staged and two-pass kernels, fused or
// not). Same conventions as cuda-mixed.ts, whose Pair and helpers it shares.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { RopeArgs } from '../../src/backend/backend.js'
import { CudaBackend } from '../../src/backend/cuda/index.js'
import { bf16ToF32, f32ToBf16 } from '../../src/backend/cuda/memory.js'
import { assertClose } from './compare.js'
import { product, wgmmaDiagnosis } from './wgmma-diagnosis.js'
import { launchedKernels, maxAbs, Pair, randn, type Both } from './cuda-mixed.js'

export function registerMixedSequenceOps(): void {
  describe('cuda sequence ops (rope, attention, classifier) in mixed precision', () => {
    let pair: Pair | undefined
    const P = (): Pair => (pair ??= new Pair())

    for (const [B, T, NH, KVH, HS] of [[2, 70, 4, 2, 64], [1, 40, 2, 1, 128], [2, 33, 6, 2, 32]] as const) {
      test(`rope + attention forward/backward in bf16 (B=${B} T=${T} NH=${NH} KVH=${KVH} HS=${HS})`, () => {
        const p = P(), QKV = (NH + 2 * KVH) * HS, n = B * T * QKV
        const qkv = p.act(randn(n)), out = p.zeros(B * T * NH * HS, 'act'), lse = p.zeros(B * NH * T, 'full')
        p.gpu.ropeForward(qkv.g, qkv.g, B, T, NH, KVH, HS, 10000, 0)
        p.cpu.ropeForward(qkv.c, qkv.c, B, T, NH, KVH, HS, 10000, 0)
        p.near('rope in place', qkv)
        const other = p.zeros(n, 'act')   // same shape, another theta: its own cos/sin table
        p.gpu.ropeForward(other.g, qkv.g, B, T, NH, KVH, HS, 500000, 0)
        p.cpu.ropeForward(other.c, qkv.c, B, T, NH, KVH, HS, 500000, 0)
        p.near('rope with theta 500000 after 10000', other)
        p.cpu.upload(qkv.c, p.gpu.download(qkv.g))   // continue from identical (bf16) inputs
        p.gpu.attentionForward(out.g, lse.g, qkv.g, B, T, NH, KVH, HS)
        p.cpu.attentionForward(out.c, lse.c, qkv.c, B, T, NH, KVH, HS)
        p.near('attention out', out)
        p.near('attention lse', lse, 0.1)
        p.cpu.upload(out.c, p.gpu.download(out.g))
        const dout = p.act(randn(B * T * NH * HS)), dqkv = p.zeros(n, 'act')
        p.gpu.attentionBackward(dqkv.g, dout.g, qkv.g, out.g, lse.g, B, T, NH, KVH, HS)
        p.cpu.attentionBackward(dqkv.c, dout.c, qkv.c, out.c, lse.c, B, T, NH, KVH, HS)
        p.near('attention dqkv', dqkv, 2)   // ×2: dS = P·(dP - D) differences, summed over a K/V group
        const dpre = p.zeros(n, 'act')
        p.cpu.upload(dqkv.c, p.gpu.download(dqkv.g))
        p.gpu.ropeBackward(dpre.g, dqkv.g, B, T, NH, KVH, HS, 10000, 0)
        p.cpu.ropeBackward(dpre.c, dqkv.c, B, T, NH, KVH, HS, 10000, 0)
        p.near('rope backward', dpre)
      })
    }

    // Both paths of rope.cu's rope_rotate (one launch that also writes v). Vector path (8 pairs a thread) needs
    // HS/2 % 8 == 0 and 16-byte-aligned pointers: HS=64 at offset 0 takes it (allocations are 256-byte aligned);
    // HS=6 (HS/2 = 3) takes the scalar path, and so does HS=64 at offset 2 (4 bytes in bf16, 8 in f32: misaligned).
    // (Checked by breaking rope_apply<8>: only the HS=64 offset 0 case failed.) Outputs start as large garbage, so an
    // element the kernel skips (v, or anything in the fresh case) fails; the priors catch a path that overwrites.
    for (const [NH, KVH, HS, off] of [[4, 2, 64, 0], [6, 3, 6, 0], [4, 2, 64, 2]] as const) {
      test(`rope out of place at posStart 5, backward onto a prior and into a zeroed buffer (HS=${HS} offset ${off})`, () => {
        const p = P(), B = 2, T = 37, n = B * T * (NH + 2 * KVH) * HS
        for (const kind of ['act', 'full'] as const) {
          const make = (scale = 1): Both => {
            const t = kind === 'act' ? p.act(randn(off + n, scale)) : p.full(randn(off + n, scale))
            return { g: p.gpu.view(t.g, off, n), c: p.cpu.view(t.c, off, n) }
          }
          const qkv = make(), out = make(100), dout = make(), dqkv = make(), fresh = make(100)
          for (const be of [p.gpu, p.cpu]) {
            const side = be === p.gpu ? 'g' : 'c', calls = [
              () => be.ropeForward(out[side], qkv[side], B, T, NH, KVH, HS, 10000, 5),
              () => be.ropeBackward(dqkv[side], dout[side], B, T, NH, KVH, HS, 10000, 5),
              () => { be.zero(fresh[side]); be.ropeBackward(fresh[side], dout[side], B, T, NH, KVH, HS, 10000, 5) }]
            for (const call of calls) {
              if (be !== p.gpu) { call(); continue }
              const ran = launchedKernels(p.gpu, call).filter(name => name !== 'rope_table')   // the table: once per shape
              assert.deepEqual(ran, ['rope_rotate'], 'each rope call is one launch, v included')
            }
          }
          p.near(`${kind}: forward out of place`, out)
          p.near(`${kind}: forward leaves its input alone`, qkv)
          p.near(`${kind}: backward accumulated onto a prior`, dqkv)
          p.near(`${kind}: backward into a zeroed buffer`, fresh)
        }
      })
    }

    // The tensor-core kernels load q|k|v, dout and store out, dqkv 16 bytes at a time (cp.async, vector stores): a bf16
    // tensor off a 16-byte boundary (a view at an odd element) must send the op to the reference kernels. q|k|v, out,
    // dout and dqkv misaligned in turn, against the CPU (the emulator aborts on a misaligned 16-byte access, as a GPU
    // faults); out is read only by the reference dot kernel in the backward, so it keeps the tensor-core backward.
    test('attention on bf16 views off a 16-byte boundary takes the reference kernels (each tensor in turn)', () => {
      const p = P(), B = 1, T = 40, NH = 2, KVH = 1, HS = 64, n = B * T * (NH + 2 * KVH) * HS, m = B * T * NH * HS
      for (const odd of ['qkv', 'out', 'dout', 'dqkv'] as const) {
        const make = (name: string, count: number): Both => {
          const off = name === odd ? 1 : 0, t = p.act(randn(off + count))
          return { g: p.gpu.view(t.g, off, count), c: p.cpu.view(t.c, off, count) }
        }
        const qkv = make('qkv', n), out = make('out', m), lse = p.zeros(B * NH * T, 'full')
        const dout = make('dout', m), dqkv = make('dqkv', n)
        p.gpu.zero(dqkv.g); p.cpu.zero(dqkv.c)
        const fwd = launchedKernels(p.gpu, () => p.gpu.attentionForward(out.g, lse.g, qkv.g, B, T, NH, KVH, HS))
        p.cpu.attentionForward(out.c, lse.c, qkv.c, B, T, NH, KVH, HS)
        p.near(`attention out (${odd} misaligned)`, out)
        p.cpu.upload(out.c, p.gpu.download(out.g))
        const bwd = launchedKernels(p.gpu, () => p.gpu.attentionBackward(dqkv.g, dout.g, qkv.g, out.g, lse.g, B, T, NH, KVH, HS))
        p.cpu.attentionBackward(dqkv.c, dout.c, qkv.c, out.c, lse.c, B, T, NH, KVH, HS)
        p.near(`attention dqkv (${odd} misaligned)`, dqkv, 2)
        const tensorCores = (names: string[]): boolean => names.some(name => name.startsWith('attention_mma'))
        assert.equal(tensorCores(fwd), odd === 'dout' || odd === 'dqkv', `forward kernels with ${odd} misaligned: ${fwd.join(', ')}`)
        assert.equal(tensorCores(bwd), odd === 'out', `backward kernels with ${odd} misaligned: ${bwd.join(', ')}`)
      }
    })

    // The layouts the wgmma kernels rely on, one product apart (attention_wgmma_check): on a GPU, a failure here says
    // which of them the tensor cores read otherwise (A or D fragments: both fail; a descriptor: only its major-ness).
    test('wgmma: one 64x64x64 bf16 product, B K-major and N-major, equals the float64 product', (t) => {
      const be = new CudaBackend({ attention: 'wgmma' })
      if (be.ctx.compileTarget.arch !== 'sm_90a') { t.skip(`the kernels are built for ${be.ctx.compileTarget.arch}, not sm_90a`); return }
      const ctx = be.ctx, n = 64 * 64, a = f32ToBf16(randn(n)), b = f32ToBf16(randn(n))
      const A = ctx.alloc(n, 'bf16'), Bt = ctx.alloc(n, 'bf16'), D = ctx.alloc(n, 'f32')
      ctx.htod(A.ptr, a)
      ctx.htod(Bt.ptr, b)
      const [af, bf] = [bf16ToF32(a), bf16ToF32(b)]
      for (const transB of [0, 1]) {
        ctx.htod(D.ptr, new Float32Array(n).fill(NaN))   // a kernel built without wgmma writes nothing
        ctx.launch('attention_wgmma_check', [1, 1, 1], [128, 1, 1], 64 * 72 * 2 + 8192 + 1024, [D.ptr, A.ptr, Bt.ptr, transB])
        const d = new Float32Array(n), want = product(af, bf, transB)
        ctx.dtoh(d, D.ptr)
        assert.ok(!d.every(Number.isNaN), 'attention_wgmma_check wrote nothing: its body was compiled out ' +
          '(__CUDA_ARCH_FEAT_SM90_ALL undefined for this sm_90a build?), not a layout error')
        // f32 sums of exact bf16 products (magnitudes ~8, ulps ~1e-6); a wrong layout is off by O(1), and the message
        // then says which broken assumption reproduces what the GPU wrote
        try {
          assertClose(`wgmma product, B ${transB ? 'N-major' : 'K-major'}`, d, want, { rtol: 1e-5, atol: 1e-3 })
        } catch (e) {
          throw new Error(`${(e as Error).message}\n${wgmmaDiagnosis(d, af, bf, transB)}`)
        }
      }
    })

    // T=130: the third block has two real rows; T=200: a warp's rows end mid-tile (3·64 + 8). '4-blocks' (HS=64) runs
    // the backward kernels built for 128 registers, which take a tile's keys (dQ) and queries (dK/dV) in halves of 32;
    // 'wgmma-whole' the wgmma dK/dV kernel on whole query tiles where 'wgmma' takes them in halves.
    for (const [B, T, NH, KVH, HS] of [[2, 130, 6, 2, 64], [1, 70, 4, 1, 128], [1, 64, 2, 2, 64], [1, 200, 2, 1, 64]] as const) {
      test(`tensor-core attention equals the reference kernels (B=${B} T=${T} NH=${NH} KVH=${KVH} HS=${HS})`, () => {
        const ref = new CudaBackend({ attention: 'reference' }), n = B * T * (NH + 2 * KVH) * HS
        const data = randn(n), dO = randn(B * T * NH * HS)
        const run = (be: CudaBackend, dqkvStart: 'prior' | 'zeroed', rope?: RopeArgs): Float32Array[] => {
          const qkv = be.alloc(n, { precision: 'compute' }), out = be.alloc(B * T * NH * HS, { precision: 'compute' })
          const lse = be.alloc(B * NH * T), dout = be.alloc(B * T * NH * HS, { precision: 'compute' })
          const dqkv = be.alloc(n, { precision: 'compute' })
          be.upload(qkv, data)
          be.upload(dout, dO)
          // a prior (the backward accumulates), or garbage lazily zeroed (the backward must overwrite it)
          be.upload(dqkv, new Float32Array(n).fill(dqkvStart === 'prior' ? 0.25 : 1000))
          if (dqkvStart === 'zeroed') be.zero(dqkv)
          const fwd = launchedKernels(be, () => be.attentionForward(out, lse, qkv, B, T, NH, KVH, HS))
          // 'wgmma' runs its kernels where they are built for sm_90a (the emulator, a Hopper GPU), elsewhere auto's
          const wg = (be.opts.attention === 'wgmma' || be.opts.attention === 'wgmma-whole') && HS === 64 &&
            be.ctx.compileTarget.arch === 'sm_90a'
          if (be !== ref) assert.deepEqual(fwd, [wg ? 'attention_wgmma_forward_d64' : `attention_mma_forward_d${HS}`])
          const bwd = launchedKernels(be, () => be.attentionBackward(dqkv, dout, qkv, out, lse, B, T, NH, KVH, HS, rope))
          if (be !== ref && be.opts.attention !== 'atomic-dq') {
            const b4 = be.opts.attention === '4-blocks' && HS === 64 ? 'b4_' : ''
            const kind = wg ? 'wgmma' : 'mma', whole = wg && be.opts.attention === 'wgmma-whole' ? 'w64_' : ''
            assert.deepEqual(bwd.filter(name => name.startsWith('attention_mma') || name.startsWith('attention_wgmma')),
              [`attention_${kind}_backward_dq_${b4}d${HS}`, `attention_${kind}_backward_dkv_${b4}${whole}d${HS}`])
          }
          return [be.download(out), be.download(lse), be.download(dqkv)]
        }
        // with rope: dq and dk rotated back as the tensor-core kernels store them, against the reference kernels into a
        // scratch followed by the rope kernel (each checked against the CPU elsewhere)
        for (const rope of [undefined, { theta: 10000, posStart: 0 }, { theta: 500, posStart: 7 }]) {
          for (const start of ['prior', 'zeroed'] as const) {
            const auto = run(new CudaBackend({ attention: 'auto' }), start, rope), reference = run(ref, start, rope)
            const wgmma = run(new CudaBackend({ attention: 'wgmma' }), start, rope)
            for (const mode of ['auto', 'atomic-dq', '4-blocks', 'wgmma', 'wgmma-whole'] as const) {
              const a = mode === 'auto' ? auto : mode === 'wgmma' ? wgmma : run(new CudaBackend({ attention: mode }), start, rope)
              const what = `tensor cores, ${mode}, ${start} dqkv, ${rope === undefined ? 'no rope' : `rope ${rope.theta}@${rope.posStart}`}`
              for (const [i, name] of ['out', 'lse', 'dqkv'].entries()) {
                // both round outputs to bf16 (2^-9) after f32 sums in different orders
                assertClose(`${name} (${what}, vs reference)`, a[i]!, reference[i]!, { rtol: 2e-2, atol: 2e-2 * maxAbs(reference[i]!) })
              }
              // the same products summed in the same order: the same bits
              if (mode === '4-blocks') assert.deepEqual(a, auto, `${what}: differs from auto`)
              if (mode === 'wgmma-whole') assert.deepEqual(a, wgmma, `${what}: differs from wgmma`)
            }
          }
        }
      })
    }

    /**
     * The classifier on both backends from the same bf16 logits (row 0's target raised by 12, so p ≈ 1 there): unfused
     * (probabilities, then dlogits in place) and fused (dlogits written by the forward), each forward checked to run
     * `kernel` on the GPU. Losses are log Σ + max - logit in f32 on both sides: 1e-4 absolute (-log of a bf16
     * probability would be off by up to 2^-8), probabilities and dlogits bf16-rounded.
     */
    const checkClassifier = (N: number, V: number, Vp: number, targets: Int32Array, kernel: string): void => {
      const p = P(), data = randn(N * Vp, 3)
      data[targets[0]!] = data[targets[0]!]! + 12
      const tg = p.gpu.allocInt(N), tc = p.cpu.allocInt(N), lossTol = { rtol: 0, atol: 1e-4 }
      p.gpu.uploadInt(tg, targets); p.cpu.uploadInt(tc, targets)
      for (const dlossScale of [undefined, 0.25]) {
        const logits = p.act(data), losses = p.zeros(N, 'full'), mode = dlossScale === undefined ? '' : ' (fused classifier)'
        const ran = launchedKernels(p.gpu, () => p.gpu.crossEntropyForward(losses.g, logits.g, logits.g, tg, N, V, Vp, dlossScale))
        assert.deepEqual(ran, [kernel])
        p.cpu.crossEntropyForward(losses.c, logits.c, logits.c, tc, N, V, Vp, dlossScale)
        assertClose(`losses${mode}`, p.gpu.download(losses.g), p.cpu.download(losses.c), lossTol)
        if (dlossScale !== undefined) { p.near('dlogits written by the forward (fused classifier)', logits); continue }
        p.near('probabilities', logits)
        p.cpu.upload(logits.c, p.gpu.download(logits.g))
        p.gpu.crossEntropyBackward(logits.g, logits.g, tg, 0.25, N, V, Vp)
        p.cpu.crossEntropyBackward(logits.c, logits.c, tc, 0.25, N, V, Vp)
        p.near('dlogits', logits)
      }
    }

    test('classifier: bf16 logits turned into probabilities and then dlogits in place, f32 losses', () => {
      checkClassifier(6, 1000, 1024, new Int32Array([3, 999, -1, 0, 512, 3]), 'crossentropy_forward_staged')
    })

    test('classifier at the GPT-2 vocabulary (V=50257, Vp=50304): the row staged once in shared memory', () => {
      const V = 50257, Vp = 50304
      checkClassifier(4, V, Vp, new Int32Array([7, -1, V - 1, 31337]), 'crossentropy_forward_staged')
      // a target in the padding (>= V): NaN loss, dlogits = softmax·scale on real columns, 0 on the padded ones
      const p = P(), logits = p.act(randn(Vp, 3)), losses = p.zeros(1, 'full'), tg = p.gpu.allocInt(1)
      p.gpu.uploadInt(tg, new Int32Array([V + 1]))
      p.gpu.crossEntropyForward(losses.g, logits.g, logits.g, tg, 1, V, Vp, 0.25)
      assert.ok(Number.isNaN(p.gpu.download(losses.g)[0]))
      const d = p.gpu.download(logits.g)
      assert.deepEqual([...d.subarray(V)], new Array(Vp - V).fill(0))
      assert.ok(Math.abs(d.reduce((a, x) => a + x, 0) - 0.25) < 1e-3, 'real columns sum to scale')
    })

    // The two-pass kernel (crossentropy_forward): its scalar path (Vp not a multiple of 8), and in f32 a target in the
    // padding, fused: padded columns 0, as the staged kernel and the backward write them. The backward must not trust
    // the padded columns of its input (0.5 there): 0 on padded columns and ignored rows, on both of its paths.
    test('classifier: the two-pass kernel\'s scalar path, a target in the padding, padded probabilities', () => {
      checkClassifier(3, 5, 7, new Int32Array([2, -1, 4]), 'crossentropy_forward')
      const p = P(), V = 10, Vp = 16, logits = p.full(randn(Vp, 3)), losses = p.zeros(1, 'full'), tg = p.gpu.allocInt(1)
      p.gpu.uploadInt(tg, new Int32Array([12]))
      assert.deepEqual(launchedKernels(p.gpu, () => p.gpu.crossEntropyForward(losses.g, logits.g, logits.g, tg, 1, V, Vp, 0.25)),
        ['crossentropy_forward'])
      assert.ok(Number.isNaN(p.gpu.download(losses.g)[0]))
      const d = p.gpu.download(logits.g)
      assert.deepEqual([...d.subarray(V)], new Array(Vp - V).fill(0))
      assert.ok(Math.abs(d.reduce((a, x) => a + x, 0) - 0.25) < 1e-6, 'real columns sum to scale')
      for (const W of [16, 15]) {
        const N = 4, targets = new Int32Array([3, -1, 9, 0]), probs = new Float32Array(N * W).fill(0.5)
        for (let r = 0; r < N; r++) probs.set(new Float32Array(V).fill(0.1), r * W)
        const pr = p.full(probs), dl = p.full(randn(N * W, 100)), tgN = p.gpu.allocInt(N), tc = p.cpu.allocInt(N)
        p.gpu.uploadInt(tgN, targets); p.cpu.uploadInt(tc, targets)
        p.gpu.crossEntropyBackward(dl.g, pr.g, tgN, 0.5, N, V, W)
        p.cpu.crossEntropyBackward(dl.c, pr.c, tc, 0.5, N, V, W)
        const got = p.gpu.download(dl.g)
        assertClose(`dlogits (Vp=${W})`, got, p.cpu.download(dl.c), { rtol: 0, atol: 1e-7 })
        for (let r = 0; r < N; r++) assert.deepEqual([...got.subarray(r * W + V, r * W + W)], new Array(W - V).fill(0), `row ${r} padding`)
        assert.deepEqual([...got.subarray(W, 2 * W)], new Array(W).fill(0), 'the ignored row')
      }
    })

  })
}
