// AdamW over the model's flat parameter buffer, with PyTorch semantics (torch.optim.AdamW + clip_grad_norm_).
// Moments m and v are flat buffers laid out like the parameters; one update call covers the whole buffer, with
// the layout specs that take no weight decay (norms and biases) passed as spans.

import type { Span, Tensor } from '../backend/backend.js'
import type { GPT } from '../model/gpt.js'
import { InputError } from '../util/errors.js'

export interface AdamWConfig { beta1: number; beta2: number; eps: number; weightDecay: number }


export class AdamW {
  readonly m: Tensor    // (layout.total) first moment
  readonly v: Tensor    // (layout.total) second moment
  step = 0              // optimizer steps taken so far (t of the last update)
  private readonly noDecay: Span[] = []   // adjacent specs without weight decay, merged

  constructor(readonly model: GPT, readonly cfg: AdamWConfig) {
    const be = model.backend, total = model.layout.total
    this.m = be.alloc(total)
    this.v = be.alloc(total)
    for (const s of model.layout.specs) {
      if (s.decay) continue
      const prev = this.noDecay[this.noDecay.length - 1]
      if (prev !== undefined && prev.offset + prev.length === s.offset) prev.length += s.size
      else this.noDecay.push({ offset: s.offset, length: s.size })
    }
  }

  /** Global L2 norm of model.grads (before clipping). */
  gradNorm(): number {
    return Math.sqrt(this.model.backend.sumSquares(this.model.grads))
  }

  /**
   * One update at learning rate lr. With gradClip > 0 the gradients are scaled by
   * min(1, gradClip / (gradNorm + 1e-6)) — torch.nn.utils.clip_grad_norm_'s clip_coef clamped at 1.
   * Weight decay (decoupled, lr·wd·param) only on layout specs with decay = true.
   */
  update(lr: number, opts: { gradClip: number; gradNorm: number }): void {
    const be = this.model.backend, { params, grads } = this.model
    const gradScale = opts.gradClip > 0 ? Math.min(1, opts.gradClip / (opts.gradNorm + 1e-6)) : 1
    this.step++
    be.adamwUpdate(params, grads, this.m, this.v, { lr, beta1: this.cfg.beta1, beta2: this.cfg.beta2, eps: this.cfg.eps,
      weightDecay: this.cfg.weightDecay, noDecay: this.noDecay, step: this.step, gradScale })
  }

  getState(): { m: Float32Array; v: Float32Array; step: number } {
    const be = this.model.backend
    return { m: be.download(this.m), v: be.download(this.v), step: this.step }
  }

  setState(s: { m: Float32Array; v: Float32Array; step: number }): void {
    const total = this.model.layout.total
    if (s.m.length !== total || s.v.length !== total) {
      throw new InputError(`optimizer: state has ${s.m.length}/${s.v.length} floats for m/v, ` +
        `the model has ${total} parameters (checkpoint of another model?)`)
    }
    const be = this.model.backend
    be.upload(this.m, s.m)
    be.upload(this.v, s.v)
    this.step = s.step
  }
}
