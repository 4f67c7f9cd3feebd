// The Hugging Face fixtures (test/fixtures/hf-*) against the model: their tensors, placed by the `hf` pieces of
// the parameter table (src/model/params.ts) — not by the importer in src/io/hf.ts, which has its own tests —
// give the logits the PyTorch reference stored. Guards the fixtures, the table's HF names and the RoPE convention.

import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { test } from 'node:test'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { padVocab, swigluHidden, type ModelConfig } from '../../src/config.js'
import { readSafetensors, toFloat32, toInt32 } from '../helpers/safetensors.js'
import { GPT } from '../../src/model/gpt.js'
import { ParamLayout } from '../../src/model/params.js'
import { assertClose, maxAbs } from './close.js'

/** The few config.json keys the fixtures use, mapped by hand. */
function configOf(j: Record<string, any>): ModelConfig {
  const common = { vocabSize: j.vocab_size, paddedVocabSize: padVocab(j.vocab_size) }
  if (j.model_type === 'llama') {
    return { ...common, contextLength: j.max_position_embeddings, layers: j.num_hidden_layers, channels: j.hidden_size,
      heads: j.num_attention_heads, kvHeads: j.num_key_value_heads, norm: 'rmsnorm', normEps: j.rms_norm_eps,
      positions: 'rope', ropeTheta: j.rope_theta, mlp: 'swiglu', mlpHidden: j.intermediate_size ?? swigluHidden(j.hidden_size),
      attnBias: j.attention_bias, mlpBias: j.mlp_bias, tiedEmbeddings: j.tie_word_embeddings }
  }
  return { ...common, contextLength: j.n_positions, layers: j.n_layer, channels: j.n_embd, heads: j.n_head,
    kvHeads: j.n_head, norm: 'layernorm', normEps: j.layer_norm_epsilon, positions: 'learned', ropeTheta: 10000,
    mlp: 'gelu', mlpHidden: 4 * j.n_embd, attnBias: true, mlpBias: true, tiedEmbeddings: true }
}

for (const name of ['hf-llama', 'hf-llama-bf16', 'hf-gpt2']) {
  test(`${name}: weights placed by the parameter table reproduce the reference logits`, () => {
    const dir = resolve(process.cwd(), 'test/fixtures', name)
    const config = configOf(JSON.parse(readFileSync(resolve(dir, 'config.json'), 'utf8')))
    const weights = readSafetensors(resolve(dir, 'model.safetensors'))
    const layout = new ParamLayout(config), flat = new Float32Array(layout.total)
    const used = new Set<string>()
    for (const spec of layout.specs) {
      const cols = spec.shape.length > 1 ? spec.shape[1]! : 1
      for (const piece of spec.hf) {
        const src = toFloat32(weights, piece.name)   // (rows, cols), or (cols, rows) for a Conv1D weight
        used.add(piece.name)
        for (let r = 0; r < piece.rows; r++) {
          for (let c = 0; c < cols; c++) {
            flat[spec.offset + (piece.rowStart + r) * cols + c] = piece.transpose ? src[c * piece.rows + r]! : src[r * cols + c]!
          }
        }
      }
    }
    const unused = [...weights.tensors.keys()].filter(k => !used.has(k))
    if (unused.length > 0) throw new Error(`${name}: tensors not in the parameter table: ${unused.join(', ')}`)
    const expected = readSafetensors(resolve(dir, 'expected_logits.safetensors'))
    const tokens = toInt32(expected, 'tokens'), [B, T] = expected.tensors.get('tokens')!.shape as [number, number]
    const model = new GPT(new CpuBackend(), config, { maxBatch: B, maxSeqLen: T })
    model.setParams(flat)
    model.forward(tokens, null, B, T)
    const want = toFloat32(expected, 'logits')
    assertClose(`${name} logits`, model.lastLogits(), want, { atol: 1e-5 * maxAbs(want), rtol: 1e-5 })
  })
}
