// Model FLOPs utilization (MFU) as llm.c and nanoGPT report it: the FLOPs a training step needs by the model's
// shape, per second, over the device's spec dense peak (Backend.peakFlops). Per token: 6·N for the matmuls forward
// and backward (N the real parameters, padded vocabulary rows excluded) and 12·L·C·T for the attention scores and
// their use (the causal mask not discounted, as in PaLM's appendix B and llm.c).

import type { ModelConfig } from '../config.js'
import { ParamLayout } from './params.js'

/** Training FLOPs per token at sequence length T: 6·N + 12·L·C·T. */
export function trainingFlopsPerToken(config: ModelConfig, T: number): number {
  return 6 * new ParamLayout(config).countReal() + 12 * config.layers * config.channels * T
}

/** The fraction of `devices` devices' peak (FLOP/s each) that `tokensPerS` tokens a second of training use. */
export function modelFlopsUtilization(tokensPerS: number, flopsPerToken: number, peakFlops: number, devices = 1): number {
  return tokensPerS * flopsPerToken / (peakFlops * devices)
}
