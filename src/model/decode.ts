// Inference with a key/value cache: B sequences run incrementally over a GPT's weights, each layer's rope'd q|k|v
// rows kept per position so new tokens attend to the cache instead of recomputing the prefix. The GPT delegates its
// createCache/decode/decodeLosses/decodeShared here; a cache has buffers of its own, none of the training ones.

import type { Backend, IntTensor, Tensor } from '../backend/backend.js'
import type { ModelConfig } from '../config.js'
import { InputError } from '../util/errors.js'
import { rowWidths, stripPadding, type BlockBuffers } from './activations.js'
import type { BlockAt, NormAt } from './gpt.js'
import type { BlockParams, ModelParams } from './views.js'

export interface KVCache { readonly B: number; readonly maxLen: number; length: number }

/** What a KVCache really holds: per layer (B,maxLen,QKV) rope'd q|k|v rows, plus decode scratch. */
interface CacheState extends KVCache {
  owner: CacheDecoder
  kv: Tensor[]                  // L × (B,maxLen,QKV)
  scratch: Map<string, Tensor>  // decode activations for up to B·maxLen rows; logits for logitRows rows
  tokens: IntTensor             // (B·maxLen)
  logitRows: number             // rows of the logits scratch: decodeLosses' classifier chunk
  targets: IntTensor[]          // per classifier chunk (logitRows)
}

/** Rows of a cache's logits scratch: decode needs B, decodeLosses chunks of up to 256 (a (B·maxLen,Vp) buffer
 *  was 200 MiB at gpt2-124m's 1024 positions, for B rows used). */
const CACHE_LOGIT_ROWS = 256

/** What decoding needs of its GPT: the weights and the block and norm forwards the training forward runs too. */
export interface DecodeHost {
  readonly backend: Backend
  readonly config: ModelConfig
  readonly params: ModelParams
  blockForward(p: BlockParams, x: BlockBuffers, residual: Tensor, B: number, T: number, at: BlockAt, next: NormAt | null): void
  normForward(out: Tensor, mean: Tensor | null, rstd: Tensor, inp: Tensor, w: Tensor, b: Tensor | null, N: number): void
  checkTokens(ids: Int32Array, N: number, what: 'inputs' | 'targets' | 'tokens'): Int32Array
}

export class CacheDecoder {
  constructor(private readonly host: DecodeHost) {}

  /** Inference with a key/value cache (B sequences, capacity maxLen <= contextLength). */
  createCache(B: number, maxLen: number): KVCache {
    const c = this.host.config, be = this.host.backend
    if (!(Number.isSafeInteger(B) && B >= 1 && Number.isSafeInteger(maxLen) && maxLen >= 1 && maxLen <= c.contextLength)) {
      throw new InputError(`gpt: cache needs B >= 1 and 1 <= maxLen <= ${c.contextLength}, got B=${B}, maxLen=${maxLen}`)
    }
    const { C, QKV, AH, FC, H } = rowWidths(c), rows = B * maxLen
    const kv: Tensor[] = []
    for (let l = 0; l < c.layers; l++) kv.push(be.alloc(rows * QKV))
    const widths: Record<string, number> = { stream: C, ln: C, mean: 1, rstd: 1, qkv: QKV, atty: AH, scratch: C,
      fch: FC, fchAct: H, last: C, lastNorm: C, losses: 1 }
    const scratch = new Map<string, Tensor>()
    for (const [k, w] of Object.entries(widths)) scratch.set(k, be.alloc(rows * w))
    const logitRows = Math.min(rows, Math.max(B, CACHE_LOGIT_ROWS))
    scratch.set('logits', be.alloc(logitRows * c.paddedVocabSize))
    const targets = Array.from({ length: Math.ceil(rows / logitRows) }, () => be.allocInt(logitRows))
    const state: CacheState = { B, maxLen, length: 0, owner: this, kv, scratch, tokens: be.allocInt(rows), logitRows, targets }
    return state
  }

  /** Frees a cache's buffers now (backends with device memory); the cache is unusable afterwards. */
  releaseCache(cache: KVCache): void {
    const st = cache as CacheState, be = this.host.backend
    if (st.owner !== this) throw new Error('gpt: releaseCache() got a cache created by another model')
    for (const t of [...st.kv, ...st.scratch.values()]) be.free?.(t)
    for (const t of [st.tokens, ...st.targets]) be.free?.(t)
    st.kv.length = 0
    st.scratch.clear()
    st.length = st.maxLen   // any further decode() reports an overflow
  }

  /** Runs tokens (B,Tq) at positions [cache.length, cache.length+Tq), appends them to the cache and returns
   *  the logits of the LAST position of each sequence, (B,V) real vocabulary. */
  decode(cache: KVCache, tokens: Int32Array, B: number, Tq: number): Float32Array {
    const st = this.cacheState(cache, 'decode', B), { backend: be, config: c, params: p } = this.host, C = c.channels
    const stream = this.decodeBlocks(st, tokens, B, Tq)
    const v = (k: string, w: number): Tensor => be.view(st.scratch.get(k)!, 0, B * w)
    const last = v('last', C), lastNorm = v('lastNorm', C), logits = v('logits', c.paddedVocabSize)
    for (let b = 0; b < B; b++) be.copy(be.view(last, b * C, C), be.view(stream, (b * Tq + Tq - 1) * C, C))
    this.host.normForward(lastNorm, c.norm === 'layernorm' ? v('mean', 1) : null, v('rstd', 1), last, p.lnfw, p.lnfb, B)
    be.matmulForward(logits, lastNorm, p.out, null, B, C, c.paddedVocabSize)
    return stripPadding(be.download(logits), B, c.vocabSize, c.paddedVocabSize)
  }

  /** decode() that scores every position instead: targets (B,Tq), entries < 0 ignored; returns the per-position
   *  losses (B,Tq), 0 at ignored positions, as lastLosses() after a forward over the whole sequences. */
  decodeLosses(cache: KVCache, tokens: Int32Array, targets: Int32Array, B: number, Tq: number): Float32Array {
    const st = this.cacheState(cache, 'decodeLosses', B), { backend: be, config: c, params: p } = this.host
    const C = c.channels, N = B * Tq
    const t = this.host.checkTokens(targets, N, 'targets')
    const stream = this.decodeBlocks(st, tokens, B, Tq)
    const v = (k: string, rows: number, w: number): Tensor => be.view(st.scratch.get(k)!, 0, rows * w)
    const lnf = v('ln', N, C), losses = v('losses', N, 1)
    this.host.normForward(lnf, c.norm === 'layernorm' ? v('mean', N, 1) : null, v('rstd', N, 1), stream, p.lnfw, p.lnfb, N)
    for (let i = 0, r0 = 0; r0 < N; i++, r0 += st.logitRows) {   // the classifier in chunks of the logits scratch
      const n = Math.min(st.logitRows, N - r0), logits = v('logits', n, c.paddedVocabSize)
      const chunk = new Int32Array(st.logitRows).fill(-1)
      chunk.set(t.subarray(r0, r0 + n))
      be.uploadInt(st.targets[i]!, chunk)
      be.matmulForward(logits, be.view(lnf, r0 * C, n * C), p.out, null, n, C, c.paddedVocabSize)
      be.crossEntropyForward(be.view(losses, r0, n), logits, logits, st.targets[i]!, n, c.vocabSize, c.paddedVocabSize)
    }
    return be.download(losses)
  }

  /** Runs tokens (Tq) at [cache.length, cache.length+Tq) for sequence 0 only, then copies their keys and values to
   *  every other sequence: a prefix all B share, computed once (HellaSwag's context, before its four endings). */
  decodeShared(cache: KVCache, tokens: Int32Array, Tq: number): void {
    const st = this.cacheState(cache, 'decodeShared', cache.B), be = this.host.backend, { QKV } = rowWidths(this.host.config)
    const posStart = st.length
    this.decodeBlocks(st, tokens, 1, Tq)   // sequence 0 is the cache's first maxLen rows: a B=1 cache's layout
    for (const kv of st.kv) {
      const src = be.view(kv, posStart * QKV, Tq * QKV)
      for (let b = 1; b < st.B; b++) be.copy(be.view(kv, (b * st.maxLen + posStart) * QKV, Tq * QKV), src)
    }
  }

  private cacheState(cache: KVCache, what: string, B: number): CacheState {
    const st = cache as CacheState
    if (st.owner !== this) throw new Error(`gpt: ${what}() got a cache created by another model`)
    if (B !== st.B) throw new InputError(`gpt: ${what} batch ${B} differs from the cache's ${st.B}`)
    return st
  }

  /** The blocks of a cached forward: tokens (B,Tq) (B <= st.B: sequences 0..B-1) appended to the cache; returns the
   *  last block's output stream (B·Tq,C), before the final norm. */
  private decodeBlocks(st: CacheState, tokens: Int32Array, B: number, Tq: number): Tensor {
    const { backend: be, config: c, params: p } = this.host
    if (!(Number.isSafeInteger(Tq) && Tq >= 1) || st.length + Tq > st.maxLen) {
      throw new InputError(`gpt: decode of ${Tq} tokens at position ${st.length} overflows the cache (maxLen ${st.maxLen})`)
    }
    const N = B * Tq, C = c.channels, posStart = st.length
    const host = new Int32Array(st.tokens.length)
    host.set(this.host.checkTokens(tokens, N, 'tokens'))
    be.uploadInt(st.tokens, host)
    const v = (k: string, w: number): Tensor => be.view(st.scratch.get(k)!, 0, N * w)
    const { QKV, AH, FC, H } = rowWidths(c)
    const ln = c.norm === 'layernorm'
    const stream = v('stream', C)
    const buf: BlockBuffers = { ln1: v('ln', C), ln1Mean: ln ? v('mean', 1) : null, ln1Rstd: v('rstd', 1),
      qkv: v('qkv', QKV), atty: v('atty', AH), lse: null, res2: stream, ln2: v('ln', C),
      ln2Mean: ln ? v('mean', 1) : null, ln2Rstd: v('rstd', 1), fch: v('fch', FC), fchAct: v('fchAct', H),
      res3: stream, scratch: v('scratch', C) }
    be.encoderForward(stream, st.tokens, p.wte, p.wpe, B, Tq, C, posStart)
    const norm1 = (l: number): NormAt => ({ out: buf.ln1, mean: buf.ln1Mean, rstd: buf.ln1Rstd,
      w: p.blocks[l]!.ln1w, b: p.blocks[l]!.ln1b })
    if (c.layers > 0) this.host.normForward(buf.ln1, buf.ln1Mean, buf.ln1Rstd, stream, p.blocks[0]!.ln1w, p.blocks[0]!.ln1b, N)
    for (let l = 0; l < c.layers; l++) {   // the final norm is the caller's
      const next = l + 1 < c.layers ? norm1(l + 1) : null
      this.host.blockForward(p.blocks[l]!, buf, stream, B, Tq, { posStart, kv: st.kv[l]!, Tmax: st.maxLen }, next)
    }
    st.length += Tq
    return stream
  }
}
