// The tiny GPT-2-vocabulary model of the HellaSwag tests: its config, its weights from a seed (initParams), and
// a writer of those weights for reference/hellaswag_reference.py. Only test/fixtures/hellaswag/expected.json
// is committed; the weights are regenerated from the seed:
//   node dist/test/eval/hellaswag-model.js --write-weights /tmp/hellaswag-tiny.safetensors
// (Run by `node --test` as a file too: without the flag it does nothing.)

import { GPT2_VOCAB, padVocab, type ModelConfig } from '../../src/config.js'
import { writeSafetensors } from '../helpers/safetensors.js'
import { initParams, ParamLayout } from '../../src/model/params.js'

/** GPT-2 architecture and vocabulary, 2 layers, 32 wide, a 64-token window (so few-shot prompts get cut). */
export const HELLASWAG_TEST_CONFIG: ModelConfig = {
  vocabSize: GPT2_VOCAB, paddedVocabSize: padVocab(GPT2_VOCAB), contextLength: 64,
  layers: 2, channels: 32, heads: 4, kvHeads: 4,
  norm: 'layernorm', normEps: 1e-5, positions: 'learned', ropeTheta: 10_000,
  mlp: 'gelu', mlpHidden: 128, attnBias: true, mlpBias: true, tiedEmbeddings: true,
}

export const HELLASWAG_WEIGHT_SEED = 4242

/** The flat parameters, (layout.total). */
export function hellaswagTestParams(): Float32Array {
  const layout = new ParamLayout(HELLASWAG_TEST_CONFIG)
  const params = new Float32Array(layout.total)
  initParams(layout, params, HELLASWAG_WEIGHT_SEED)
  return params
}

/** Writes one F32 tensor "params" plus the config and layout ([name, shape, offset] rows) as metadata. */
export function writeHellaswagTestWeights(path: string): void {
  const layout = new ParamLayout(HELLASWAG_TEST_CONFIG)
  const params = hellaswagTestParams()
  writeSafetensors(path, [{ name: 'params', dtype: 'F32', shape: [layout.total], data: params }], {
    config: JSON.stringify(HELLASWAG_TEST_CONFIG),
    layout: JSON.stringify(layout.specs.map(s => [s.name, s.shape, s.offset])),
    seed: String(HELLASWAG_WEIGHT_SEED),
  })
}

const flag = process.argv.indexOf('--write-weights')
if (flag >= 0) {
  const out = process.argv[flag + 1]
  if (out === undefined) throw new Error('usage: node hellaswag-model.js --write-weights OUT.safetensors')
  writeHellaswagTestWeights(out)
  process.stdout.write(`wrote ${out}\n`)
}
