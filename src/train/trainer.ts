// The training loop: gradient accumulation over micro-batches (loss = their mean), the global gradient norm before
// clipping, an AdamW step at the scheduled learning rate, then validation, samples and checkpoints on their
// schedules. Everything a step depends on (weights, moments, loader and RNG state) is checkpointed, so a resumed run
// logs exactly what an uninterrupted one would. Reporting goes through callbacks (no printing).

import { join } from 'node:path'
import type { RestorableSource } from '../data/loader.js'
import { evaluateLossYielding } from '../eval/loss.js'
import { scorePrepared, type PreparedExample } from '../eval/hellaswag.js'
import type { HellaswagScoring } from '../eval/hellaswag-prompt.js'
import type { Collective } from '../backend/backend.js'
import { EOT_TOKEN, GPT2_VOCAB } from '../config.js'
import { modelFlopsUtilization, trainingFlopsPerToken } from '../model/flops.js'
import type { GPT } from '../model/gpt.js'
import { makeDirs } from '../util/atomic.js'
import type { Rng } from '../util/rng.js'
import { listCheckpoints, type Checkpoint, type TrainProgress } from './checkpoint.js'
import { CheckpointSaver, saveDir, type SaveJob } from './checkpoint-writer.js'
import { gradAccumSteps, type TrainConfig } from './config.js'
import { checkFiniteParams, DivergenceError, StepGuard, type GuardState, type StepVerdict } from './divergence.js'
import { RunLog, type LogRecord, type StepRecord } from './log.js'
import type { AdamW } from './optimizer.js'
import { generate } from './sample.js'
import { learningRate } from './schedule.js'
import { crashAt, poisonGradAt } from './test-hooks.js'

export interface StepReport extends StepRecord { steps: number; etaS: number }

/** Progress callbacks; the CLI turns them into a live line or plain lines. All optional. */
export interface Reporter {
  step?(r: StepReport): void
  val?(r: { step: number; val_loss: number; best: boolean }): void
  hellaswag?(r: HellaswagRecord): void
  sample?(r: { step: number; tokens: Int32Array }): void
  /** A step checkpoint is complete: fsynced and renamed into place, old ones pruned, best/ updated. Saves run in the
   *  background, so this comes after later steps' reports (at the first step boundary after it completed). */
  checkpoint?(r: { step: number; path: string }): void
  /** A spike (z-score above threshold) or a skipped update. */
  anomaly?(r: { step: number; loss: number; grad_norm: number; verdict: StepVerdict }): void
}

/** A HellaSwag evaluation's log line (0-shot during training). */
interface HellaswagRecord {
  step: number; hellaswag_acc_norm: number; hellaswag_acc: number; hellaswag_count: number
  hellaswag_scoring: HellaswagScoring; hellaswag_shots: number
}

/** HellaSwag during training: the examples tokenized once at start, scored every `every` steps. */
export interface HellaswagSchedule { every: number; prepared: PreparedExample[]; scoring: HellaswagScoring }

interface TrainerOptions {
  model: GPT
  optimizer: AdamW
  config: TrainConfig
  runDir: string
  train: RestorableSource
  val: RestorableSource | null      // restored to its initial state before every validation
  valSteps?: number                  // batches per validation (default config.valSteps; fewer when val holds fewer)
  rng: Rng                     // periodic samples draw from it; checkpointed
  startStep: number            // optimizer steps already done (the checkpoint's step when resuming)
  resumedLog?: LogRecord[]     // log.jsonl's records as --resume read them (else the log is read again to rewrite it)
  bestValLoss: number | null   // from the checkpoint when resuming
  startTokens?: number         // tokens trained before startStep (the checkpoint's; default startStep × this total batch)
  pretrained?: boolean         // step 0's weights were given (--init-from, a --model with weights): its validation can be the best
  guard?: GuardState           // the spike detectors' windows, from the checkpoint when resuming
  hellaswag?: HellaswagSchedule | null
  reporter?: Reporter
  note?: (line: string) => void   // warnings of housekeeping that failed (an old checkpoint that cannot be deleted)
  /** Set .requested (e.g. on SIGINT) to stop at the next micro-batch boundary: a step left unfinished is dropped
   *  (weights are only updated at its end) and the last whole step is checkpointed. */
  stop?: { requested: boolean }
  /** Data parallelism (--nproc): gradients, losses, HellaSwag counts and the stop request are summed over the
   *  ranks; rank 0 alone writes the log and checkpoints and draws samples. Absent: one process. */
  collective?: Collective | null
}

export interface TrainResult {
  step: number                 // optimizer steps completed
  interrupted: boolean
  lastLoss: number | null      // the last step's (NaN when it was not finite)
  lastValLoss: number | null
  skippedUpdates: number       // steps of this session whose update was skipped (--on-nan skip, --skip-spikes)
  bestValLoss: number | null
  tokensPerS: number           // mean over this session's steps (validation and checkpoints excluded)
  mfu?: number                 // at that rate, where the backend knows its device's peak (StepRecord's mfu)
  trainSeconds: number         // time in training steps this session
  lastHellaswag: HellaswagRecord | null   // this session's last HellaSwag score, as logged
}

/** One optimizer step (0-based s): accumulate `accum` micro-batches' gradients, norm, clip, and the AdamW
 *  update unless the guard skips it (or throws: a non-finite step with --on-nan stop). Between micro-batches it
 *  yields to the event loop, and answers null, having changed no weights, when a stop was requested there. */
async function optimizerStep(o: TrainerOptions, s: number, accum: number, guard: StepGuard):
  Promise<{ loss: number; gradNorm: number; lr: number; verdict: StepVerdict; stop: boolean } | null> {
  const c = o.config
  const coll = o.collective ?? null, world = coll?.world ?? 1
  const scale = 1 / (accum * world)   // the gradients, summed over micro-batches and ranks, are of the mean loss
  crashAt(coll?.rank ?? 0, s + 1)
  o.model.zeroGrad()
  let lossSum = 0
  for (let k = 0; k < accum; k++) {
    // before every micro-batch but the first of a step (the step before checked at its end), and before the session's
    // first (a signal during the validation before step 1); ranks agree on a stop at the step's end instead, but
    // handle the signal here too: else it waits for the step's sums (read too late) and a second one is lost
    if ((k > 0 || s === o.startStep) && o.stop !== undefined) {
      await new Promise(resolve => setImmediate(resolve))   // a signal during the micro-batch is handled here
      if (o.stop.requested && coll === null) return null
    }
    const b = o.train.next()
    lossSum += o.model.forward(b.inputs, b.targets, c.batchSize, c.seqLen, scale)   // classifier gradient fused in
    o.model.backward(scale)   // grads accumulate d(mean over micro-batches)/dparam
  }
  let stop = o.stop?.requested === true
  // data parallel: gradients are summed over the ranks before the norm, so every rank applies the same update
  if (coll !== null) {
    await coll.allReduceSum(o.model.grads)
    // the stop flag as it is now: a signal handled while the gradients were summed stops this step, not the next
    const [losses, stops] = await coll.sumHost([lossSum, o.stop?.requested === true ? 1 : 0])
    lossSum = losses!
    stop = stops! > 0
  }
  if (poisonGradAt(s + 1)) o.model.backend.upload(o.model.backend.view(o.model.grads, 0, 1), new Float32Array([NaN]))
  const gradNorm = o.optimizer.gradNorm()   // before clipping, as logged
  const lr = learningRate(c, s)
  const loss = lossSum / (accum * world)
  // a step whose loss or gradient norm is not finite, or (with --skip-spikes) is a spike, is never applied
  const verdict = guard.check(s + 1, loss, gradNorm)
  if (verdict.skip === null) o.optimizer.update(lr, { gradClip: c.gradClip, gradNorm })
  return { loss, gradNorm, lr, verdict, stop }
}

/** The log line of a step: the record, plus z-scores at a spike and `skipped: 1` when the update was skipped. */
function stepLine(rec: StepRecord, v: StepVerdict): LogRecord {
  const line: LogRecord = { ...rec }
  if (v.spike) { line['loss_z'] = round3(v.lossZ); line['grad_norm_z'] = round3(v.gradZ) }
  if (v.skip !== null) line['skipped'] = 1
  return line
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000
}

type LogSink = Pick<RunLog, 'append' | 'sync' | 'close'>

/** Validation and HellaSwag at their steps (and at the last), logged, reported and kept in the result. */
class Evaluations {
  private readonly valStart: unknown   // every validation reads the same batches
  private readonly coll: Collective | null
  /** Ranks: a stop requested on some rank during an evaluation, agreed on in that evaluation's sum (see `sum`). */
  stopAgreed = false

  constructor(private readonly o: TrainerOptions, private readonly log: LogSink, private readonly res: TrainResult) {
    this.valStart = o.val?.state()
    this.coll = o.collective ?? null
  }

  async validate(step: number): Promise<{ valLoss: number; best: boolean } | null> {
    const { o, res } = this, c = o.config
    if (o.val === null || c.valEvery === 0 || (step % c.valEvery !== 0 && step !== c.steps)) return null
    o.val.restore(this.valStart)
    const steps = o.valSteps ?? c.valSteps
    // ranks: each evaluates every world-th of the same batches one process reads, and the shares are summed
    const part = this.coll === null ? undefined : { index: this.coll.rank, count: this.coll.world }
    let valLoss = await evaluateLossYielding(o.model, o.val, { B: c.batchSize, T: c.seqLen, steps, nonFinite: 'return', ...(part ? { part } : {}) })
    if (this.coll !== null) valLoss = (await this.sum(this.coll, [valLoss]))[0]!
    const best = (step > 0 || o.pretrained === true) && Number.isFinite(valLoss) &&   // random weights at step 0 are no candidate
      (res.bestValLoss === null || valLoss < res.bestValLoss)   // a NaN or Inf never
    if (best) res.bestValLoss = valLoss
    this.log.append({ step, val_loss: valLoss })
    o.reporter?.val?.({ step, val_loss: valLoss, best })
    res.lastValLoss = valLoss
    return { valLoss, best }
  }

  async hellaswag(step: number): Promise<void> {
    const h = this.o.hellaswag
    if (h === undefined || h === null || (step % h.every !== 0 && step !== this.o.config.steps)) return
    const r = await this.score(h)
    const rec: HellaswagRecord = {
      step, hellaswag_acc_norm: r.accNorm, hellaswag_acc: r.acc, hellaswag_count: r.count, hellaswag_scoring: h.scoring, hellaswag_shots: 0,
    }
    this.log.append({ ...rec })
    this.res.lastHellaswag = rec
    this.o.reporter?.hellaswag?.(rec)
  }

  /** HellaSwag accuracy; with ranks, each scores every world-th example and the counts are summed. */
  private async score(h: HellaswagSchedule): Promise<{ accNorm: number; acc: number; count: number }> {
    const coll = this.coll
    const mine = coll === null ? h.prepared : h.prepared.filter((_, i) => i % coll.world === coll.rank)
    let counts = [0, 0, 0]
    for (let i = 0; i < mine.length; i += 4) {   // 4 examples at a time, yielding to the event loop (signals) between
      // 'forward': the training model's own buffers, rather than a cache's beside them (GPU memory)
      const r = scorePrepared(this.o.model, mine.slice(i, i + 4), { scoring: h.scoring, shots: 0, nonFinite: 'wrong', method: 'forward' })
      counts = [counts[0]! + Math.round(r.accNorm * r.count), counts[1]! + Math.round(r.acc * r.count), counts[2]! + r.count]
      await new Promise(resolve => setImmediate(resolve))
    }
    if (coll !== null) counts = await this.sum(coll, counts)
    const [accNorm, acc, count] = counts as [number, number, number]
    return { accNorm: accNorm / count, acc: acc / count, count }
  }

  /** `values` summed over the ranks, with this rank's stop request summed beside them: a stop asked for during a
   *  long evaluation is agreed on there, so the ranks stop after it instead of training one more step. */
  private async sum(coll: Collective, values: number[]): Promise<number[]> {
    const sums = await coll.sumHost([...values, this.o.stop?.requested === true ? 1 : 0])
    if (sums.at(-1)! > 0) this.stopAgreed = true
    return sums.slice(0, -1)
  }
}

/** The MFU of a rate in tokens/s ({ mfu }, src/model/flops.ts) where the backend knows its device's peak, else {}. */
function mfuMeter(o: TrainerOptions, world: number): (tokensPerS: number) => { mfu?: number } {
  const peak = o.model.backend.peakFlops?.() ?? null, perToken = trainingFlopsPerToken(o.model.config, o.config.seqLen)
  return tokensPerS => peak === null ? {} : { mfu: modelFlopsUtilization(tokensPerS, perToken, peak, world) }
}

/** tokens trained in ms milliseconds as log.jsonl's rate fields: tokens_per_s (0 for no time) and, where known, mfu. */
function rate(tokens: number, ms: number, mfu: (tokensPerS: number) => { mfu?: number }): { tokens_per_s: number; mfu?: number } {
  const tokensPerS = ms > 0 ? tokens / (ms / 1000) : 0
  return { tokens_per_s: tokensPerS, ...mfu(tokensPerS) }
}

/** Runs steps startStep+1 .. config.steps; yields to the event loop after each micro-batch, so a stop requested by
 *  a signal ends the run within one micro-batch: after a step's last one with that step's checkpoint, after
 *  another by dropping the unfinished step (its batches are read again on resume) with the last whole step's. */
export async function runTraining(o: TrainerOptions): Promise<TrainResult> {
  const c = o.config
  const coll = o.collective ?? null, world = coll?.world ?? 1, leader = (coll?.rank ?? 0) === 0
  const accum = gradAccumSteps(c, world)
  const tokensPerStep = c.batchSize * c.seqLen * accum * world, mfu = mfuMeter(o, world)
  if (leader) makeDirs(o.runDir)
  const log = openLog(o, leader)
  const res: TrainResult = {
    step: o.startStep, interrupted: false, lastLoss: null, lastValLoss: null, skippedUpdates: 0, bestValLoss: o.bestValLoss,
    tokensPerS: 0, trainSeconds: 0, lastHellaswag: null,
  }
  const evals = new Evaluations(o, log, res)
  const saver = new CheckpointSaver(o.note ?? (() => {}))   // used by the leader alone
  let tokens = o.startTokens ?? o.startStep * tokensPerStep   // trained through the last whole step
  try {
    if (leader) saver.ensureWorker()   // started while the run starts: even the first save, a stop's too, starts at once
    const guard = new StepGuard(c, o.guard)
    if (o.startStep === 0) res.interrupted = await evaluateStart(o, evals, log, res, { saver, leader, guard, tokens })
    let sessionMs = 0, sessionSteps = 0
    let lastVal: { valLoss: number; best: boolean } | null = null   // the validation of the last whole step, if it had one
    for (let s = o.startStep; s < c.steps && !res.interrupted; s++) {
      const t0 = performance.now(), stepStart = o.train.state()
      const done = await optimizerStep(o, s, accum, guard)
      if (done === null) {
        o.train.restore(stepStart)
        saveUnfinished(o, saver, s, lastVal, res.bestValLoss, { guard: guard.state(), tokens }, log)
        res.interrupted = true
        break
      }
      const ms = performance.now() - t0, step = s + 1
      saver.poll()   // the save started after the last step: reported (or its error thrown) before this step's line
      sessionMs += ms
      sessionSteps++
      tokens += tokensPerStep
      const rec: StepRecord = { step, loss: done.loss, lr: done.lr, grad_norm: done.gradNorm, tokens, ...rate(tokensPerStep, ms, mfu), ms }
      recordStep(o, log, res, rec, done.verdict, (c.steps - step) * sessionMs / sessionSteps / 1000)
      lastVal = await evals.validate(step)
      await evals.hellaswag(step)
      if (leader && c.sampleEvery > 0 && step % c.sampleEvery === 0) {   // drawn even unreported: the RNG stream stays the same
        o.reporter?.sample?.({ step, tokens: sampleDuringTraining(o.model, o.rng, c.sampleTokens) })
      }
      await new Promise(resolve => setImmediate(resolve))   // signals that came during the step are handled here
      const stopping = (coll !== null ? done.stop || evals.stopAgreed : o.stop?.requested === true) && step < c.steps
      const regular = stopping || step === c.steps || (c.checkpointEvery > 0 && step % c.checkpointEvery === 0)
      if (regular || lastVal?.best === true) log.sync()   // the log reaches the disk before the checkpoint that vouches for it
      if (leader) saveCheckpoints(o, saver, step, lastVal, res.bestValLoss, { regular, guard: guard.state(), tokens })
      if (stopping) { res.interrupted = true; break }
    }
    const session = rate(tokensPerStep * sessionSteps, sessionMs, mfu)
    Object.assign(res, { trainSeconds: sessionMs / 1000, tokensPerS: session.tokens_per_s, mfu: sessionSteps > 0 ? session.mfu : undefined })
    return res
  } catch (e) {
    if (!(e instanceof DivergenceError)) throw e
    saver.wait()   // a save in flight completes (or its error, the earlier failure, is the one thrown)
    const last = listCheckpoints(o.runDir).at(-1)
    throw new DivergenceError(`${e.message}; ${last !== undefined ? `the last checkpoint, ${last.path}, is kept` : 'no checkpoint was written yet'}`)
  } finally {
    try { saver.close() } finally { log.close() }   // a save's error, the earlier failure, replaces one thrown since
  }
}

/** log.jsonl, written by rank 0 alone (the other ranks' lines are dropped): a fresh run's starts empty, a resumed
 *  run's keeps the lines through its start step and drops those of the steps it trains again. */
function openLog(o: TrainerOptions, leader: boolean): LogSink {
  return leader
    ? new RunLog(join(o.runDir, 'log.jsonl'), { keepThrough: o.startStep > 0 ? o.startStep : null, read: o.resumedLog })
    : { append: () => {}, sync: () => {}, close: () => {} }
}

/** A fresh run's validation and HellaSwag of its step-0 weights, before step 1. Given weights (--init-from, a --model
 *  with weights) that validate best are saved to best/ now: better than any later ones, they must stay there.
 *  Answers whether the ranks agreed on a stop during them (one process stops before its first micro-batch). */
async function evaluateStart(o: TrainerOptions, evals: Evaluations, log: LogSink, res: TrainResult,
                             at: { saver: CheckpointSaver; leader: boolean; guard: StepGuard; tokens: number }): Promise<boolean> {
  const first = await evals.validate(0)
  const saver = at.saver
  if (at.leader && first?.best === true) {
    log.sync()
    saveCheckpoints(o, saver, 0, first, res.bestValLoss, { regular: false, guard: at.guard.state(), tokens: at.tokens })
  }
  await evals.hellaswag(0)
  return evals.stopAgreed
}

/** A finished step: its log line, the result's step, loss and skip count, the progress report and any anomaly. */
function recordStep(o: TrainerOptions, log: LogSink, res: TrainResult, rec: StepRecord, verdict: StepVerdict, etaS: number): void {
  log.append(stepLine(rec, verdict))
  res.step = rec.step
  res.lastLoss = rec.loss
  if (verdict.skip !== null) res.skippedUpdates++
  o.reporter?.step?.({ ...rec, steps: o.config.steps, etaS })
  if (verdict.spike || verdict.skip !== null) o.reporter?.anomaly?.({ step: rec.step, loss: rec.loss, grad_norm: rec.grad_norm, verdict })
}

/** A step checkpoint when `regular`; RUN_DIR/best when this step's validation loss is the lowest so far (a hard
 *  link of the step checkpoint when there is one, else the weights alone: best is for evaluation, not resuming).
 *  The state is snapshotted here and saved in the background (CheckpointSaver): complete, and reported, later. */
function saveCheckpoints(o: TrainerOptions, saver: CheckpointSaver, step: number, val: { valLoss: number; best: boolean } | null,
                         bestValLoss: number | null, opts: { regular: boolean; guard: GuardState; tokens: number }): void {
  const isBest = val?.best === true
  if (!opts.regular && !isBest) return
  saver.wait()   // one snapshot at a time: the previous save's is dropped before this one is taken
  const progress: TrainProgress = {
    step, loader: o.train.state({ prints: true }), rng: o.rng.state(), valLoss: val?.valLoss ?? null, bestValLoss, guard: opts.guard, tokens: opts.tokens,
  }
  const params = o.model.getParams()
  checkFiniteParams(params, step)
  // best/ alone holds weights only: the moments (twice the weights) are neither copied nor kept alive for it
  const optimizer = opts.regular ? o.optimizer.getState() : null
  const ck: Checkpoint = { modelConfig: o.model.config, trainConfig: o.config, params, optimizer, progress }
  const job: SaveJob = { runDir: o.runDir, ck, regular: opts.regular, isBest,
    keep: { last: o.config.keepCheckpoints, every: o.config.keepEvery } }
  const dir = saveDir(job)
  saver.start(job, () => { if (opts.regular) o.reporter?.checkpoint?.({ step, path: dir }) })
}

/** After a dropped step: the checkpoint of the last whole step `step`, unless it has one (a resumed-from or
 *  regular checkpoint) or is 0 (a run with no checkpoint starts over, identically). */
function saveUnfinished(o: TrainerOptions, saver: CheckpointSaver, step: number, val: { valLoss: number; best: boolean } | null, bestValLoss: number | null,
                        at: { guard: GuardState; tokens: number }, log: Pick<RunLog, 'sync'>): void {
  saver.wait()   // a save in flight may be this step's
  if (step === 0 || listCheckpoints(o.runDir).some(ck => ck.step === step)) return
  log.sync()
  saveCheckpoints(o, saver, step, val, bestValLoss, { regular: true, ...at })   // as a regular checkpoint of that step would be
}

/** A short sample from the end-of-text token (the same RNG stream is checkpointed, so resumes repeat it). */
function sampleDuringTraining(model: GPT, rng: Rng, tokens: number): Int32Array {
  const V = model.config.vocabSize
  const start = new Int32Array([V === GPT2_VOCAB ? EOT_TOKEN : V - 1])   // <|endoftext|>; for another vocabulary, its last id
  return generate(model, start, { maxTokens: tokens, temperature: 1, topK: 0, topP: 1 }, rng)
}
