// Validation loss: the mean cross-entropy of a model over the first N batches of a token stream, as llm.c
// reports val loss (the mean of the per-batch mean losses; every batch has B·T targets, so this is also the
// mean over all targets). Forward only; no gradients are touched.

import type { BatchSource } from '../data/loader.js'
import type { GPT } from '../model/gpt.js'
import { InputError } from '../util/errors.js'

interface LossOptions {
  B: number
  T: number
  steps: number
  /** Called after each batch with the number of batches done and that batch's loss. */
  onBatch?: (done: number, loss: number) => void
  /** A non-finite batch loss: 'throw' (diverged or broken weights; the default), or 'return' it in the mean, for
   *  the trainer, which has its own policy for a diverged validation. */
  nonFinite?: 'throw' | 'return'
  /** Ranks: this one evaluates batches index, index+count, … of the `steps` (it reads past the others), and the
   *  result is its share of the mean, so the shares of all `count` ranks sum to the one-process mean. */
  part?: { index: number; count: number }
}

/** Mean loss over `steps` batches of `source` (with `part`, this rank's share of it). */
export function evaluateLoss(model: GPT, source: BatchSource, opts: LossOptions): number {
  let sum = 0
  for (const loss of batchLosses(model, source, opts)) sum += loss
  return sum / opts.steps
}

/** evaluateLoss, yielding to the event loop after every batch (the trainer: a signal is handled within a batch). */
export async function evaluateLossYielding(model: GPT, source: BatchSource, opts: LossOptions): Promise<number> {
  let sum = 0
  for (const loss of batchLosses(model, source, opts)) {
    sum += loss
    await new Promise(resolve => setImmediate(resolve))
  }
  return sum / opts.steps
}

function* batchLosses(model: GPT, source: BatchSource, opts: LossOptions): Generator<number> {
  const part = opts.part ?? { index: 0, count: 1 }
  for (let i = 0; i < opts.steps; i++) {
    const { inputs, targets } = source.next()
    if (i % part.count !== part.index) continue
    const loss = model.forward(inputs, targets, opts.B, opts.T)
    if (!Number.isFinite(loss) && opts.nonFinite !== 'return') {
      throw new InputError(`eval: the model's loss on batch ${i} is ${loss} (its weights are diverged or broken; expected a finite loss)`)
    }
    opts.onBatch?.(i + 1, loss)
    yield loss
  }
}
