// Sampling: generation with the key/value cache equals generation that recomputes the whole sequence for
// every token (greedy and seeded temperature/top-k/top-p), and pickToken's filters against direct counting.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { configFromJson } from '../../src/config.js'
import { GPT } from '../../src/model/gpt.js'
import { generate, generateUncached, pickToken } from '../../src/train/sample.js'
import { Rng } from '../../src/util/rng.js'
import { tinyModelJson } from './helpers.js'

/** A tiny model with weights 10x the usual scale, so its logits are far from uniform (no near-ties). */
function sharpModel(over: object): GPT {
  const config = configFromJson({ ...tinyModelJson, ...over }, 'test')
  const model = new GPT(new CpuBackend(), config, { maxBatch: 1, maxSeqLen: config.contextLength })
  model.initWeights(3)
  const p = model.getParams()
  for (const s of model.layout.specs) if (s.decay) for (let i = s.offset; i < s.offset + s.size; i++) p[i]! *= 10
  model.setParams(p)
  return model
}

const prompt = new Int32Array([5, 17, 42])
for (const [name, over] of [['variant (rope, GQA)', {}],
  ['gpt2 (learned positions)', { preset: 'tiny-gpt2', kvHeads: 4, mlpHidden: 128 }]] as const) {
  test(`cached generation equals uncached generation: ${name}`, () => {
    const model = sharpModel(over)
    for (const opts of [
      { maxTokens: 20, temperature: 0, topK: 0, topP: 1 },
      { maxTokens: 20, temperature: 1, topK: 0, topP: 1 },
      { maxTokens: 20, temperature: 0.8, topK: 10, topP: 0.9 },
    ]) {
      const cached = generate(model, prompt, opts, new Rng(11))
      const uncached = generateUncached(model, prompt, opts, new Rng(11))
      assert.deepEqual([...cached], [...uncached], JSON.stringify(opts))
      assert.equal(cached.length, 20)
    }
    // and up to the context length: 3 prompt tokens + 29 = 32
    const long = { maxTokens: 100, temperature: 1, topK: 0, topP: 1 }
    assert.deepEqual([...generate(model, prompt, long, new Rng(2))], [...generateUncached(model, prompt, long, new Rng(2))])
    assert.equal(generate(model, prompt, long, new Rng(2)).length, 29)
    // stopAt: both stop before the first such token drawn (a token of the unstopped sample), returning what came before
    const all = [...generate(model, prompt, long, new Rng(2))], stop = all[7]!
    const stopped = { ...long, stopAt: stop }
    assert.deepEqual([...generate(model, prompt, stopped, new Rng(2))], all.slice(0, all.indexOf(stop)))
    assert.deepEqual([...generateUncached(model, prompt, stopped, new Rng(2))], all.slice(0, all.indexOf(stop)))
  })
}

test('pickToken: greedy, top-k and top-p keep exactly the allowed tokens, with the right frequencies', () => {
  const logits = Float32Array.from([Math.log(0.5), Math.log(0.25), Math.log(0.15), Math.log(0.1)])
  assert.equal(pickToken(logits, { maxTokens: 1, temperature: 0, topK: 0, topP: 1 }, new Rng(1)), 0)
  const counts = (opts: { temperature: number; topK: number; topP: number }): number[] => {
    const rng = new Rng(9), c = [0, 0, 0, 0]
    for (let i = 0; i < 20_000; i++) c[pickToken(logits, { maxTokens: 1, ...opts }, rng)]!++
    return c.map(x => x / 20_000)
  }
  const near = (got: number[], want: number[]): void => {
    got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) < 0.015, `token ${i}: ${g.toFixed(3)} vs ${want[i]}`))
  }
  near(counts({ temperature: 1, topK: 0, topP: 1 }), [0.5, 0.25, 0.15, 0.1])
  near(counts({ temperature: 1, topK: 2, topP: 1 }), [2 / 3, 1 / 3, 0, 0])
  near(counts({ temperature: 1, topK: 0, topP: 0.8 }), [0.5 / 0.9, 0.25 / 0.9, 0.15 / 0.9, 0])   // 0.5+0.25 < 0.8 needs the third
  // temperature 0.5 squares the probabilities: 0.25, 0.0625, 0.0225, 0.01 (normalized by 0.345)
  near(counts({ temperature: 0.5, topK: 0, topP: 1 }), [0.25 / 0.345, 0.0625 / 0.345, 0.0225 / 0.345, 0.01 / 0.345])
  near(counts({ temperature: 1, topK: 0, topP: 0.95 }), [0.5, 0.25, 0.15, 0.1])   // 0.9 < 0.95: the nucleus is every token
  // greedy ties go to the lowest id, as torch.argmax and transformers' greedy search
  const tied = Float32Array.from([1, 3, 3, 0])
  assert.equal(pickToken(tied, { maxTokens: 1, temperature: 0, topK: 0, topP: 1 }, new Rng(1)), 1)
  assert.equal(pickToken(tied, { maxTokens: 1, temperature: 1, topK: 1, topP: 1 }, new Rng(1)), 1)
})

test('pickToken: top-k and top-p take the most likely tokens wherever they are in the vocabulary', () => {
  const logits = Float32Array.from([Math.log(0.1), Math.log(0.5), Math.log(0.15), Math.log(0.25)])
  const counts = (opts: { topK: number; topP: number }): number[] => {
    const rng = new Rng(5), c = [0, 0, 0, 0]
    for (let i = 0; i < 20_000; i++) c[pickToken(logits, { maxTokens: 1, temperature: 1, ...opts }, rng)]!++
    return c.map(x => x / 20_000)
  }
  const near = (got: number[], want: number[]): void => {
    got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) < 0.015, `token ${i}: ${g.toFixed(3)} vs ${want[i]}`))
  }
  near(counts({ topK: 2, topP: 1 }), [0, 2 / 3, 0, 1 / 3])
  near(counts({ topK: 0, topP: 0.8 }), [0, 0.5 / 0.9, 0.15 / 0.9, 0.25 / 0.9])   // 0.5 + 0.25 < 0.8: 0.15 joins
})

/** pickToken as first written: every id sorted by descending logit (stable: ties by id), then top-k, top-p. */
function pickTokenBySort(logits: Float32Array, o: { temperature: number; topK: number; topP: number }, rng: Rng): number {
  const ids = Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]!)
  if (o.topK > 0) ids.length = Math.min(ids.length, o.topK)
  const probs = ids.map(i => Math.exp((logits[i]! - logits[ids[0]!]!) / o.temperature))
  let total = probs.reduce((a, b) => a + b, 0), keep = ids.length
  if (o.topP < 1) { let cum = 0; for (keep = 0; cum < o.topP * total; keep++) cum += probs[keep]!; total = cum }
  let u = rng.uniform() * total
  for (let j = 0; j < keep; j++) { u -= probs[j]!; if (u < 0) return ids[j]! }
  return ids[keep - 1]!
}

test('pickToken draws what sorting every id draws (ties by id), and sorts only the kept ids, not the vocabulary', () => {
  const V = 50_257, init = new Rng(3), logits = new Float32Array(V)
  for (let i = 0; i < V; i++) logits[i] = Math.round(init.uniform() * 40) / 4   // 161 values: ties everywhere
  logits[17] = -0; logits[40_000] = 0
  const sort = Array.prototype.sort, sorted: number[] = []
  Array.prototype.sort = function (this: unknown[], cmp?: (a: unknown, b: unknown) => number) { sorted.push(this.length); return sort.call(this, cmp) } as typeof sort
  let got: number[]
  const cases = [{ topK: 200, topP: 1 }, { topK: 50, topP: 0.5 }, { topK: 0, topP: 0.01 }, { topK: 3000, topP: 1 }]
  try {
    got = cases.flatMap(o => { const r = new Rng(11); return Array.from({ length: 30 }, () => pickToken(logits, { maxTokens: 1, temperature: 0.7, ...o }, r)) })
  } finally { Array.prototype.sort = sort }
  const want = cases.flatMap(o => { const r = new Rng(11); return Array.from({ length: 30 }, () => pickTokenBySort(logits, { temperature: 0.7, ...o }, r)) })
  assert.deepEqual(got, want)
  assert.ok(Math.max(...sorted) <= 3000, `sorted arrays of up to ${Math.max(...sorted)} ids (the vocabulary is ${V})`)
})
