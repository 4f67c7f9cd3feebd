// Launchers of the per-row ops: embeddings, layernorm, rmsnorm, the residual add fused with either norm, matmul
// (cuBLASLt + the bias-gradient column sum), GELU, SwiGLU, residual. Each checks lengths like the CPU backend,
// picks the 16-byte path when shapes and pointers allow, and marks what it wrote. Matmul precision: bf16 operands
// when any tensor involved is stored in bf16 (weights through their mirror), otherwise fp32 operands (TF32 tensor
// cores unless turned off).

import type { IntTensor, Tensor } from '../backend.js'
import { BLOCK, gridFor, type Kit } from './kit.js'
import type { DeviceTensor } from './memory.js'

const ROWS_PER_BLOCK = BLOCK / 32   // warp-per-row kernels

// out: (B,T,C)   tokens: (B,T)   wte: (Vp,C)   wpe: (maxT,C) or null
export function encoderForward(k: Kit, out_: Tensor, tokens_: IntTensor, wte_: Tensor, wpe_: Tensor | null,
                               B: number, T: number, C: number, posStart: number): void {
  const op = 'encoderForward', BT = B * T
  const out = k.dev(op, 'out', out_, BT * C), tokens = k.dev(op, 'tokens', tokens_, BT), wte = k.dev(op, 'wte', wte_)
  const wpe = k.devOrNull(op, 'wpe', wpe_)
  if (wpe !== null && (posStart + T) * C > wpe.length) {
    throw new Error(`encoderForward: positions up to ${posStart + T} exceed the position table (${wpe.length / C} rows)`)
  }
  const vec = C % 8 === 0 ? k.aligned(out, wte, wpe) : 0
  k.launch('encoder_forward', gridFor(BT * Math.ceil(C / 8)), [BLOCK, 1, 1], 0,
    [out.ptr, tokens.ptr, wte.ptr, k.ptr(wpe), BT, T, C, Math.floor(wte.length / C), posStart, k.mask(out, wte, wpe), vec])
  k.wrote(out)
}

// dwte: (Vp,C) +=   dwpe: (maxT,C) += or null   dout: (B,T,C)   tokens: (B,T)
export function encoderBackward(k: Kit, dwte_: Tensor, dwpe_: Tensor | null, dout_: Tensor, tokens_: IntTensor,
                                B: number, T: number, C: number): void {
  const op = 'encoderBackward', BT = B * T
  const dwte = k.dev(op, 'dwte', dwte_), dwpe = k.devOrNull(op, 'dwpe', dwpe_, T * C)
  const dout = k.dev(op, 'dout', dout_, BT * C), tokens = k.dev(op, 'tokens', tokens_, BT)
  k.launch('encoder_backward_wte', gridFor(BT * C), [BLOCK, 1, 1], 0,
    [dwte.ptr, dout.ptr, tokens.ptr, BT, C, Math.floor(dwte.length / C), k.mask(dwte, dout)])
  if (dwpe !== null) k.launch('encoder_backward_wpe', gridFor(T * C), [BLOCK, 1, 1], 0, [dwpe.ptr, dout.ptr, B, T, C, k.mask(dwpe, dout)])
  k.wrote(dwte, dwpe)
}

// inp, out: (N,C)   mean, rstd: (N)   weight, bias: (C)
export function layernormForward(k: Kit, out_: Tensor, mean_: Tensor, rstd_: Tensor, inp_: Tensor, weight_: Tensor,
                                 bias_: Tensor, N: number, C: number, eps: number): void {
  const op = 'layernormForward'
  const out = k.dev(op, 'out', out_, N * C), mean = k.dev(op, 'mean', mean_, N), rstd = k.dev(op, 'rstd', rstd_, N)
  const inp = k.dev(op, 'inp', inp_, N * C), w = k.dev(op, 'weight', weight_, C), b = k.dev(op, 'bias', bias_, C)
  const vec = C % 8 === 0 ? k.aligned(out, inp, w, b) : 0
  k.launch('layernorm_forward', gridFor(N, ROWS_PER_BLOCK), [BLOCK, 1, 1], 0,
    [out.ptr, mean.ptr, rstd.ptr, inp.ptr, w.ptr, b.ptr, N, C, eps, k.mask(out, mean, rstd, inp, w, b), vec])
  k.wrote(out, mean, rstd)
}

/** The norm backward kernel for a row width: its 256-column chunks (1..8, each lane's sums in registers) on the
 *  16-byte path, 0 for the fallback with shared-memory atomics (odd or misaligned rows, or wider than 2048). */
function normChunks(C: number, vec: number): number {
  const chunks = Math.ceil(C / 256)
  return vec === 1 && chunks <= 8 ? chunks : 0
}

/** Blocks of a norm backward kernel: the blocks that fit on the GPU at once (its __launch_bounds__: 2 per SM, 1
 *  for layernorm's widest), no more (a second partial wave costs more than it balances), each folding many rows
 *  into one partial row for the *_backward_finish kernel to sum. */
function normBlocks(k: Kit, N: number, perSm: number): number {
  return Math.max(1, Math.min(Math.ceil(N / ROWS_PER_BLOCK), perSm * k.ctx.info.sms))
}

/** dst (width) += the column sums of partial (G, ld) starting at column `col`. */
function addPartials(k: Kit, dst: DeviceTensor, partial: number, G: number, ld: number, col: number, width: number): void {
  k.launch('reduce_partials', gridFor(width), [BLOCK, 1, 1], 0, [dst.ptr, partial + col * 4, G, ld, width, k.mask(dst)])
}

// dinp: (N,C) +=   dweight, dbias: (C) +=   dout, inp: (N,C)   weight: (C)   mean, rstd: (N)
export function layernormBackward(k: Kit, dinp_: Tensor, dweight_: Tensor, dbias_: Tensor, dout_: Tensor, inp_: Tensor,
                                  weight_: Tensor, mean_: Tensor, rstd_: Tensor, N: number, C: number): void {
  const op = 'layernormBackward'
  const dinp = k.dev(op, 'dinp', dinp_, N * C), dw = k.dev(op, 'dweight', dweight_, C), db = k.dev(op, 'dbias', dbias_, C)
  const dout = k.dev(op, 'dout', dout_, N * C), inp = k.dev(op, 'inp', inp_, N * C), w = k.dev(op, 'weight', weight_, C)
  const mean = k.dev(op, 'mean', mean_, N), rstd = k.dev(op, 'rstd', rstd_, N)
  const vec = C % 8 === 0 ? k.aligned(dinp, dout, inp, w) : 0, chunks = normChunks(C, vec)
  const G = normBlocks(k, N, chunks > 4 ? 1 : 2), partial = k.ctx.scratch('norm-partial', G * 2 * C * 4)
  const args = [dinp.ptr, partial, dout.ptr, inp.ptr, w.ptr, mean.ptr, rstd.ptr, N, C, k.mask(dinp, dout, inp, w, mean, rstd)]
  if (chunks > 0) k.launch(`layernorm_backward_c${chunks}`, [G, 1, 1], [BLOCK, 1, 1], C * 4, args)
  else k.launch('layernorm_backward', [G, 1, 1], [BLOCK, 1, 1], 2 * C * 4, [...args, vec])
  k.launch('layernorm_backward_finish', [Math.ceil(2 * C / 8), 1, 1], [8, 32, 1], 0, [dw.ptr, db.ptr, partial, G, C, k.mask(dw, db)])
  k.wrote(dinp, dw, db)
}

// inp, out: (N,C)   weight: (C)   rstd: (N)
export function rmsnormForward(k: Kit, out_: Tensor, rstd_: Tensor, inp_: Tensor, weight_: Tensor, N: number, C: number,
                               eps: number): void {
  const op = 'rmsnormForward'
  const out = k.dev(op, 'out', out_, N * C), rstd = k.dev(op, 'rstd', rstd_, N)
  const inp = k.dev(op, 'inp', inp_, N * C), w = k.dev(op, 'weight', weight_, C)
  const vec = C % 8 === 0 ? k.aligned(out, inp, w) : 0
  k.launch('rmsnorm_forward', gridFor(N, ROWS_PER_BLOCK), [BLOCK, 1, 1], 0,
    [out.ptr, rstd.ptr, inp.ptr, w.ptr, N, C, eps, k.mask(out, rstd, inp, w), vec])
  k.wrote(out, rstd)
}

// dinp: (N,C) +=   dweight: (C) +=   dout, inp: (N,C)   weight: (C)   rstd: (N)
export function rmsnormBackward(k: Kit, dinp_: Tensor, dweight_: Tensor, dout_: Tensor, inp_: Tensor, weight_: Tensor,
                                rstd_: Tensor, N: number, C: number): void {
  const op = 'rmsnormBackward'
  const dinp = k.dev(op, 'dinp', dinp_, N * C), dw = k.dev(op, 'dweight', dweight_, C), dout = k.dev(op, 'dout', dout_, N * C)
  const inp = k.dev(op, 'inp', inp_, N * C), w = k.dev(op, 'weight', weight_, C), rstd = k.dev(op, 'rstd', rstd_, N)
  const vec = C % 8 === 0 ? k.aligned(dinp, dout, inp, w) : 0, chunks = normChunks(C, vec)
  const G = normBlocks(k, N, 2), partial = k.ctx.scratch('norm-partial', G * C * 4)
  const args = [dinp.ptr, partial, dout.ptr, inp.ptr, w.ptr, rstd.ptr, N, C, k.mask(dinp, dout, inp, w, rstd)]
  if (chunks > 0) k.launch(`rmsnorm_backward_c${chunks}`, [G, 1, 1], [BLOCK, 1, 1], C * 4, args)
  else k.launch('rmsnorm_backward', [G, 1, 1], [BLOCK, 1, 1], C * 4, [...args, vec])
  k.launch('rmsnorm_backward_finish', [Math.ceil(C / 8), 1, 1], [8, 32, 1], 0, [dw.ptr, partial, G, C, k.mask(dw)])
  k.wrote(dinp, dw)
}

// res, out, a, b: (N,C)   weight: (C)   rstd: (N);  res = a + b, out = rmsnorm(res); res may alias a or b
export function residualRmsnormForward(k: Kit, res_: Tensor, out_: Tensor, rstd_: Tensor, a_: Tensor, b_: Tensor,
                                       weight_: Tensor, N: number, C: number, eps: number): void {
  const op = 'residualRmsnormForward'
  const res = k.dev(op, 'res', res_, N * C), out = k.dev(op, 'out', out_, N * C), rstd = k.dev(op, 'rstd', rstd_, N)
  const a = k.dev(op, 'a', a_, N * C), b = k.dev(op, 'b', b_, N * C), w = k.dev(op, 'weight', weight_, C)
  const chunks = C % 8 === 0 ? normChunks(C, k.aligned(res, out, a, b, w)) : 0
  if (chunks === 0) {   // odd, misaligned or wider than 2048: the two unfused kernels
    residualForward(k, res_, a_, b_, N * C)
    rmsnormForward(k, out_, rstd_, res_, weight_, N, C, eps)
    return
  }
  k.launch(`residual_rmsnorm_forward_c${chunks}`, gridFor(N, ROWS_PER_BLOCK), [BLOCK, 1, 1], 0,
    [res.ptr, out.ptr, rstd.ptr, a.ptr, b.ptr, w.ptr, N, C, eps, k.mask(res, out, rstd, a, b, w)])
  k.wrote(res, out, rstd)
}

// res, out, a, b: (N,C)   weight, bias: (C)   mean, rstd: (N);  res = a + b, out = layernorm(res); res may alias a or b
export function residualLayernormForward(k: Kit, res_: Tensor, out_: Tensor, mean_: Tensor, rstd_: Tensor,
                                         a_: Tensor, b_: Tensor, weight_: Tensor, bias_: Tensor,
                                         N: number, C: number, eps: number): void {
  const op = 'residualLayernormForward'
  const res = k.dev(op, 'res', res_, N * C), out = k.dev(op, 'out', out_, N * C)
  const mean = k.dev(op, 'mean', mean_, N), rstd = k.dev(op, 'rstd', rstd_, N)
  const a = k.dev(op, 'a', a_, N * C), b = k.dev(op, 'b', b_, N * C)
  const w = k.dev(op, 'weight', weight_, C), bias = k.dev(op, 'bias', bias_, C)
  const chunks = C % 8 === 0 ? normChunks(C, k.aligned(res, out, a, b, w, bias)) : 0
  if (chunks === 0) {
    residualForward(k, res_, a_, b_, N * C)
    layernormForward(k, out_, mean_, rstd_, res_, weight_, bias_, N, C, eps)
    return
  }
  k.launch(`residual_layernorm_forward_c${chunks}`, gridFor(N, ROWS_PER_BLOCK), [BLOCK, 1, 1], 0,
    [res.ptr, out.ptr, mean.ptr, rstd.ptr, a.ptr, b.ptr, w.ptr, bias.ptr, N, C, eps,
      k.mask(res, out, mean, rstd, a, b, w, bias)])
  k.wrote(res, out, mean, rstd)
}

/** bf16 GEMM operands when any of these tensors is stored in bf16, fp32 otherwise. */
function operandType(...ts: (DeviceTensor | null)[]): 'f32' | 'bf16' {
  return ts.some(t => t !== null && t.dtype === 'bf16') ? 'bf16' : 'f32'
}

// out: (N,OC) = inp: (N,C) · weight: (OC,C)ᵀ + bias: (OC) or null.  Column-major: out (OC,N) = Wᵀ·inp.
export function matmulForward(k: Kit, out_: Tensor, inp_: Tensor, weight_: Tensor, bias_: Tensor | null,
                              N: number, C: number, OC: number): void {
  const op = 'matmulForward'
  const out = k.dev(op, 'out', out_, N * OC), inp = k.dev(op, 'inp', inp_, N * C), w = k.dev(op, 'weight', weight_, OC * C)
  const bias = k.devOrNull(op, 'bias', bias_, OC)
  const t = operandType(out, inp, w)
  let biasPtr = bias === null ? 0 : out.dtype === 'bf16' ? k.operand(bias, 'bf16', 'weight') : k.operand(bias, 'f32', 'mm-bias')
  if (biasPtr % 16 !== 0) {   // cuBLASLt's bias epilogue faults on a bias less than 16-byte aligned: an aligned copy
    const bytes = OC * (out.dtype === 'bf16' ? 2 : 4), aligned = k.ctx.scratch('mm-bias-aligned', bytes)
    k.ctx.dtod(aligned, biasPtr, bytes)
    biasPtr = aligned
  }
  k.ctx.lt.run({ transA: true, transB: false, m: OC, n: N, k: C,
    a: { ptr: k.operand(w, t, 'weight'), dtype: t }, lda: C,
    b: { ptr: k.operand(inp, t, 'mm-inp'), dtype: t }, ldb: C,
    d: { ptr: out.ptr, dtype: out.dtype as 'f32' | 'bf16' }, ldd: OC,
    accumulate: false, bias: bias === null ? null : { ptr: biasPtr, dtype: out.dtype as 'f32' | 'bf16' } })
  k.wrote(out)
}

// dinp: (N,C) += (= when freshly zeroed) or null   dweight: (OC,C) += (= when freshly zeroed)   dbias: (OC) += or null
// dout: (N,OC)   inp: (N,C)   weight: (OC,C)
export function matmulBackward(k: Kit, dinp_: Tensor | null, dweight_: Tensor, dbias_: Tensor | null, dout_: Tensor,
                               inp_: Tensor, weight_: Tensor, N: number, C: number, OC: number): void {
  const op = 'matmulBackward'
  const db = k.devOrNull(op, 'dbias', dbias_, OC), dout = k.dev(op, 'dout', dout_, N * OC)
  const inp = k.dev(op, 'inp', inp_, N * C), w = k.dev(op, 'weight', weight_, OC * C)
  const acc = dinp_ === null ? null : k.accumulator(op, 'dinp', dinp_, N * C), dinp = acc?.d ?? null
  const { d: dw, fresh: dwFresh } = k.accumulator(op, 'dweight', dweight_, OC * C)   // after zeroGrad: overwritten
  const t = operandType(dinp, dout, inp, w)
  const dO = { ptr: k.operand(dout, t, 'mm-dout'), dtype: t }
  if (dinp !== null) {   // dinp (C,N) += W (C,OC) · dout (OC,N)
    k.ctx.lt.run({ transA: false, transB: false, m: C, n: N, k: OC, a: { ptr: k.operand(w, t, 'weight'), dtype: t }, lda: C,
      b: dO, ldb: OC, d: { ptr: dinp.ptr, dtype: dinp.dtype as 'f32' | 'bf16' }, ldd: C, accumulate: !acc!.fresh, bias: null })
  }
  // dW (C,OC) += inp (C,N) · dout (OC,N)ᵀ
  k.ctx.lt.run({ transA: false, transB: true, m: C, n: OC, k: N, a: { ptr: k.operand(inp, t, 'mm-inp'), dtype: t }, lda: C,
    b: dO, ldb: OC, d: { ptr: dw.ptr, dtype: dw.dtype as 'f32' | 'bf16' }, ldd: C, accumulate: !dwFresh, bias: null })
  if (db !== null) {
    const G = Math.max(1, Math.min(Math.ceil(N / 64), 256)), rows = Math.ceil(N / G)
    const partial = k.ctx.scratch('bias-partial', G * OC * 4)
    const vec = OC % 8 === 0 ? k.aligned(dout) : 0   // 16-byte loads: 8 columns a lane, 256 a block
    k.launch('bias_grad_partial', [Math.ceil(OC / (vec ? 256 : 32)), G, 1], [32, 8, 1], 0,
      [partial, dout.ptr, N, OC, rows, k.mask(dout), vec])
    addPartials(k, db, partial, G, OC, 0, OC)
  }
  k.wrote(dinp, dw, db)
}

// out, inp: (n)
export function geluForward(k: Kit, out_: Tensor, inp_: Tensor, n: number): void {
  const out = k.dev('geluForward', 'out', out_, n), inp = k.dev('geluForward', 'inp', inp_, n)
  k.launch('gelu_forward', gridFor(Math.ceil(n / 8)), [BLOCK, 1, 1], 0, [out.ptr, inp.ptr, n, k.mask(out, inp), k.aligned(out, inp)])
  k.wrote(out)
}

// dinp: (n) += (= when freshly zeroed)   dout, inp: (n)
export function geluBackward(k: Kit, dinp_: Tensor, dout_: Tensor, inp_: Tensor, n: number): void {
  const op = 'geluBackward'
  const dout = k.dev(op, 'dout', dout_, n), inp = k.dev(op, 'inp', inp_, n)
  const { d: dinp, fresh } = k.accumulator(op, 'dinp', dinp_, n)
  k.launch('gelu_backward', gridFor(Math.ceil(n / 8)), [BLOCK, 1, 1], 0,
    [dinp.ptr, dout.ptr, inp.ptr, n, fresh ? 0 : 1, k.mask(dinp, dout, inp), k.aligned(dinp, dout, inp)])
  k.wrote(dinp)
}

// out: (N,H)   inp: (N,2H)
export function swigluForward(k: Kit, out_: Tensor, inp_: Tensor, N: number, H: number): void {
  const out = k.dev('swigluForward', 'out', out_, N * H), inp = k.dev('swigluForward', 'inp', inp_, N * 2 * H)
  const vec = H % 8 === 0 ? k.aligned(out, inp) : 0
  k.launch('swiglu_forward', gridFor(N * Math.ceil(H / 8)), [BLOCK, 1, 1], 0, [out.ptr, inp.ptr, N, H, k.mask(out, inp), vec])
  k.wrote(out)
}

// dinp: (N,2H) += (= when freshly zeroed)   dout: (N,H)   inp: (N,2H)
export function swigluBackward(k: Kit, dinp_: Tensor, dout_: Tensor, inp_: Tensor, N: number, H: number): void {
  const op = 'swigluBackward'
  const dout = k.dev(op, 'dout', dout_, N * H), inp = k.dev(op, 'inp', inp_, N * 2 * H)
  const { d: dinp, fresh } = k.accumulator(op, 'dinp', dinp_, N * 2 * H)
  const vec = H % 8 === 0 ? k.aligned(dinp, dout, inp) : 0
  k.launch('swiglu_backward', gridFor(N * Math.ceil(H / 8)), [BLOCK, 1, 1], 0,
    [dinp.ptr, dout.ptr, inp.ptr, N, H, fresh ? 0 : 1, k.mask(dinp, dout, inp), vec])
  k.wrote(dinp)
}

// out, a, b: (n); out may alias a or b
export function residualForward(k: Kit, out_: Tensor, a_: Tensor, b_: Tensor, n: number): void {
  const op = 'residualForward'
  const out = k.dev(op, 'out', out_, n), a = k.dev(op, 'a', a_, n), b = k.dev(op, 'b', b_, n)
  k.launch('residual_forward', gridFor(Math.ceil(n / 8)), [BLOCK, 1, 1], 0, [out.ptr, a.ptr, b.ptr, n, k.mask(out, a, b), k.aligned(out, a, b)])
  k.wrote(out)
}
