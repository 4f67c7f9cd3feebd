// Named views into a flat parameter-shaped buffer (parameters, gradients): one object per block plus the
// embeddings and the final norm, taken once from the ParamLayout so the forward/backward code reads like the
// architecture. The same function serves params and grads, so their views can never disagree.

import type { Backend, Tensor } from '../backend/backend.js'
import type { ParamLayout } from './params.js'

export interface BlockParams {
  ln1w: Tensor; ln1b: Tensor | null           // (C)
  qkvw: Tensor; qkvb: Tensor | null           // (QKV,C) (QKV)
  projw: Tensor; projb: Tensor | null         // (C,NH·HS) (C)
  ln2w: Tensor; ln2b: Tensor | null           // (C)
  fcw: Tensor; fcb: Tensor | null             // (FC,C) (FC)
  mlpProjw: Tensor; mlpProjb: Tensor | null   // (C,H) (C)
}

export interface ModelParams {
  wte: Tensor                 // (Vp,C)
  wpe: Tensor | null          // (maxT,C), learned positions only
  blocks: BlockParams[]
  lnfw: Tensor; lnfb: Tensor | null   // (C)
  out: Tensor                 // (Vp,C): wte when tied, lmHead otherwise
}

/** Views of every parameter of `layout` inside `flat` (layout.total floats). */
export function paramViews(backend: Backend, layout: ParamLayout, flat: Tensor): ModelParams {
  const get = (name: string): Tensor => {
    const s = layout.get(name)
    return backend.view(flat, s.offset, s.size)
  }
  const opt = (name: string): Tensor | null => layout.byName.has(name) ? get(name) : null
  const blocks: BlockParams[] = []
  for (let l = 0; l < layout.config.layers; l++) {
    const p = `h.${l}.`
    blocks.push({
      ln1w: get(`${p}ln1.weight`), ln1b: opt(`${p}ln1.bias`),
      qkvw: get(`${p}attn.qkv.weight`), qkvb: opt(`${p}attn.qkv.bias`),
      projw: get(`${p}attn.proj.weight`), projb: opt(`${p}attn.proj.bias`),
      ln2w: get(`${p}ln2.weight`), ln2b: opt(`${p}ln2.bias`),
      fcw: get(`${p}mlp.fc.weight`), fcb: opt(`${p}mlp.fc.bias`),
      mlpProjw: get(`${p}mlp.proj.weight`), mlpProjb: opt(`${p}mlp.proj.bias`),
    })
  }
  const wte = get('wte')
  return { wte, wpe: opt('wpe'), blocks, lnfw: get('lnf.weight'), lnfb: opt('lnf.bias'), out: opt('lmHead') ?? wte }
}
