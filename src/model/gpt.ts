// GPT: forward and backward of GPT-2 and the variant, orchestrated op by op over the Backend contract (no autograd):
// pre-norm blocks, a final norm, then logits over the padded vocabulary computed in row chunks, so the (N,Vp) logits
// never exist whole. Backward walks the layers in reverse under the accumulate (+=) convention. Inference with a
// key/value cache is decode.ts's (the GPT's decode methods delegate to it).

import type { Backend, IntTensor, Tensor } from '../backend/backend.js'
import { headSize, type ModelConfig } from '../config.js'
import { InputError } from '../util/errors.js'
import { Activations, rowWidths, stripPadding, type ActViews, type BlockBuffers } from './activations.js'
import { CacheDecoder, type KVCache, type PackedGroup } from './decode.js'
import { initParams, ParamLayout } from './params.js'
import { paramViews, type BlockParams, type ModelParams } from './views.js'

export type { KVCache, PackedGroup } from './decode.js'

/** Activation buffers sized for B <= maxBatch, T <= maxSeqLen. recompute: keep each layer's norm outputs and MLP
 *  activation only while that layer runs and recompute them in backward (cheap pointwise work; on variant-124m
 *  1.2 GiB less at B=16, T=1024, in exchange for one more norm forward per norm and activation forward per layer).
 *  mode 'inference' (evaluation): no backward, so one layer's activations shared by all layers and no gradient
 *  buffer (gpt2-124m at B=4, T=1024: 2.4 GB of per-layer activations less); the forward is the same ops on the
 *  same values, its losses bit-identical to training mode's. */
interface GptOptions {
  maxBatch: number
  maxSeqLen: number
  recompute?: boolean
  mode?: 'train' | 'inference'   // default 'train'
  classifierRows?: number   // rows per classifier chunk (default: a logits buffer within LOGITS_BUDGET: 2^28 floats, 2^25 in inference)
}

/** State of the last forward, needed by backward and the accessors. */
interface LastForward {
  B: number; T: number; numValid: number; hasTargets: boolean; backwardDone: boolean
  fusedScale: number | null   // forward's backwardScale: the classifier's backward already ran (grads, dln)
}

/** A norm's output, statistics and weights: where a block's last residual add also normalizes (null: it only adds). */
export interface NormAt { out: Tensor; mean: Tensor | null; rstd: Tensor; w: Tensor; b: Tensor | null }

/** Where the attention of a block's rows [r0, r0 + B·T) reads: their own (B,T) rows (kv null: training, r0 = 0), or
 *  a cache (B,Tmax,QKV) that the B sequences join at posStart (decode). share (B = 1): the new keys and values are
 *  copied to the cache's sequences 1..share-1 too, a prefix those sequences continue (HellaSwag's context). A block
 *  runs its matmuls over all segments' rows at once and attention segment by segment. */
export interface Segment { r0: number; B: number; T: number; posStart: number; kv: Tensor | null; Tmax: number; share?: number }

/** Rows [r0, r0 + n) of a forward's N rows, the i-th classifier chunk. */
interface Chunk { i: number; r0: number; n: number }

export class GPT {
  readonly layout: ParamLayout
  readonly params: Tensor       // (layout.total) flat, padded vocabulary rows included
  private readonly p: ModelParams
  private readonly gradBuf: { flat: Tensor; views: ModelParams } | null   // null in inference mode
  private readonly acts: Activations
  private readonly tokens: IntTensor    // (maxBatch·maxSeqLen)
  private readonly targets: IntTensor[] // per classifier chunk (logitRows)
  private readonly hostTokens: Int32Array
  private readonly decoder: CacheDecoder
  private last: LastForward | null = null

  constructor(readonly backend: Backend, readonly config: ModelConfig, readonly opts: GptOptions) {
    const { maxBatch, maxSeqLen } = opts
    if (!(Number.isSafeInteger(maxBatch) && maxBatch >= 1 && Number.isSafeInteger(maxSeqLen) && maxSeqLen >= 1)) {
      throw new InputError(`gpt: maxBatch and maxSeqLen must be positive integers, got ${maxBatch} and ${maxSeqLen}`)
    }
    if (maxSeqLen > config.contextLength) {
      throw new InputError(`gpt: sequence length ${maxSeqLen} exceeds the model's context length ${config.contextLength}`)
    }
    this.layout = new ParamLayout(config)
    this.params = backend.alloc(this.layout.total)
    this.p = paramViews(backend, this.layout, this.params)
    const training = (opts.mode ?? 'train') === 'train'
    const grads = training ? backend.alloc(this.layout.total) : null
    this.gradBuf = grads === null ? null : { flat: grads, views: paramViews(backend, this.layout, grads) }
    const maxN = maxBatch * maxSeqLen
    this.acts = new Activations(backend, config, maxN, opts)
    this.tokens = backend.allocInt(maxN)
    this.targets = Array.from({ length: Math.ceil(maxN / this.acts.logitRows) }, () => backend.allocInt(this.acts.logitRows))
    this.hostTokens = new Int32Array(maxN)
    this.decoder = new CacheDecoder({ backend, config, params: this.p, blockForward: this.blockForward.bind(this),
      normForward: this.normForward.bind(this), checkTokens: this.checkTokens.bind(this) })
  }

  /** Fills params from a seed (initParams) and uploads. */
  initWeights(seed: number): void {
    const flat = new Float32Array(this.layout.total)
    initParams(this.layout, flat, seed)
    this.backend.upload(this.params, flat)
  }

  /** Uploads a full flat parameter vector (layout.total). */
  setParams(flat: Float32Array): void {
    if (flat.length !== this.layout.total) {
      throw new InputError(`gpt: parameter vector has ${flat.length} floats, the model needs ${this.layout.total}`)
    }
    this.backend.upload(this.params, flat)
  }

  getParams(): Float32Array { return this.backend.download(this.params) }
  /** (layout.total) accumulates across backward() calls until zeroGrad(); a training-mode model's only. */
  get grads(): Tensor { return this.training('grads').flat }
  private get g(): ModelParams { return this.training('backward').views }

  getGrads(): Float32Array { return this.backend.download(this.grads) }
  zeroGrad(): void { this.backend.zero(this.grads) }

  /** inputs, targets: (B,T) token ids; targets may be null, entries < 0 are ignored. Returns the mean loss over
   *  non-ignored targets (NaN without targets, or when every target is ignored). Keeps activations for backward.
   *  Without targets the logits are left for lastLogits() to compute. backwardScale (training): the scale the
   *  following backward() will be called with; the classifier's backward then runs here, chunk by chunk, right
   *  after each chunk's loss (its gradients ACCUMULATE into grads like backward()'s). */
  forward(inputs: Int32Array, targets: Int32Array | null, B: number, T: number, backwardScale?: number): number {
    this.checkBatch(B, T)
    if (backwardScale !== undefined) this.training('forward(..., backwardScale)')
    const N = B * T, c = this.config, be = this.backend
    this.hostTokens.set(this.checkTokens(inputs, N, 'inputs'))
    be.uploadInt(this.tokens, this.hostTokens)
    let numValid = 0
    if (targets !== null) {
      const t = this.checkTokens(targets, N, 'targets')
      for (let i = 0; i < N; i++) if (t[i]! >= 0) numValid++
      for (const ch of this.classifierChunks(N)) be.uploadInt(this.targets[ch.i]!, t.subarray(ch.r0, ch.r0 + ch.n))
    }
    const a = this.acts.views(B, T)
    be.encoderForward(a.encoded, this.tokens, this.p.wte, this.p.wpe, B, T, c.channels, 0)
    // each block's last residual add also computes the next norm (the next block's norm1, or the final norm)
    const lnf: NormAt = { out: a.lnf, mean: a.lnfMean, rstd: a.lnfRstd, w: this.p.lnfw, b: this.p.lnfb }
    const norm1 = (l: number): NormAt => {
      const x = a.blocks[l]!, p = this.p.blocks[l]!
      return { out: x.ln1, mean: x.ln1Mean, rstd: x.ln1Rstd, w: p.ln1w, b: p.ln1b }
    }
    const first = c.layers > 0 ? norm1(0) : lnf
    this.normForward(first.out, first.mean, first.rstd, a.encoded, first.w, first.b, N)
    let residual = a.encoded   // (N,C)
    for (let l = 0; l < c.layers; l++) {
      const next = l + 1 < c.layers ? norm1(l + 1) : lnf
      this.blockForward(this.p.blocks[l]!, a.blocks[l]!, residual, N, [{ r0: 0, B, T, posStart: 0, kv: null, Tmax: T }], next)
      residual = a.blocks[l]!.res3
    }
    const fused = targets !== null && backwardScale !== undefined
    this.last = { B, T, numValid, hasTargets: targets !== null, backwardDone: false, fusedScale: fused ? backwardScale : null }
    if (targets === null) return NaN
    const dlossScale = !fused ? undefined : numValid > 0 ? backwardScale / numValid : 0   // the loss is a mean over valid targets
    for (const ch of this.classifierChunks(N)) this.classifierChunk(a, ch, dlossScale)
    return numValid > 0 ? be.sum(a.losses) / numValid : NaN
  }

  /** The classifier of one chunk: logits, then losses; with dlossScale also dlogits and their backward
   *  (dln rows of the chunk overwritten, dweight of the output matrix accumulated), all before the next chunk
   *  reuses the logits buffer. */
  private classifierChunk(a: ActViews, ch: Chunk, dlossScale?: number): void {
    const be = this.backend, C = this.config.channels, V = this.config.vocabSize, Vp = this.config.paddedVocabSize
    const lnf = be.view(a.lnf, ch.r0 * C, ch.n * C), logits = be.view(a.logits, 0, ch.n * Vp)
    be.matmulForward(logits, lnf, this.p.out, null, ch.n, C, Vp)
    be.crossEntropyForward(be.view(a.losses, ch.r0, ch.n), logits, logits, this.targets[ch.i]!, ch.n, V, Vp, dlossScale)
    if (dlossScale === undefined) return
    const dln = be.view(this.acts.gradViews(a.B * a.T).dln, ch.r0 * C, ch.n * C)
    be.zero(dln)
    be.matmulBackward(dln, this.g.out, null, logits, lnf, this.p.out, ch.n, C, Vp)
  }

  /** N rows in the fewest equal chunks that fit the logits buffer. */
  private classifierChunks(N: number): Chunk[] {
    const count = Math.ceil(N / this.acts.logitRows), rows = Math.ceil(N / count), out: Chunk[] = []
    for (let i = 0; i < count; i++) out.push({ i, r0: i * rows, n: Math.min(rows, N - i * rows) })
    return out
  }

  /** Per-position losses of the last forward, (B,T) (0 at ignored positions). */
  lastLosses(): Float32Array {
    const last = this.requireLast('lastLosses')
    if (!last.hasTargets) throw new Error('gpt: lastLosses() needs a forward with targets')
    return this.backend.download(this.acts.views(last.B, last.T).losses)
  }

  /** Logits of the last forward for the real vocabulary, (B,T,V), computed from the final norm's output (in the
   *  logits buffer after a forward without targets when they fit it, else in a temporary). For tests, sampling. */
  lastLogits(): Float32Array {
    const last = this.requireLast('lastLogits')
    const a = this.acts.views(last.B, last.T), c = this.config, N = last.B * last.T
    let padded: Float32Array
    if (!last.hasTargets && N <= this.acts.logitRows) {   // the buffer holds nothing backward needs
      this.backend.matmulForward(a.logits, a.lnf, this.p.out, null, N, c.channels, c.paddedVocabSize)
      padded = this.backend.download(a.logits)
    } else {
      const tmp = this.backend.alloc(N * c.paddedVocabSize)   // (N,Vp)
      this.backend.matmulForward(tmp, a.lnf, this.p.out, null, N, c.channels, c.paddedVocabSize)
      padded = this.backend.download(tmp)
      this.backend.free?.(tmp)
    }
    return stripPadding(padded, N, c.vocabSize, c.paddedVocabSize)
  }

  /** Backward of the last forward; accumulates d(scale · meanLoss)/dparam into grads (scale = 1/gradAccum). */
  backward(scale: number): void {
    const last = this.requireLast('backward')
    this.training('backward()')
    if (!last.hasTargets) throw new Error('gpt: backward() needs a forward with targets')
    if (last.backwardDone) throw new Error('gpt: backward() called twice for one forward (the probabilities were consumed)')
    last.backwardDone = true
    const { B, T } = last, N = B * T, c = this.config, be = this.backend
    const a = this.acts.views(B, T), d = this.acts.gradViews(N)
    if (last.fusedScale === null) this.classifierBackward(a, scale / Math.max(last.numValid, 1))   // loss = mean over valid targets
    else if (scale !== last.fusedScale) {
      throw new Error(`gpt: backward(${scale}) after forward(..., backwardScale = ${last.fusedScale}): the scales must match`)
    }
    be.zero(d.dres)
    const top = c.layers > 0 ? a.blocks[c.layers - 1]!.res3 : a.encoded
    this.normBackward(d.dres, this.g.lnfw, this.g.lnfb, d.dln, top, this.p.lnfw, a.lnfMean, a.lnfRstd, N)
    for (let l = c.layers - 1; l >= 0; l--) this.blockBackward(l, a, B, T)
    be.encoderBackward(this.g.wte, this.g.wpe, d.dres, this.tokens, B, T, c.channels)
  }

  /** The classifier's backward after a forward without backwardScale: from the probabilities the logits buffer
   *  holds when one chunk covered the batch, else each chunk's logits recomputed (same values) and differentiated. */
  private classifierBackward(a: ActViews, dlossScale: number): void {
    const be = this.backend, c = this.config, N = a.B * a.T, chunks = this.classifierChunks(N)
    if (chunks.length > 1) { for (const ch of chunks) this.classifierChunk(a, ch, dlossScale); return }
    const dln = this.acts.gradViews(N).dln
    be.crossEntropyBackward(a.logits, a.logits, this.targets[0]!, dlossScale, N, c.vocabSize, c.paddedVocabSize)
    be.zero(dln)
    be.matmulBackward(dln, this.g.out, null, a.logits, a.lnf, this.p.out, N, c.channels, c.paddedVocabSize)
  }

  // ---- inference with a key/value cache: decode.ts (a cache has buffers of its own) ---------------------

  createCache(B: number, maxLen: number): KVCache { return this.decoder.createCache(B, maxLen) }
  releaseCache(cache: KVCache): void { this.decoder.releaseCache(cache) }
  decode(cache: KVCache, tokens: Int32Array, B: number, Tq: number): Float32Array { return this.decoder.decode(cache, tokens, B, Tq) }
  decodeLosses(cache: KVCache, tokens: Int32Array, targets: Int32Array, B: number, Tq: number): Float32Array {
    return this.decoder.decodeLosses(cache, tokens, targets, B, Tq)
  }
  decodeShared(cache: KVCache, tokens: Int32Array, Tq: number): void { this.decoder.decodeShared(cache, tokens, Tq) }
  createPool(kvRows: number, rows: number): KVCache { return this.decoder.createPool(kvRows, rows) }
  decodePacked(pool: KVCache, groups: PackedGroup[]): Float32Array[] { return this.decoder.decodePacked(pool, groups) }

  // ---- one transformer block -------------------------------------------------------------------------

  /** x = residual + attn(norm1(residual)); out = x + mlp(norm2(x)), then next = norm(out) when given (fused with
   *  the add), over N rows. On entry x.ln1 already holds norm1(residual) (the previous block's `next`). Attention runs
   *  per segment (see Segment); with a cache, the rope'd q|k|v rows are appended to it and it is read (no lse kept). */
  private blockForward(p: BlockParams, x: BlockBuffers, residual: Tensor, N: number, segments: Segment[],
                       next: NormAt | null): void {
    const c = this.config, be = this.backend, C = c.channels, { QKV, AH, FC, H } = rowWidths(c)
    be.matmulForward(x.qkv, x.ln1, p.qkvw, p.qkvb, N, C, QKV)
    for (const s of segments) this.attendSegment(x, s, N)
    be.matmulForward(x.scratch, x.atty, p.projw, p.projb, N, AH, C)
    this.residualNormForward(x.res2, residual, x.scratch, { out: x.ln2, mean: x.ln2Mean, rstd: x.ln2Rstd, w: p.ln2w, b: p.ln2b }, N)
    be.matmulForward(x.fch, x.ln2, p.fcw, p.fcb, N, C, FC)
    if (c.mlp === 'swiglu') be.swigluForward(x.fchAct, x.fch, N, H)
    else be.geluForward(x.fchAct, x.fch, N * H)
    be.matmulForward(x.scratch, x.fchAct, p.mlpProjw, p.mlpProjb, N, H, C)
    if (next === null) be.residualForward(x.res3, x.res2, x.scratch, N * C)
    else this.residualNormForward(x.res3, x.res2, x.scratch, next, N)
  }

  /** RoPE and attention of one segment's rows of x.qkv into its rows of x.atty. */
  private attendSegment(x: BlockBuffers, s: Segment, N: number): void {
    const c = this.config, be = this.backend, NH = c.heads, KVH = c.kvHeads, HS = headSize(c), { QKV, AH } = rowWidths(c)
    const n = s.B * s.T, whole = s.r0 === 0 && n === N   // views only where a segment is part of the rows
    const qkv = whole ? x.qkv : be.view(x.qkv, s.r0 * QKV, n * QKV), atty = whole ? x.atty : be.view(x.atty, s.r0 * AH, n * AH)
    if (c.positions === 'rope') be.ropeForward(qkv, qkv, s.B, s.T, NH, KVH, HS, c.ropeTheta, s.posStart)
    if (s.kv === null) {
      if (!whole) throw new Error('gpt: attention without a cache covers the whole batch')
      be.attentionForward(atty, x.lse!, qkv, s.B, s.T, NH, KVH, HS)
      return
    }
    if (s.share !== undefined && s.B !== 1) throw new Error(`gpt: a shared prefix is one sequence, got B=${s.B}`)
    const rows = s.T * QKV
    for (let b = 0; b < (s.share ?? s.B); b++) {   // shared: sequence 0's rows go to every sequence
      be.copy(be.view(s.kv, (b * s.Tmax + s.posStart) * QKV, rows), be.view(qkv, (s.share === undefined ? b : 0) * rows, rows))
    }
    be.attentionInference(atty, s.kv, s.B, s.T, s.posStart, s.Tmax, NH, KVH, HS)
  }

  /** On entry d.dres holds dLoss/d(block output); on exit dLoss/d(block input). Backward ops accumulate, so each
   *  activation-gradient buffer is zeroed before its first use. */
  private blockBackward(l: number, a: ActViews, B: number, T: number): void {
    const c = this.config, be = this.backend, N = B * T, C = c.channels
    const NH = c.heads, KVH = c.kvHeads, HS = headSize(c), { QKV, AH, FC, H } = rowWidths(c)
    const p = this.p.blocks[l]!, g = this.g.blocks[l]!, x = a.blocks[l]!, d = this.acts.gradViews(N)
    const input = l === 0 ? a.encoded : a.blocks[l - 1]!.res3   // (N,C)
    if (this.opts.recompute === true) {   // the shared buffers hold the last layer's: recompute this layer's
      this.normForward(x.ln1, x.ln1Mean, x.ln1Rstd, input, p.ln1w, p.ln1b, N)
      this.normForward(x.ln2, x.ln2Mean, x.ln2Rstd, x.res2, p.ln2w, p.ln2b, N)
      if (c.mlp === 'swiglu') be.swigluForward(x.fchAct, x.fch, N, H)
      else be.geluForward(x.fchAct, x.fch, N * H)
    }
    // MLP branch: res3 = res2 + proj(act(fc(norm2(res2))))
    be.zero(d.dfchAct)
    be.matmulBackward(d.dfchAct, g.mlpProjw, g.mlpProjb, d.dres, x.fchAct, p.mlpProjw, N, H, C)
    be.zero(d.dfch)
    if (c.mlp === 'swiglu') be.swigluBackward(d.dfch, d.dfchAct, x.fch, N, H)
    else be.geluBackward(d.dfch, d.dfchAct, x.fch, N * H)
    be.zero(d.dln)
    be.matmulBackward(d.dln, g.fcw, g.fcb, d.dfch, x.ln2, p.fcw, N, C, FC)
    this.normBackward(d.dres, g.ln2w, g.ln2b, d.dln, x.res2, p.ln2w, x.ln2Mean, x.ln2Rstd, N)
    // attention branch: res2 = input + proj(attention(rope(qkv(norm1(input)))))
    be.zero(d.datty)
    be.matmulBackward(d.datty, g.projw, g.projb, d.dres, x.atty, p.projw, N, AH, C)
    be.zero(d.dqkv)   // the gradient before RoPE (ropeBackward folded into the attention backward)
    const rope = c.positions === 'rope' ? { theta: c.ropeTheta, posStart: 0 } : undefined
    be.attentionBackward(d.dqkv, d.datty, x.qkv, x.atty, x.lse!, B, T, NH, KVH, HS, rope)
    be.zero(d.dln)
    be.matmulBackward(d.dln, g.qkvw, g.qkvb, d.dqkv, x.ln1, p.qkvw, N, C, QKV)
    this.normBackward(d.dres, g.ln1w, g.ln1b, d.dln, input, p.ln1w, x.ln1Mean, x.ln1Rstd, N)
  }

  // ---- helpers ---------------------------------------------------------------------------------------

  // out, inp: (N,C)   mean, rstd: (N)   w, b: (C); b and mean are null for RMSNorm
  private normForward(out: Tensor, mean: Tensor | null, rstd: Tensor, inp: Tensor, w: Tensor, b: Tensor | null, N: number): void {
    const c = this.config
    if (c.norm === 'layernorm') this.backend.layernormForward(out, mean!, rstd, inp, w, b!, N, c.channels, c.normEps)
    else this.backend.rmsnormForward(out, rstd, inp, w, N, c.channels, c.normEps)
  }

  // res, a, b: (N,C): res = a + b, then n.out = norm(res) with n's weights and statistics
  private residualNormForward(res: Tensor, a: Tensor, b: Tensor, n: NormAt, N: number): void {
    const c = this.config
    if (c.norm === 'layernorm') this.backend.residualLayernormForward(res, n.out, n.mean!, n.rstd, a, b, n.w, n.b!, N, c.channels, c.normEps)
    else this.backend.residualRmsnormForward(res, n.out, n.rstd, a, b, n.w, N, c.channels, c.normEps)
  }

  // dinp, dout, inp: (N,C)   dw, db, w: (C)   mean, rstd: (N)
  private normBackward(dinp: Tensor, dw: Tensor, db: Tensor | null, dout: Tensor, inp: Tensor, w: Tensor,
                       mean: Tensor | null, rstd: Tensor, N: number): void {
    const C = this.config.channels
    if (this.config.norm === 'layernorm') this.backend.layernormBackward(dinp, dw, db!, dout, inp, w, mean!, rstd, N, C)
    else this.backend.rmsnormBackward(dinp, dw, dout, inp, w, rstd, N, C)
  }

  private checkBatch(B: number, T: number): void {
    const { maxBatch, maxSeqLen } = this.opts
    if (!(Number.isSafeInteger(B) && B >= 1 && B <= maxBatch && Number.isSafeInteger(T) && T >= 1 && T <= maxSeqLen)) {
      throw new InputError(`gpt: batch ${B}×${T} is outside the buffers' ${maxBatch}×${maxSeqLen} (raise maxBatch/maxSeqLen)`)
    }
  }

  /** Token ids must be in [0, V) (targets may also be negative = ignored). */
  private checkTokens(ids: Int32Array, N: number, what: 'inputs' | 'targets' | 'tokens'): Int32Array {
    if (ids.length < N) throw new InputError(`gpt: ${what} has ${ids.length} ids, expected ${N}`)
    const V = this.config.vocabSize, lo = what === 'targets' ? -Infinity : 0
    for (let i = 0; i < N; i++) {
      const t = ids[i]!
      if (t >= V || t < lo) throw new InputError(`gpt: ${what}[${i}] = ${t} is outside the vocabulary [0, ${V})`)
    }
    return ids.subarray(0, N)
  }

  private training(what: string): { flat: Tensor; views: ModelParams } {
    if (this.gradBuf === null) throw new Error(`gpt: ${what} of a model built for inference (it keeps no gradients)`)
    return this.gradBuf
  }

  private requireLast(what: string): LastForward {
    if (this.last === null) throw new Error(`gpt: ${what}() before any forward()`)
    return this.last
  }
}
