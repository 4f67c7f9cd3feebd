// Hugging Face config.json <-> ModelConfig for the two architectures transformers runs without custom code:
// LlamaForCausalLM (the variant: RMSNorm, RoPE, GQA, SwiGLU) and GPT2LMHeadModel. Import refuses what our
// model would compute differently (rope_scaling, another activation, a head_dim that is not C/NH) instead of
// silently loading a different model; export refuses configs HF cannot express (hfFamily in params.ts).

import { EOT_TOKEN, padVocab, validateConfig, type ModelConfig } from '../config.js'
import { hfFamily, type HfFamily } from '../model/params.js'
import { InputError, shown } from '../util/errors.js'

export type HfDtype = 'bf16' | 'f32'

/** Fields of a parsed config.json; `where` names the file in error messages. */
class JsonFields {
  constructor(readonly o: Record<string, unknown>, readonly where: string) {}

  private bad(key: string, expected: string): never {
    throw new InputError(`hf: ${this.where}: "${key}" must be ${expected}, got ${shown(this.o[key])}`)
  }

  int(key: string, fallback?: number): number {
    const v = this.o[key] ?? fallback
    if (v === undefined) throw new InputError(`hf: ${this.where}: missing "${key}" (a positive integer)`)
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) this.bad(key, 'a positive integer')
    return v
  }

  num(key: string, fallback: number): number {
    const v = this.o[key] ?? fallback
    if (typeof v !== 'number' || !(v > 0)) this.bad(key, 'a positive number')
    return v
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.o[key] ?? fallback
    if (typeof v !== 'boolean') this.bad(key, 'true or false')
    return v
  }

  str(key: string, fallback: string): string {
    const v = this.o[key] ?? fallback
    if (typeof v !== 'string') this.bad(key, 'a string')
    return v
  }
}

/** The architecture a config.json describes: model_type first, then architectures[0]. */
function detectHfFamily(o: Record<string, unknown>, where: string): HfFamily {
  const type = o['model_type']
  const arch = Array.isArray(o['architectures']) ? o['architectures'][0] : undefined
  if (type === 'llama' || (type === undefined && arch === 'LlamaForCausalLM')) return 'llama'
  if (type === 'gpt2' || (type === undefined && arch === 'GPT2LMHeadModel')) return 'gpt2'
  const what = type !== undefined ? `unsupported model_type ${shown(type)}`
    : o['architectures'] === undefined ? 'no model_type or architectures' : `unsupported architectures ${shown(o['architectures'])}`
  throw new InputError(`hf: ${where}: ${what} (llm.ts reads model_type "llama" (LlamaForCausalLM) or "gpt2" (GPT2LMHeadModel))`)
}

/** Maps a parsed config.json to a ModelConfig (vocabulary padded to a multiple of 128). */
export function configFromHfJson(obj: unknown, where: string): { config: ModelConfig; family: HfFamily } {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new InputError(`hf: ${where} is not a JSON object`)
  const o = obj as Record<string, unknown>
  const family = detectHfFamily(o, where)
  const f = new JsonFields(o, where)
  const config = family === 'llama' ? llamaConfig(f) : gpt2Config(f)
  validateConfig(config, where)
  return { config, family }
}

function llamaConfig(f: JsonFields): ModelConfig {
  const o = f.o, where = f.where
  const C = f.int('hidden_size'), NH = f.int('num_attention_heads')
  if (f.str('hidden_act', 'silu') !== 'silu') {
    throw new InputError(`hf: ${where}: hidden_act ${shown(o['hidden_act'])} is not supported (the SwiGLU MLP uses silu)`)
  }
  if (C % NH !== 0) throw new InputError(`hf: ${where}: num_attention_heads ${NH} does not divide hidden_size ${C}`)
  const KVH = f.int('num_key_value_heads', NH)   // named here by its key: validateConfig would say kvHeads
  if (NH % KVH !== 0) throw new InputError(`hf: ${where}: num_key_value_heads ${KVH} does not divide num_attention_heads ${NH}`)
  if (o['head_dim'] !== undefined && o['head_dim'] !== null && o['head_dim'] !== C / NH) {
    throw new InputError(`hf: ${where}: head_dim ${shown(o['head_dim'])} differs from hidden_size/num_attention_heads = ${C / NH} (not supported)`)
  }
  if (o['rope_scaling'] !== undefined && o['rope_scaling'] !== null) {
    throw new InputError(`hf: ${where}: rope_scaling ${shown(o['rope_scaling'])} is not supported (plain RoPE only)`)
  }
  let ropeTheta = f.num('rope_theta', 10_000)
  const rp = o['rope_parameters'] // transformers >= 5 keeps theta and scaling here
  if (rp !== undefined && rp !== null) {
    const r = rp as Record<string, unknown>
    if (typeof rp !== 'object' || (r['rope_type'] ?? 'default') !== 'default') {
      throw new InputError(`hf: ${where}: rope_parameters ${shown(rp)} is not supported (plain RoPE, rope_type "default", only)`)
    }
    ropeTheta = new JsonFields(r, `${where} rope_parameters`).num('rope_theta', ropeTheta)
  }
  const V = f.int('vocab_size')
  return {
    vocabSize: V, paddedVocabSize: padVocab(V), contextLength: f.int('max_position_embeddings', 2048),
    layers: f.int('num_hidden_layers'), channels: C, heads: NH, kvHeads: KVH,
    norm: 'rmsnorm', normEps: f.num('rms_norm_eps', 1e-6), positions: 'rope', ropeTheta,
    mlp: 'swiglu', mlpHidden: f.int('intermediate_size'),
    attnBias: f.bool('attention_bias', false), mlpBias: f.bool('mlp_bias', false),
    tiedEmbeddings: f.bool('tie_word_embeddings', false), // LlamaConfig's default
  }
}

function gpt2Config(f: JsonFields): ModelConfig {
  const o = f.o, where = f.where
  const act = f.str('activation_function', 'gelu_new')
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
    throw new InputError(`hf: ${where}: activation_function "${act}" is not supported (GELU with the tanh approximation: gelu_new)`)
  }
  if (!f.bool('scale_attn_weights', true) || f.bool('scale_attn_by_inverse_layer_idx', false) || f.bool('add_cross_attention', false)) {
    throw new InputError(`hf: ${where}: scale_attn_weights=false, scale_attn_by_inverse_layer_idx or add_cross_attention is not supported`)
  }
  const C = f.int('n_embd'), V = f.int('vocab_size', 50_257)
  const inner = o['n_inner'] === null ? undefined : o['n_inner']
  return {
    vocabSize: V, paddedVocabSize: padVocab(V), contextLength: f.int('n_positions', typeof o['n_ctx'] === 'number' ? o['n_ctx'] : 1024),
    layers: f.int('n_layer'), channels: C, heads: f.int('n_head'), kvHeads: f.int('n_head'),
    norm: 'layernorm', normEps: f.num('layer_norm_epsilon', 1e-5), positions: 'learned', ropeTheta: 10_000,
    mlp: 'gelu', mlpHidden: new JsonFields({ n_inner: inner }, where).int('n_inner', 4 * C),
    attnBias: true, mlpBias: true, tiedEmbeddings: f.bool('tie_word_embeddings', true),
  }
}

/** The HF family of a config, or an InputError naming what Hugging Face cannot express. */
export function requireHfFamily(c: ModelConfig): HfFamily {
  const f = hfFamily(c)
  if (f.family === null) throw new InputError(`hf: cannot export this model to Hugging Face format: ${f.reason}`)
  return f.family
}

/** config.json for transformers' LlamaForCausalLM or GPT2LMHeadModel (real vocabulary size). */
export function hfConfigJson(c: ModelConfig, dtype: HfDtype): Record<string, unknown> {
  const torchDtype = dtype === 'bf16' ? 'bfloat16' : 'float32'
  const common = {
    bos_token_id: EOT_TOKEN, eos_token_id: EOT_TOKEN, vocab_size: c.vocabSize,
    tie_word_embeddings: c.tiedEmbeddings, initializer_range: 0.02, use_cache: true,
    torch_dtype: torchDtype, dtype: torchDtype, // transformers < 4.56 reads torch_dtype, later versions dtype
  }
  if (requireHfFamily(c) === 'llama') {
    return {
      architectures: ['LlamaForCausalLM'], model_type: 'llama',
      hidden_size: c.channels, intermediate_size: c.mlpHidden, num_hidden_layers: c.layers,
      num_attention_heads: c.heads, num_key_value_heads: c.kvHeads, head_dim: c.channels / c.heads,
      hidden_act: 'silu', max_position_embeddings: c.contextLength, rms_norm_eps: c.normEps,
      rope_theta: c.ropeTheta, rope_scaling: null, attention_bias: c.attnBias, attention_dropout: 0.0,
      mlp_bias: c.mlpBias, pretraining_tp: 1, ...common,
    }
  }
  return {
    architectures: ['GPT2LMHeadModel'], model_type: 'gpt2',
    n_embd: c.channels, n_layer: c.layers, n_head: c.heads, n_positions: c.contextLength, n_ctx: c.contextLength,
    n_inner: c.mlpHidden === 4 * c.channels ? null : c.mlpHidden, activation_function: 'gelu_new',
    layer_norm_epsilon: c.normEps, resid_pdrop: 0.0, embd_pdrop: 0.0, attn_pdrop: 0.0,
    scale_attn_weights: true, scale_attn_by_inverse_layer_idx: false, reorder_and_upcast_attn: false,
    ...common,
  }
}

/** generation_config.json: GPT-2's end-of-text token starts and ends generations. */
export function hfGenerationConfigJson(): Record<string, unknown> {
  return { bos_token_id: EOT_TOKEN, eos_token_id: EOT_TOKEN }
}
