// Inference with a key/value cache: B sequences run incrementally over a GPT's weights, each layer's rope'd q|k|v
// rows kept per position so new tokens attend to the cache instead of recomputing the prefix. The GPT delegates its
// createCache/decode/decodeLosses/decodeShared/decodePacked here; a cache has buffers of its own, none of the
// training ones. decodePacked runs many independent groups of sequences as one forward (each group attending to
// its own place in a pool of key/value rows), so every matmul reads the weights once for all of them.

import type { Backend, IntTensor, Tensor } from '../backend/backend.js'
import type { ModelConfig } from '../config.js'
import { InputError } from '../util/errors.js'
import { rowWidths, stripPadding, type BlockBuffers } from './activations.js'
import type { NormAt, Segment } from './gpt.js'
import type { BlockParams, ModelParams } from './views.js'

export interface KVCache { readonly B: number; readonly maxLen: number; length: number }

/** What a KVCache really holds: per layer (B,maxLen,QKV) rope'd q|k|v rows, plus decode scratch. A pool
 *  (createPool, for decodePacked) has B = 1 and maxLen = its key/value rows, with no sequence layout. */
interface CacheState extends KVCache {
  owner: CacheDecoder
  pool: boolean
  kv: Tensor[]                  // L × (B·maxLen,QKV)
  scratch: Map<string, Tensor>  // decode activations for up to `rows` rows; logits for logitRows rows
  rows: number                  // rows of the scratch (B·maxLen for a cache)
  tokens: IntTensor[]           // per run of decodeBlocks (rows each), allocated as needed
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
  blockForward(p: BlockParams, x: BlockBuffers, residual: Tensor, N: number, segments: Segment[], next: NormAt | null): void
  normForward(out: Tensor, mean: Tensor | null, rstd: Tensor, inp: Tensor, w: Tensor, b: Tensor | null, N: number): void
  checkTokens(ids: Int32Array, N: number, what: 'inputs' | 'targets' | 'tokens'): Int32Array
}

/** One group of decodePacked: B sequences that continue one prefix (P >= 0 tokens, none scored) with (B,T) rows
 *  of their own, targets < 0 ignored: one HellaSwag example (its context, then its four endings). */
export interface PackedGroup { prefix: Int32Array; tokens: Int32Array; targets: Int32Array; B: number; T: number }

/** One call's worth of rows for decodeBlocks: tokens (B,T) joining the key/value rows at kvRow (each sequence Tmax
 *  of them) at posStart; share: see Segment. */
interface Run { tokens: Int32Array; B: number; T: number; posStart: number; kvRow: number; Tmax: number; share?: number }

export class CacheDecoder {
  constructor(private readonly host: DecodeHost) {}

  /** Inference with a key/value cache (B sequences, capacity maxLen <= contextLength). */
  createCache(B: number, maxLen: number): KVCache {
    const c = this.host.config
    if (!(Number.isSafeInteger(B) && B >= 1 && Number.isSafeInteger(maxLen) && maxLen >= 1 && maxLen <= c.contextLength)) {
      throw new InputError(`gpt: cache needs B >= 1 and 1 <= maxLen <= ${c.contextLength}, got B=${B}, maxLen=${maxLen}`)
    }
    return this.allocate(B, maxLen, B * maxLen, false)
  }

  /** A pool for decodePacked: kvRows key/value rows per layer and scratch for `rows` rows of one forward. */
  createPool(kvRows: number, rows: number): KVCache {
    if (!(Number.isSafeInteger(kvRows) && kvRows >= 1 && Number.isSafeInteger(rows) && rows >= 1)) {
      throw new InputError(`gpt: a pool needs positive key/value rows and rows, got ${kvRows} and ${rows}`)
    }
    return this.allocate(1, kvRows, rows, true)
  }

  private allocate(B: number, maxLen: number, rows: number, pool: boolean): CacheState {
    const c = this.host.config, be = this.host.backend, { C, QKV, AH, FC, H } = rowWidths(c)
    const kv: Tensor[] = []
    for (let l = 0; l < c.layers; l++) kv.push(be.alloc(B * maxLen * QKV))
    const widths: Record<string, number> = { stream: C, ln: C, mean: 1, rstd: 1, qkv: QKV, atty: AH, scratch: C,
      fch: FC, fchAct: H, last: C, lastNorm: C, losses: 1 }
    const scratch = new Map<string, Tensor>()
    for (const [k, w] of Object.entries(widths)) scratch.set(k, be.alloc(rows * w))
    const logitRows = Math.min(rows, Math.max(B, CACHE_LOGIT_ROWS))
    scratch.set('logits', be.alloc(logitRows * c.paddedVocabSize))
    const targets = Array.from({ length: Math.ceil(rows / logitRows) }, () => be.allocInt(logitRows))
    return { B, maxLen, length: 0, owner: this, pool, kv, scratch, rows, tokens: [], logitRows, targets }
  }

  /** Frees a cache's buffers now (backends with device memory); the cache is unusable afterwards. */
  releaseCache(cache: KVCache): void {
    const st = cache as CacheState, be = this.host.backend
    if (st.owner !== this) throw new Error('gpt: releaseCache() got a cache created by another model')
    for (const t of [...st.kv, ...st.scratch.values()]) be.free?.(t)
    for (const t of [...st.tokens, ...st.targets]) be.free?.(t)
    st.kv.length = 0
    st.scratch.clear()
    st.length = st.maxLen   // any further decode() reports an overflow
  }

  /** Runs tokens (B,Tq) at positions [cache.length, cache.length+Tq), appends them to the cache and returns
   *  the logits of the LAST position of each sequence, (B,V) real vocabulary. */
  decode(cache: KVCache, tokens: Int32Array, B: number, Tq: number): Float32Array {
    const st = this.cacheState(cache, 'decode', B), { backend: be, config: c, params: p } = this.host, C = c.channels
    const stream = this.decodeBlocks(st, [this.append(st, tokens, B, Tq)])
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
    const st = this.cacheState(cache, 'decodeLosses', B)
    const t = this.host.checkTokens(targets, B * Tq, 'targets')
    return this.rowLosses(st, this.decodeBlocks(st, [this.append(st, tokens, B, Tq)]), t)
  }

  /** Runs tokens (Tq) at [cache.length, cache.length+Tq) for sequence 0 only, its keys and values going to every
   *  sequence: a prefix all B share, computed once (HellaSwag's context, before its four endings). */
  decodeShared(cache: KVCache, tokens: Int32Array, Tq: number): void {
    const st = this.cacheState(cache, 'decodeShared', cache.B)
    this.decodeBlocks(st, [{ ...this.append(st, tokens, 1, Tq), share: st.B }])
  }

  /** decodeShared then decodeLosses for many groups in ONE forward, each group in its own place of a pool
   *  (createPool): the weights are read once for all their rows. Needs Σ B·(P+T) key/value rows, Σ (P + B·T)
   *  rows, P + T <= contextLength. Returns per group its losses (B,T), as decodeLosses'; the classifier runs on the
   *  groups' own rows only (the prefixes are not scored). */
  decodePacked(pool: KVCache, groups: PackedGroup[]): Float32Array[] {
    const st = pool as CacheState, c = this.host.config
    if (st.owner !== this || !st.pool || st.kv.length === 0 && c.layers > 0) {
      throw new Error('gpt: decodePacked() needs a live pool of this model (createPool)')
    }
    const prefixes: Run[] = [], own: Run[] = [], targets: Int32Array[] = []
    let kvRow = 0
    for (const [i, g] of groups.entries()) {
      const P = g.prefix.length, Tmax = P + g.T
      if (!(Number.isSafeInteger(g.B) && g.B >= 1 && Number.isSafeInteger(g.T) && g.T >= 1 && Tmax <= c.contextLength)) {
        throw new InputError(`gpt: decodePacked group ${i}: needs B >= 1, T >= 1 and P + T <= ${c.contextLength}, ` +
          `got B=${g.B}, T=${g.T}, P=${P}`)
      }
      if (P > 0) prefixes.push({ tokens: g.prefix, B: 1, T: P, posStart: 0, kvRow, Tmax, share: g.B })
      own.push({ tokens: g.tokens, B: g.B, T: g.T, posStart: P, kvRow, Tmax })
      targets.push(this.host.checkTokens(g.targets, g.B * g.T, 'targets'))
      kvRow += g.B * Tmax
    }
    if (kvRow > st.maxLen) throw new InputError(`gpt: decodePacked needs ${kvRow} key/value rows, the pool has ${st.maxLen}`)
    // every prefix first: a group's own rows attend to its prefix, written (layer by layer) by an earlier segment
    const stream = this.decodeBlocks(st, [...prefixes, ...own])
    const skip = prefixes.reduce((n, r) => n + r.T, 0), N = own.reduce((n, r) => n + r.B * r.T, 0), C = c.channels
    const all = new Int32Array(N)
    let at = 0
    for (const t of targets) { all.set(t, at); at += t.length }
    const losses = this.rowLosses(st, this.host.backend.view(stream, skip * C, N * C), all)
    at = 0
    return own.map(r => losses.subarray(at, at += r.B * r.T))
  }

  private cacheState(cache: KVCache, what: string, B: number): CacheState {
    const st = cache as CacheState
    if (st.owner !== this) throw new Error(`gpt: ${what}() got a cache created by another model`)
    if (st.pool) throw new Error(`gpt: ${what}() got a pool (createPool is decodePacked's)`)
    if (B !== st.B) throw new InputError(`gpt: ${what} batch ${B} differs from the cache's ${st.B}`)
    return st
  }

  /** The run of tokens (B,Tq) (sequences 0..B-1) at the cache's length (decodeBlocks advances it). */
  private append(st: CacheState, tokens: Int32Array, B: number, Tq: number): Run {
    if (!(Number.isSafeInteger(Tq) && Tq >= 1) || st.length + Tq > st.maxLen) {
      throw new InputError(`gpt: decode of ${Tq} tokens at position ${st.length} overflows the cache (maxLen ${st.maxLen})`)
    }
    return { tokens, B, T: Tq, posStart: st.length, kvRow: 0, Tmax: st.maxLen }
  }

  /** The blocks of a cached forward over runs, their rows one after another; returns the last block's output
   *  stream (N,C), before the final norm. A cache's length becomes the end of its (one) run. */
  private decodeBlocks(st: CacheState, runs: Run[]): Tensor {
    const { backend: be, config: c, params: p } = this.host, C = c.channels, { QKV, AH, FC, H } = rowWidths(c)
    const N = runs.reduce((n, r) => n + r.B * r.T, 0)
    if (N > st.rows) throw new InputError(`gpt: decode of ${N} rows overflows the scratch's ${st.rows}`)
    const v = (k: string, w: number): Tensor => be.view(st.scratch.get(k)!, 0, N * w)
    const ln = c.norm === 'layernorm'
    const stream = v('stream', C)
    const buf: BlockBuffers = { ln1: v('ln', C), ln1Mean: ln ? v('mean', 1) : null, ln1Rstd: v('rstd', 1),
      qkv: v('qkv', QKV), atty: v('atty', AH), lse: null, res2: stream, ln2: v('ln', C),
      ln2Mean: ln ? v('mean', 1) : null, ln2Rstd: v('rstd', 1), fch: v('fch', FC), fchAct: v('fchAct', H),
      res3: stream, scratch: v('scratch', C) }
    let r0 = 0
    const at = runs.map((r, i) => {   // each run's tokens in a buffer of their own: the encoder reads from its start
      const n = r.B * r.T
      const tokens = st.tokens[i] ??= be.allocInt(st.rows)
      be.uploadInt(tokens, this.host.checkTokens(r.tokens, n, 'tokens'))
      be.encoderForward(N === n ? stream : be.view(stream, r0 * C, n * C), tokens, p.wte, p.wpe, r.B, r.T, C, r.posStart)
      return { ...r, r0: (r0 += n) - n }
    })
    const segments = (l: number): Segment[] => at.map(r => ({ r0: r.r0, B: r.B, T: r.T, posStart: r.posStart,
      Tmax: r.Tmax, share: r.share, kv: be.view(st.kv[l]!, r.kvRow * QKV, Math.max(r.B, r.share ?? 1) * r.Tmax * QKV) }))
    const norm1 = (l: number): NormAt => ({ out: buf.ln1, mean: buf.ln1Mean, rstd: buf.ln1Rstd,
      w: p.blocks[l]!.ln1w, b: p.blocks[l]!.ln1b })
    if (c.layers > 0) this.host.normForward(buf.ln1, buf.ln1Mean, buf.ln1Rstd, stream, p.blocks[0]!.ln1w, p.blocks[0]!.ln1b, N)
    for (let l = 0; l < c.layers; l++) {   // the final norm is the caller's
      this.host.blockForward(p.blocks[l]!, buf, stream, N, segments(l), l + 1 < c.layers ? norm1(l + 1) : null)
    }
    if (!st.pool) st.length = runs[0]!.posStart + runs[0]!.T
    return stream
  }

  /** The final norm and the classifier over rows (N,C) of the stream, in chunks of the logits scratch: the
   *  per-row losses (N) against targets (N), 0 where targets are < 0. */
  private rowLosses(st: CacheState, rows: Tensor, targets: Int32Array): Float32Array {
    const { backend: be, config: c, params: p } = this.host, C = c.channels, N = targets.length
    const v = (k: string, n: number, w: number): Tensor => be.view(st.scratch.get(k)!, 0, n * w)
    const lnf = v('ln', N, C), losses = v('losses', N, 1)
    this.host.normForward(lnf, c.norm === 'layernorm' ? v('mean', N, 1) : null, v('rstd', N, 1), rows, p.lnfw, p.lnfb, N)
    for (let i = 0, r0 = 0; r0 < N; i++, r0 += st.logitRows) {
      const n = Math.min(st.logitRows, N - r0), logits = v('logits', n, c.paddedVocabSize)
      const chunk = new Int32Array(st.logitRows).fill(-1)
      chunk.set(targets.subarray(r0, r0 + n))
      be.uploadInt(st.targets[i]!, chunk)
      be.matmulForward(logits, be.view(lnf, r0 * C, n * C), p.out, null, n, C, c.paddedVocabSize)
      be.crossEntropyForward(be.view(losses, r0, n), logits, logits, st.targets[i]!, n, c.vocabSize, c.paddedVocabSize)
    }
    return be.download(losses)
  }
}
