// The one parameter table: every tensor's name, shape, initialization, weight-decay flag, offset in the
// flat buffer and Hugging Face name(s). Parameters, gradients and both AdamW moments are flat buffers laid
// out by this table, so the optimizer (and a later all-reduce) work over one buffer.
// Fused tensors: attn.qkv stacks q, k, v rows; for SwiGLU mlp.fc stacks gate then up rows.

import { headSize, type ModelConfig } from '../config.js'
import { Rng } from '../util/rng.js'

type Init = 'normal' | 'residual' | 'ones' | 'zeros'

/** One Hugging Face tensor made from rows [rowStart, rowStart+rows) of a parameter (transposed for Conv1D). */
export interface HfPiece { name: string; rowStart: number; rows: number; transpose: boolean }

export interface ParamSpec {
  name: string
  shape: number[]
  init: Init
  decay: boolean    // AdamW weight decay: matrices and embeddings only
  offset: number    // in floats, into the flat buffer
  size: number
  hf: HfPiece[]     // empty when the config has no Hugging Face layout
}

export type HfFamily = 'llama' | 'gpt2'

/** The Hugging Face architecture a config maps to without custom code, or the reason it does not. */
export function hfFamily(c: ModelConfig): { family: HfFamily } | { family: null; reason: string } {
  if (c.norm === 'rmsnorm' && c.positions === 'rope' && c.mlp === 'swiglu') return { family: 'llama' }
  if (c.norm === 'layernorm' && c.positions === 'learned' && c.mlp === 'gelu') {
    if (c.kvHeads !== c.heads) return { family: null, reason: 'GPT2LMHeadModel has no grouped-query attention (kvHeads must equal heads)' }
    if (!c.attnBias || !c.mlpBias) return { family: null, reason: 'GPT2LMHeadModel always has attention and MLP biases' }
    return { family: 'gpt2' }
  }
  return {
    family: null,
    reason: `norm=${c.norm}, positions=${c.positions}, mlp=${c.mlp} is neither Llama (rmsnorm, rope, swiglu) nor GPT-2 (layernorm, learned, gelu)`,
  }
}

export class ParamLayout {
  readonly specs: ParamSpec[] = []
  readonly byName = new Map<string, ParamSpec>()
  total = 0

  constructor(readonly config: ModelConfig) {
    const c = config
    const C = c.channels, HS = headSize(c), NH = c.heads, KVH = c.kvHeads, H = c.mlpHidden, L = c.layers
    const fam = hfFamily(c).family
    const llama = fam === 'llama', gpt2 = fam === 'gpt2'
    // GPT-2 stores its Linear weights transposed (Conv1D); Llama and we store (out, in) rows
    const whole = (name: string, rows: number): HfPiece[] => [{ name, rowStart: 0, rows, transpose: false }]
    const conv1d = (name: string, rows: number): HfPiece[] => [{ name, rowStart: 0, rows, transpose: true }]
    const hf = (llamaPieces: HfPiece[], gpt2Pieces: HfPiece[]): HfPiece[] => llama ? llamaPieces : gpt2 ? gpt2Pieces : []
    const gpt2Only = (pieces: HfPiece[]): HfPiece[] => hf([], pieces)

    this.add('wte', [c.paddedVocabSize, C], 'normal',
      hf(whole('model.embed_tokens.weight', c.vocabSize), whole('transformer.wte.weight', c.vocabSize)))
    if (c.positions === 'learned') this.add('wpe', [c.contextLength, C], 'normal', gpt2Only(whole('transformer.wpe.weight', c.contextLength)))
    const qkvRows = (NH + 2 * KVH) * HS
    const fcRows = c.mlp === 'swiglu' ? 2 * H : H
    for (let l = 0; l < L; l++) {
      const p = `h.${l}.`, lp = `model.layers.${l}.`, gp = `transformer.h.${l}.`
      this.norm(`${p}ln1`, hf(whole(`${lp}input_layernorm.weight`, C), whole(`${gp}ln_1.weight`, C)), gpt2Only(whole(`${gp}ln_1.bias`, C)))
      const qkvHf = (suffix: 'weight' | 'bias'): HfPiece[] => hf([
        { name: `${lp}self_attn.q_proj.${suffix}`, rowStart: 0, rows: NH * HS, transpose: false },
        { name: `${lp}self_attn.k_proj.${suffix}`, rowStart: NH * HS, rows: KVH * HS, transpose: false },
        { name: `${lp}self_attn.v_proj.${suffix}`, rowStart: (NH + KVH) * HS, rows: KVH * HS, transpose: false },
      ], (suffix === 'weight' ? conv1d : whole)(`${gp}attn.c_attn.${suffix}`, qkvRows))
      this.add(`${p}attn.qkv.weight`, [qkvRows, C], 'normal', qkvHf('weight'))
      if (c.attnBias) this.add(`${p}attn.qkv.bias`, [qkvRows], 'zeros', qkvHf('bias'))
      this.add(`${p}attn.proj.weight`, [C, NH * HS], 'residual',
        hf(whole(`${lp}self_attn.o_proj.weight`, C), conv1d(`${gp}attn.c_proj.weight`, C)))
      if (c.attnBias) this.add(`${p}attn.proj.bias`, [C], 'zeros', hf(whole(`${lp}self_attn.o_proj.bias`, C), whole(`${gp}attn.c_proj.bias`, C)))
      this.norm(`${p}ln2`, hf(whole(`${lp}post_attention_layernorm.weight`, C), whole(`${gp}ln_2.weight`, C)), gpt2Only(whole(`${gp}ln_2.bias`, C)))
      const fcHf = (suffix: 'weight' | 'bias'): HfPiece[] => hf([
        { name: `${lp}mlp.gate_proj.${suffix}`, rowStart: 0, rows: H, transpose: false },
        { name: `${lp}mlp.up_proj.${suffix}`, rowStart: H, rows: H, transpose: false },
      ], (suffix === 'weight' ? conv1d : whole)(`${gp}mlp.c_fc.${suffix}`, fcRows))
      this.add(`${p}mlp.fc.weight`, [fcRows, C], 'normal', fcHf('weight'))
      if (c.mlpBias) this.add(`${p}mlp.fc.bias`, [fcRows], 'zeros', fcHf('bias'))
      this.add(`${p}mlp.proj.weight`, [C, H], 'residual',
        hf(whole(`${lp}mlp.down_proj.weight`, C), conv1d(`${gp}mlp.c_proj.weight`, C)))
      if (c.mlpBias) this.add(`${p}mlp.proj.bias`, [C], 'zeros', hf(whole(`${lp}mlp.down_proj.bias`, C), whole(`${gp}mlp.c_proj.bias`, C)))
    }
    this.norm('lnf', hf(whole('model.norm.weight', C), whole('transformer.ln_f.weight', C)), gpt2Only(whole('transformer.ln_f.bias', C)))
    if (!c.tiedEmbeddings) {
      this.add('lmHead', [c.paddedVocabSize, C], 'normal', hf(whole('lm_head.weight', c.vocabSize), whole('lm_head.weight', c.vocabSize)))
    }
  }

  /** A norm's gain and, for LayerNorm, its bias. */
  private norm(prefix: string, weightHf: HfPiece[], biasHf: HfPiece[]): void {
    this.add(`${prefix}.weight`, [this.config.channels], 'ones', weightHf)
    if (this.config.norm === 'layernorm') this.add(`${prefix}.bias`, [this.config.channels], 'zeros', biasHf)
  }

  // Weight decay follows the shape, as in nanoGPT: matrices and embeddings (2-D) decay; biases and norm gains don't.
  private add(name: string, shape: number[], init: Init, hf: HfPiece[]): void {
    const size = shape.reduce((a, b) => a * b, 1)
    const spec: ParamSpec = { name, shape, init, decay: shape.length === 2, offset: this.total, size, hf }
    this.specs.push(spec)
    this.byName.set(name, spec)
    this.total += size
  }

  get(name: string): ParamSpec {
    const s = this.byName.get(name)
    if (s === undefined) throw new Error(`params: no parameter named ${name}`)
    return s
  }

  /** Parameters a user would count: padded vocabulary rows excluded. */
  countReal(): number {
    const c = this.config
    const padRows = c.paddedVocabSize - c.vocabSize
    return this.total - padRows * c.channels * (c.tiedEmbeddings ? 1 : 2)
  }
}

/**
 * GPT-2/llm.c initialization: N(0, 0.02) weights, N(0, 0.02/sqrt(2L)) for residual output projections,
 * norms 1, biases 0. Padded vocabulary rows are zero (they never receive gradient, so they stay zero).
 * Draws happen in table order from one seeded stream, so a seed fixes every weight.
 */
export function initParams(layout: ParamLayout, params: Float32Array, seed: number): void {
  const rng = new Rng(seed)
  const c = layout.config
  const residualStd = 0.02 / Math.sqrt(2 * c.layers)
  for (const s of layout.specs) {
    const v = params.subarray(s.offset, s.offset + s.size)
    if (s.init === 'ones') v.fill(1)
    else if (s.init === 'zeros') v.fill(0)
    else {
      const std = s.init === 'residual' ? residualStd : 0.02
      let n = s.size
      if (s.name === 'wte' || s.name === 'lmHead') n = c.vocabSize * c.channels
      for (let i = 0; i < n; i++) v[i] = std * rng.normal()
      v.fill(0, n)
    }
  }
}
