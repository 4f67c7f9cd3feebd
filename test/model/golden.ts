// Loads a golden fixture written by reference/torch_reference.py (float64 PyTorch, stored as float32):
// config, the reference's own record of the flat layout, inputs, logits, losses, gradients, and a 10-step
// AdamW trajectory (hyperparameters, per-step losses, grad norms, lrs, final-parameter statistics).

import { readdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { validateConfig, type ModelConfig } from '../../src/config.js'
import { readSafetensors, toFloat32, toInt32 } from '../helpers/safetensors.js'
import type { GPT } from '../../src/model/gpt.js'
import { AdamW } from '../../src/train/optimizer.js'
import { learningRate } from '../../src/train/schedule.js'

export interface Trajectory {
  lr: number; minLr: number; warmup: number; steps: number; accum: number; gradClip: number
  beta1: number; beta2: number; eps: number; weightDecay: number
  losses: number[]; gradNorms: number[]; lrs: number[]
  finalStats: Record<string, [number, number]>   // per tensor: sum, sum of squares of the final parameters
}

export interface Golden {
  name: string
  config: ModelConfig
  layout: [string, number[], number][]   // name, shape, offset as the reference laid them out
  B: number; T: number
  params: Float32Array; grads: Float32Array
  tokens: Int32Array; targets: Int32Array   // (B,T)
  logits: Float32Array                      // (B,T,V)
  losses: Float32Array                      // (B,T)
  loss: number
  train: Trajectory
  trainTokens: Int32Array; trainTargets: Int32Array   // (steps, accum, B, T)
  paramsFinal: Float32Array | null
}

export const goldenDir = (): string => resolve(process.cwd(), 'test/fixtures/golden')

export function goldenNames(): string[] {
  return readdirSync(goldenDir()).filter(f => f.endsWith('.safetensors')).map(f => f.slice(0, -'.safetensors'.length)).sort()
}

export function loadGolden(name: string): Golden {
  const f = readSafetensors(resolve(goldenDir(), `${name}.safetensors`))
  const meta = (k: string): unknown => JSON.parse(f.metadata[k]!)
  const shape = f.tensors.get('tokens')!.shape
  return {
    name, config: validateConfig(meta('config') as ModelConfig, name),
    layout: meta('layout') as Golden['layout'], B: shape[0]!, T: shape[1]!,
    params: toFloat32(f, 'params'), grads: toFloat32(f, 'grads'),
    tokens: toInt32(f, 'tokens'), targets: toInt32(f, 'targets'),
    logits: toFloat32(f, 'logits'), losses: toFloat32(f, 'losses'), loss: Number(f.metadata['loss']),
    train: meta('train') as Trajectory,
    trainTokens: toInt32(f, 'train_tokens'), trainTargets: toInt32(f, 'train_targets'),
    paramsFinal: f.tensors.has('params_final') ? toFloat32(f, 'params_final') : null,
  }
}

/** The golden's 10 AdamW steps (accumulation, clipping, llm.c's schedule) on `model`, any backend: per step the
 *  mean micro-batch loss, the grad norm before clipping and the learning rate, then the final parameters. */
export function trainGolden(model: GPT, g: Golden): { losses: number[]; norms: number[]; lrs: number[]; final: Float32Array } {
  const tr = g.train, BT = g.B * g.T
  const opt = new AdamW(model, { beta1: tr.beta1, beta2: tr.beta2, eps: tr.eps, weightDecay: tr.weightDecay })
  const sched = { lr: tr.lr, warmupSteps: tr.warmup, steps: tr.steps, minLrFrac: tr.minLr / tr.lr }
  const losses: number[] = [], norms: number[] = [], lrs: number[] = []
  for (let s = 0; s < tr.steps; s++) {
    model.zeroGrad()
    let loss = 0
    for (let k = 0; k < tr.accum; k++) {
      const at = (s * tr.accum + k) * BT
      loss += model.forward(g.trainTokens.subarray(at, at + BT), g.trainTargets.subarray(at, at + BT), g.B, g.T) / tr.accum
      model.backward(1 / tr.accum)
    }
    const lr = learningRate(sched, s)
    const norm = opt.gradNorm()
    opt.update(lr, { gradClip: tr.gradClip, gradNorm: norm })
    losses.push(loss)
    norms.push(norm)
    lrs.push(lr)
  }
  return { losses, norms, lrs, final: model.getParams() }
}
