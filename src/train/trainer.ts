// The training loop: gradient accumulation over micro-batches (loss = their mean), the global gradient norm
// before clipping, an AdamW step at the scheduled learning rate, then validation, samples and checkpoints
// on their schedules. Everything a step depends on (weights, moments, loader and RNG state) is checkpointed,
// so a resumed run logs exactly what an uninterrupted one would. Reporting goes through callbacks (no printing).

import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { GPT } from '../model/gpt.js'
import type { Rng } from '../util/rng.js'
import {
  checkpointName, pruneCheckpoints, saveBest, writeCheckpoint, type Checkpoint, type TrainProgress,
} from './checkpoint.js'
import { gradAccumSteps, type TrainConfig } from './config.js'
import { RunLog, type StepRecord } from './log.js'
import type { AdamW } from './optimizer.js'
import { generate } from './sample.js'
import { learningRate } from './schedule.js'

export interface Batch { inputs: Int32Array; targets: Int32Array }   // (B,T) each

/** What the trainer needs from a data loader (src/data/loader.ts's DataLoader fits). */
export interface BatchSource {
  next(): Batch
  state(): unknown
  restore(state: unknown): void
}

export interface StepReport extends StepRecord { steps: number; etaS: number }

/** Progress callbacks; the CLI turns them into a live line or plain lines. All optional. */
export interface Reporter {
  step?(r: StepReport): void
  val?(r: { step: number; val_loss: number; best: boolean }): void
  sample?(r: { step: number; tokens: Int32Array }): void
  checkpoint?(r: { step: number; path: string }): void
}

export interface TrainerOptions {
  model: GPT
  optimizer: AdamW
  config: TrainConfig
  runDir: string
  train: BatchSource
  val: BatchSource | null      // restored to its initial state before every validation
  rng: Rng                     // periodic samples draw from it; checkpointed
  startStep: number            // optimizer steps already done (the checkpoint's step when resuming)
  bestValLoss: number | null   // from the checkpoint when resuming
  reporter?: Reporter
  /** Set .requested to stop after the current step (with a checkpoint), e.g. on SIGINT. */
  stop?: { requested: boolean }
}

export interface TrainResult {
  step: number                 // optimizer steps completed
  interrupted: boolean
  lastLoss: number | null
  lastValLoss: number | null
  bestValLoss: number | null
  tokensPerS: number           // mean over this session's steps (validation and checkpoints excluded)
  trainSeconds: number         // time in training steps this session
}

/** Mean loss of config.valSteps micro-batches from the start of `val`. */
export function evaluateLoss(model: GPT, val: BatchSource, start: unknown, B: number, T: number, steps: number): number {
  val.restore(start)
  let sum = 0
  for (let i = 0; i < steps; i++) {
    const b = val.next()
    sum += model.forward(b.inputs, b.targets, B, T)
  }
  return sum / steps
}

/** One optimizer step (0-based s): accumulate `accum` micro-batches' gradients, norm, clip, AdamW update. */
function optimizerStep(o: TrainerOptions, s: number, accum: number): { loss: number; gradNorm: number; lr: number } {
  const c = o.config
  o.model.zeroGrad()
  let lossSum = 0
  for (let k = 0; k < accum; k++) {
    const b = o.train.next()
    lossSum += o.model.forward(b.inputs, b.targets, c.batchSize, c.seqLen)
    o.model.backward(1 / accum)   // grads accumulate d(mean over micro-batches)/dparam
  }
  const gradNorm = o.optimizer.gradNorm()   // before clipping, as logged
  const lr = learningRate(c, s)
  o.optimizer.update(lr, { gradClip: c.gradClip, gradNorm })
  return { loss: lossSum / accum, gradNorm, lr }
}

/** Runs steps startStep+1 .. config.steps; yields to the event loop between steps so signals get through. */
export async function runTraining(o: TrainerOptions): Promise<TrainResult> {
  const c = o.config
  const B = c.batchSize, T = c.seqLen
  const accum = gradAccumSteps(c)
  const tokensPerStep = B * T * accum
  mkdirSync(o.runDir, { recursive: true })
  const log = new RunLog(join(o.runDir, 'log.jsonl'), { keepThrough: o.startStep > 0 ? o.startStep : null })
  const valStart = o.val?.state()
  const res: TrainResult = {
    step: o.startStep, interrupted: false, lastLoss: null, lastValLoss: null, bestValLoss: o.bestValLoss, tokensPerS: 0, trainSeconds: 0,
  }
  const validate = (step: number): { valLoss: number; best: boolean } | null => {
    if (o.val === null || c.valEvery === 0 || (step % c.valEvery !== 0 && step !== c.steps)) return null
    const valLoss = evaluateLoss(o.model, o.val, valStart, B, T, c.valSteps)
    const best = step > 0 && (res.bestValLoss === null || valLoss < res.bestValLoss)
    if (best) res.bestValLoss = valLoss
    log.append({ step, val_loss: valLoss })
    o.reporter?.val?.({ step, val_loss: valLoss, best })
    res.lastValLoss = valLoss
    return { valLoss, best }
  }
  try {
    if (o.startStep === 0) validate(0)
    let sessionMs = 0, sessionSteps = 0
    for (let s = o.startStep; s < c.steps; s++) {
      const t0 = performance.now()
      const { loss, gradNorm, lr } = optimizerStep(o, s, accum)
      const ms = performance.now() - t0
      const step = s + 1
      sessionMs += ms
      sessionSteps++
      const rec: StepRecord = { step, loss, lr, grad_norm: gradNorm, tokens_per_s: tokensPerStep / (ms / 1000), ms }
      log.append({ ...rec })
      res.step = step
      res.lastLoss = loss
      o.reporter?.step?.({ ...rec, steps: c.steps, etaS: (c.steps - step) * sessionMs / sessionSteps / 1000 })
      const val = validate(step)
      if (c.sampleEvery > 0 && step % c.sampleEvery === 0) {   // drawn even unreported: the RNG stream stays the same
        const tokens = sampleDuringTraining(o.model, o.rng, c.sampleTokens)
        o.reporter?.sample?.({ step, tokens })
      }
      const stopping = o.stop?.requested === true && step < c.steps
      const regular = stopping || step === c.steps || (c.checkpointEvery > 0 && step % c.checkpointEvery === 0)
      saveCheckpoints(o, step, val, res.bestValLoss, { regular })
      await new Promise(resolve => setImmediate(resolve))
      if (stopping) { res.interrupted = true; break }
    }
    res.trainSeconds = sessionMs / 1000
    res.tokensPerS = sessionSteps > 0 ? tokensPerStep * sessionSteps / (sessionMs / 1000) : 0
    return res
  } finally {
    log.close()
  }
}

/** A step checkpoint when `regular`; RUN_DIR/best when this step's validation loss is the lowest so far (a hard
 *  link of the step checkpoint when there is one, else the weights alone: best is for evaluation, not resuming). */
function saveCheckpoints(o: TrainerOptions, step: number, val: { valLoss: number; best: boolean } | null,
                         bestValLoss: number | null, opts: { regular: boolean }): void {
  const isBest = val?.best === true
  if (!opts.regular && !isBest) return
  const progress: TrainProgress = { step, loader: o.train.state(), rng: o.rng.state(), valLoss: val?.valLoss ?? null, bestValLoss }
  const ck: Checkpoint = {
    modelConfig: o.model.config, trainConfig: o.config, params: o.model.getParams(), optimizer: o.optimizer.getState(), progress,
  }
  if (opts.regular) {
    const dir = join(o.runDir, 'checkpoints', checkpointName(step))
    writeCheckpoint(dir, ck)
    pruneCheckpoints(o.runDir, o.config.keepCheckpoints)
    if (isBest) saveBest(o.runDir, dir)
    o.reporter?.checkpoint?.({ step, path: dir })
  } else {
    writeCheckpoint(join(o.runDir, 'best'), { ...ck, optimizer: null })   // for evaluation: weights only
  }
}

/** A short sample from the end-of-text token (the same RNG stream is checkpointed, so resumes repeat it). */
function sampleDuringTraining(model: GPT, rng: Rng, tokens: number): Int32Array {
  const eot = new Int32Array([model.config.vocabSize - 1])   // GPT-2's <|endoftext|> is its last token
  return generate(model, eot, { maxTokens: tokens, temperature: 1, topK: 0, topP: 1 }, rng)
}
