// Activation buffers of a GPT: allocated once for (maxBatch, maxSeqLen) and viewed at the current (B,T), so
// N = B·T rows are packed from offset 0. Per-layer activations are one (L, maxN, X) allocation per kind, kept
// for backward (inference: one layer's, shared by all); activation gradients are shared by all layers (backward
// walks one layer at a time), as llm.c.

import type { AllocOptions, Backend, Tensor } from '../backend/backend.js'
import { headSize, type ModelConfig } from '../config.js'

/** The buffers one transformer block writes. res2/res3 may be the same tensor as the block's input (decode). */
export interface BlockBuffers {
  ln1: Tensor               // (N,C)
  ln1Mean: Tensor | null    // (N), layernorm only
  ln1Rstd: Tensor           // (N)
  qkv: Tensor               // (N,QKV), RoPE applied in place
  atty: Tensor              // (N,NH·HS) attention output before the projection
  lse: Tensor | null        // (B,NH,T), null in decode (no backward)
  res2: Tensor              // (N,C) residual stream after attention
  ln2: Tensor               // (N,C)
  ln2Mean: Tensor | null    // (N)
  ln2Rstd: Tensor           // (N)
  fch: Tensor               // (N,FC) MLP pre-activation, FC = H (gelu) or 2H = [gate|up] (swiglu)
  fchAct: Tensor            // (N,H)
  res3: Tensor              // (N,C) block output
  scratch: Tensor           // (N,C) projection output before its residual add (not kept)
}

export interface ActViews {
  B: number
  T: number
  encoded: Tensor           // (N,C)
  blocks: BlockBuffers[]    // one per layer
  lnf: Tensor               // (N,C)
  lnfMean: Tensor | null    // (N)
  lnfRstd: Tensor           // (N)
  logits: Tensor            // (min(N, logitRows),Vp) one classifier chunk; overwritten by probs (crossEntropyForward) or dlogits
  losses: Tensor            // (N)
}

interface GradViews {
  dres: Tensor              // (N,C) gradient of the residual stream
  dln: Tensor               // (N,C) gradient of a norm's output
  dqkv: Tensor              // (N,QKV) gradient of the q|k|v rows (before RoPE: attentionBackward folds it in)
  datty: Tensor             // (N,NH·HS)
  dfch: Tensor              // (N,FC)
  dfchAct: Tensor           // (N,H)
}

/** Widths of the per-row buffers of a config. */
export function rowWidths(c: ModelConfig): { C: number; QKV: number; AH: number; FC: number; H: number } {
  const HS = headSize(c)
  return { C: c.channels, QKV: (c.heads + 2 * c.kvHeads) * HS, AH: c.heads * HS,
    FC: c.mlp === 'swiglu' ? 2 * c.mlpHidden : c.mlpHidden, H: c.mlpHidden }
}

/** A logits buffer of at most this many floats unless GptOptions.classifierRows says otherwise. Training: 2^28 (512
 *  MiB in bf16); each further chunk costs one more read-modify-write of the classifier's f32 dweight (~0.05 ms on an
 *  H100). Inference: 2^25 (128 MiB in f32, 64 MiB in bf16): there is no dweight, and a chunk of ~600 rows at GPT-2's
 *  vocabulary is still a large matmul (eval loss at gpt2-124m, B=4, T=1024: 7 chunks, same loss and speed as 1 of
 *  0.77 GiB on the CPU; bench/RESULTS.md). */
export const LOGITS_BUDGET = { train: 2 ** 28, inference: 2 ** 25 } as const

/** Rows of each classifier chunk for batches of up to maxN rows: maxN split into the fewest equal chunks whose
 *  (rows, Vp) logits fit the mode's budget (or `limit` rows). Any N <= maxN then needs chunks of at most this many rows. */
export function classifierRows(maxN: number, Vp: number, limit?: number, mode: 'train' | 'inference' = 'train'): number {
  const most = Math.max(1, Math.floor(limit ?? LOGITS_BUDGET[mode] / Vp))
  return Math.ceil(maxN / Math.ceil(maxN / most))
}

type Kind = 'encoded' | 'lnf' | 'lnfMean' | 'lnfRstd' | 'logits' | 'losses' | 'scratch' | 'ln1' | 'ln1Mean'
  | 'ln1Rstd' | 'qkv' | 'atty' | 'lse' | 'res2' | 'ln2' | 'ln2Mean' | 'ln2Rstd' | 'fch' | 'fchAct' | 'res3'
type GradKind = 'dres' | 'dln' | 'dqkv' | 'datty' | 'dfch' | 'dfchAct'

// Buffers a backend may keep at compute precision (bf16 on CUDA): matmul inputs/outputs and their gradients.
// The residual stream (encoded, res2, res3, dres), statistics and losses stay float32, as under PyTorch autocast.
const computeKinds = new Set<Kind | GradKind>(['ln1', 'qkv', 'atty', 'ln2', 'fch', 'fchAct', 'scratch', 'lnf', 'logits',
  'dln', 'dqkv', 'datty', 'dfch', 'dfchAct'])
const precision = (kind: Kind | GradKind): AllocOptions => ({ precision: computeKinds.has(kind) ? 'compute' : 'full' })

export class Activations {
  private readonly bufs = new Map<Kind, Tensor>()
  private gradBufs: Map<GradKind, Tensor> | null = null
  private cached: ActViews | null = null
  private cachedGrads: { key: string; views: GradViews } | null = null
  private readonly perRow: Record<Kind, number>
  private readonly perLayer: Set<Kind>
  /** Rows of the logits buffer: the classifier runs in chunks of at most this many rows (GPT.classifierChunks). */
  readonly logitRows: number

  /** recompute: the norm outputs (ln1, ln2) and the MLP activation (fchAct) are kept for one layer at a time, shared
   *  by all layers, and the backward recomputes them from the stored inputs and statistics (GPT's `recompute`).
   *  mode 'inference': every kind is kept for one layer at a time (no backward reads them; a layer reads only its
   *  input, the previous layer's res3, and writes res2 before res3, so sharing changes no value). */
  constructor(readonly backend: Backend, readonly config: ModelConfig, readonly maxN: number,
              opts: { recompute?: boolean; classifierRows?: number; mode?: 'train' | 'inference' } = {}) {
    const c = config, { C, QKV, AH, FC, H } = rowWidths(c), NH = c.heads
    const ln = c.norm === 'layernorm' ? 1 : 0
    // floats per row (per layer for the per-layer kinds); 0 = not needed for this config
    this.perRow = { encoded: C, lnf: C, lnfMean: ln, lnfRstd: 1, logits: c.paddedVocabSize, losses: 1, scratch: C,
      ln1: C, ln1Mean: ln, ln1Rstd: 1, qkv: QKV, atty: AH, lse: NH, res2: C, ln2: C, ln2Mean: ln, ln2Rstd: 1,
      fch: FC, fchAct: H, res3: C }
    this.perLayer = new Set<Kind>(['ln1', 'ln1Mean', 'ln1Rstd', 'qkv', 'atty', 'lse', 'res2', 'ln2', 'ln2Mean',
      'ln2Rstd', 'fch', 'fchAct', 'res3'])
    if (opts.recompute === true) for (const k of ['ln1', 'ln2', 'fchAct'] as const) this.perLayer.delete(k)
    if (opts.mode === 'inference') this.perLayer.clear()
    this.logitRows = classifierRows(maxN, c.paddedVocabSize, opts.classifierRows, opts.mode)
    for (const [kind, w] of Object.entries(this.perRow) as [Kind, number][]) {
      const rows = kind === 'logits' ? this.logitRows : maxN
      if (w > 0) this.bufs.set(kind, backend.alloc(rows * w * (this.perLayer.has(kind) ? c.layers : 1), precision(kind)))
    }
  }

  /** Views of every activation for a (B,T) batch (B·T <= maxN). */
  views(B: number, T: number): ActViews {
    if (this.cached !== null && this.cached.B === B && this.cached.T === T) return this.cached
    const N = B * T
    const get = (kind: Kind, layer = 0): Tensor => {
      const size = (kind === 'logits' ? Math.min(N, this.logitRows) : N) * this.perRow[kind]
      return this.backend.view(this.bufs.get(kind)!, this.perLayer.has(kind) ? layer * size : 0, size)
    }
    const opt = (kind: Kind, layer = 0): Tensor | null => this.perRow[kind] > 0 ? get(kind, layer) : null
    const scratch = get('scratch')
    const blocks: BlockBuffers[] = []
    for (let l = 0; l < this.config.layers; l++) {
      blocks.push({ ln1: get('ln1', l), ln1Mean: opt('ln1Mean', l), ln1Rstd: get('ln1Rstd', l), qkv: get('qkv', l),
        atty: get('atty', l), lse: get('lse', l), res2: get('res2', l), ln2: get('ln2', l), ln2Mean: opt('ln2Mean', l),
        ln2Rstd: get('ln2Rstd', l), fch: get('fch', l), fchAct: get('fchAct', l), res3: get('res3', l), scratch })
    }
    this.cached = { B, T, encoded: get('encoded'), blocks, lnf: get('lnf'), lnfMean: opt('lnfMean'),
      lnfRstd: get('lnfRstd'), logits: get('logits'), losses: get('losses') }
    return this.cached
  }

  /** Views of the activation-gradient buffers (allocated on the first backward). */
  gradViews(N: number): GradViews {
    const { C, QKV, AH, FC, H } = rowWidths(this.config)
    const widths: Record<GradKind, number> = { dres: C, dln: C, dqkv: QKV, datty: AH, dfch: FC, dfchAct: H }
    if (this.gradBufs === null) {
      this.gradBufs = new Map()
      for (const [kind, w] of Object.entries(widths) as [GradKind, number][]) {
        if (w > 0) this.gradBufs.set(kind, this.backend.alloc(this.maxN * w, precision(kind)))
      }
    }
    if (this.cachedGrads !== null && this.cachedGrads.key === String(N)) return this.cachedGrads.views
    const get = (kind: GradKind): Tensor => this.backend.view(this.gradBufs!.get(kind)!, 0, N * widths[kind])
    const views: GradViews = { dres: get('dres'), dln: get('dln'), dqkv: get('dqkv'), datty: get('datty'), dfch: get('dfch'),
      dfchAct: get('dfchAct') }
    this.cachedGrads = { key: String(N), views }
    return views
  }
}

/** (N,Vp) -> (N,V): drops the padded vocabulary columns. */
export function stripPadding(padded: Float32Array, N: number, V: number, Vp: number): Float32Array {
  if (V === Vp) return padded
  const out = new Float32Array(N * V)
  for (let i = 0; i < N; i++) out.set(padded.subarray(i * Vp, i * Vp + V), i * V)
  return out
}
