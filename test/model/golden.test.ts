// The model on the CPU backend against the independent PyTorch reference (reference/torch_reference.py):
// for every golden config, logits and loss, every parameter's gradient by name, and 10 AdamW steps with
// gradient accumulation, clipping and llm.c's schedule. The reference runs in float64, we in float32.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { GPT } from '../../src/model/gpt.js'
import { ParamLayout } from '../../src/model/params.js'
import { assertClose, closeReport, maxAbs } from './close.js'
import { goldenNames, loadGolden, trainGolden, type Golden } from './golden.js'

function makeModel(g: Golden): GPT {
  const model = new GPT(new CpuBackend(), g.config, { maxBatch: g.B, maxSeqLen: g.T })
  model.setParams(g.params)
  return model
}

for (const name of goldenNames()) {
  describe(`golden ${name}`, () => {
    const g = loadGolden(name)
    const V = g.config.vocabSize

    test('parameter layout equals the reference\'s', () => {
      const layout = new ParamLayout(g.config)
      assert.deepEqual(layout.specs.map(s => [s.name, s.shape, s.offset]), g.layout)
      assert.equal(layout.total, g.params.length)
    })

    test('forward: logits, per-position losses and mean loss', (t) => {
      const model = makeModel(g)
      const loss = model.forward(g.tokens, g.targets, g.B, g.T)
      const logits = model.lastLogits()
      t.diagnostic(`logits max|diff| ${closeReport(logits, g.logits, { atol: 0, rtol: 0 }).maxAbs.toExponential(2)}`)
      // the same math in float32 vs float64: measured ~3e-8 absolute on logits of O(0.5)
      assertClose('logits', logits, g.logits, { atol: 1e-5 * maxAbs(g.logits), rtol: 1e-5 })
      assertClose('losses', model.lastLosses(), g.losses, { atol: 1e-6, rtol: 1e-5 })
      assertClose('loss', [loss], [g.loss], { atol: 0, rtol: 1e-5 })
    })

    test('forward on a smaller batch (B=1, T<maxT) reuses the buffers and is causal', () => {
      const model = makeModel(g)
      const Tq = g.T - 5
      model.forward(g.tokens.subarray(0, Tq), null, 1, Tq)
      assertClose('logits[0, :T-5]', model.lastLogits(), g.logits.subarray(0, Tq * V), { atol: 1e-5 * maxAbs(g.logits), rtol: 1e-5 })
    })

    test('backward: the gradient of every parameter, by name', (t) => {
      const model = makeModel(g)
      model.zeroGrad()
      model.forward(g.tokens, g.targets, g.B, g.T)
      model.backward(1)
      const grads = model.getGrads()
      let worst = 0
      for (const [pname, , refOffset] of g.layout) {
        const spec = model.layout.get(pname)
        const ours = grads.subarray(spec.offset, spec.offset + spec.size)
        const ref = g.grads.subarray(refOffset, refOffset + spec.size)
        // float32 sums of many terms: the error scales with a tensor's largest entries (measured ~1e-7 of
        // max|ref|), so atol is 1e-5·max|ref| of that tensor, plus rtol 1e-4 for the large entries
        assertClose(`grad ${pname}`, ours, ref, { atol: 1e-5 * maxAbs(ref), rtol: 1e-4 })
        worst = Math.max(worst, closeReport(ours, ref, { atol: 0, rtol: 0 }).maxAbs / (maxAbs(ref) || 1))
      }
      t.diagnostic(`worst gradient error: ${worst.toExponential(2)} of the tensor's max|ref|`)
    })

    test('10 AdamW steps: losses, grad norms and final parameters', (t) => {
      const tr = g.train, model = makeModel(g)
      const { losses, norms, lrs, final } = trainGolden(model, g)
      assertClose('lrs', lrs, tr.lrs, { atol: 0, rtol: 1e-12 })
      t.diagnostic(`loss diff ${closeReport(losses, tr.losses, { atol: 0, rtol: 0 }).maxAbs.toExponential(2)}, ` +
        `norm diff ${closeReport(norms, tr.gradNorms, { atol: 0, rtol: 0 }).maxAbs.toExponential(2)}`)
      assert.ok(tr.gradNorms.filter(n => n > tr.gradClip).length >= tr.steps / 2, 'fixture: clipping should be active')
      // measured ~1e-7 relative after 10 steps; a weight-decay or clipping mistake moves them by ~1e-4
      assertClose('train losses', losses, tr.losses, { atol: 0, rtol: 1e-5 })
      assertClose('grad norms', norms, tr.gradNorms, { atol: 0, rtol: 1e-4 })
      for (const spec of model.layout.specs) {
        const v = final.subarray(spec.offset, spec.offset + spec.size)
        let sum = 0, sumSq = 0
        for (const x of v) { sum += x; sumSq += x * x }
        const [refSum, refSq] = tr.finalStats[spec.name]!
        // elementwise drift is ~1e-6 (measured), summed over <= 4096 elements
        assertClose(`final ${spec.name} sum, sum of squares`, [sum, sumSq], [refSum, refSq], { atol: 1e-3, rtol: 1e-4 })
      }
      if (g.paramsFinal !== null) {
        t.diagnostic(`final params max|diff| ${closeReport(final, g.paramsFinal, { atol: 0, rtol: 0 }).maxAbs.toExponential(2)}`)
        assertClose('final params', final, g.paramsFinal, { atol: 1e-5, rtol: 1e-4 })
      }
    })
  })
}
