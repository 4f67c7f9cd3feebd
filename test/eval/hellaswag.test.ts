// HellaSwag scoring against reference/hellaswag_reference.py (PyTorch, its own BPE and preprocessing, Python's
// random for the harness's few-shot draw):
// per-ending log-likelihoods, predictions, acc/acc_norm and standard errors for harness 0-shot, harness 2-shot
// (prompts cut from the left to the 64-token window) and llmc 0-shot, on test/fixtures/hellaswag/.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { CpuBackend } from '../../src/backend/cpu/index.js'
import { GPT } from '../../src/model/gpt.js'
import { encode } from '../../src/tokenizer.js'
import { readHellaswagFile } from '../../src/eval/hellaswag-data.js'
import { buildRows, drawHarnessShots, harnessContext, type HellaswagScoring } from '../../src/eval/hellaswag-prompt.js'
import { longestInput, packRows, prepareHellaswag, scoreHellaswag, scorePrepared } from '../../src/eval/hellaswag.js'
import { InputError } from '../../src/util/errors.js'
import { HELLASWAG_TEST_CONFIG, HELLASWAG_WEIGHT_SEED, hellaswagTestParams } from './hellaswag-model.js'

const dir = resolve(process.cwd(), 'test/fixtures/hellaswag')
const val = readHellaswagFile(resolve(dir, 'val.jsonl'))
const train = readHellaswagFile(resolve(dir, 'train.jsonl'))

interface ExpectedExample {
  context?: string; shotIndices?: number[]; ctxTokens: number[]; contTokens: number[][]
  scores: number[]; normScores: number[]; pred: number; predNorm: number; label: number
}
interface ExpectedCase {
  name: string; scoring: HellaswagScoring; shots: number; seed: number; window: number; count: number
  acc: number; accStderr: number; accNorm: number; accNormStderr: number; examples: ExpectedExample[]
}
const expected = JSON.parse(readFileSync(resolve(dir, 'expected.json'), 'utf8')) as {
  weightSeed: number; config: unknown; minScoreGap: number; cases: ExpectedCase[]
}

// float32 forward vs float64 reference: measured |error| <= 2.4e-6 on sums of ~10.8-per-token losses (|score| up
// to ~500); the tolerance is ~10x that, and the fixture's closest two endings differ by more than 10 x ATOL.
const ATOL = 2e-5, RTOL = 1e-7

function assertClose(actual: number[], want: number[], what: string): void {
  let worst = -1, worstErr = 0
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(actual[i]! - want[i]!) - (ATOL + RTOL * Math.abs(want[i]!))
    if (err > worstErr) { worst = i; worstErr = err }
  }
  assert.ok(worst < 0, `${what}: ending ${worst} is ${actual[worst]}, reference ${want[worst]}`)
}

test('fixtures match the reference run: same config, same weight seed, meaningful gaps', () => {
  assert.deepEqual(expected.config, HELLASWAG_TEST_CONFIG)
  assert.equal(expected.weightSeed, HELLASWAG_WEIGHT_SEED)
  assert.ok(expected.minScoreGap > 10 * ATOL, `the reference's closest endings differ by ${expected.minScoreGap}`)
  assert.equal(val.length, 6)
  // the fixtures exercise what they claim to: a context with a trailing space and a truncated few-shot prompt
  const zero = expected.cases.find(c => c.name === 'harness-0shot')!
  assert.ok(zero.examples.some(e => e.context!.endsWith(' ')), 'one harness context ends with a space')
  const two = expected.cases.find(c => c.name === 'harness-2shot')!
  assert.ok(two.examples.every(e => e.ctxTokens.length + e.contTokens[0]!.length > two.window + 1), 'every 2-shot row is cut from the left')
})

test('prompt construction: harness contexts, few-shot draws (Python\'s random) and token rows equal the reference', () => {
  for (const c of expected.cases) {
    const draws = drawHarnessShots(train, val, c.shots, c.seed)
    c.examples.forEach((want, i) => {
      const ex = val[i]!
      const fewshot = draws[i]!.map(j => train[j]!)
      if (c.scoring === 'harness') {
        assert.deepEqual(draws[i], want.shotIndices, `${c.name} example ${i} shots`)
        assert.equal(harnessContext(ex, fewshot), want.context, `${c.name} example ${i} context`)
      }
      const rows = buildRows(ex, { scoring: c.scoring, encode, fewshot })
      for (let e = 0; e < 4; e++) {
        assert.deepEqual(rows[e]!.ctx, want.ctxTokens, `${c.name} example ${i} ending ${e} context tokens`)
        assert.deepEqual(rows[e]!.cont, want.contTokens[e], `${c.name} example ${i} ending ${e} continuation tokens`)
      }
    })
  }
})

test('scores, predictions, acc/acc_norm and standard errors equal the PyTorch reference', async () => {
  const model = new GPT(new CpuBackend(), HELLASWAG_TEST_CONFIG, { maxBatch: 4, maxSeqLen: HELLASWAG_TEST_CONFIG.contextLength })
  model.setParams(hellaswagTestParams())
  for (const c of expected.cases) {
    let progress = 0
    const r = await scoreHellaswag(model, val, {
      scoring: c.scoring, shots: c.shots, train, seed: c.seed, window: c.window, keepExamples: true,
      onProgress: (done, total) => { progress = done; assert.equal(total, 6) },
    })
    assert.equal(progress, 6)
    assert.equal(r.scoring, c.scoring)
    assert.equal(r.shots, c.shots)
    assert.equal(r.count, c.count)
    r.examples!.forEach((got, i) => {
      const want = c.examples[i]!
      assertClose(got.scores, want.scores, `${c.name} example ${i} scores`)
      assertClose(got.normScores, want.normScores, `${c.name} example ${i} normalized scores`)
      assert.equal(got.pred, want.pred, `${c.name} example ${i} acc prediction`)
      assert.equal(got.predNorm, want.predNorm, `${c.name} example ${i} acc_norm prediction`)
      assert.equal(got.label, want.label)
    })
    for (const k of ['acc', 'accStderr', 'accNorm', 'accNormStderr'] as const) {
      assert.ok(Math.abs(r[k] - c[k]) < 1e-12, `${c.name} ${k}: ${r[k]} vs reference ${c[k]}`)
    }
  }
})

test('non-finite log-likelihoods are refused (an argmax over NaN would count an ending at random), or counted wrong', async () => {
  const model = new GPT(new CpuBackend(), HELLASWAG_TEST_CONFIG, { maxBatch: 4, maxSeqLen: HELLASWAG_TEST_CONFIG.contextLength })
  model.setParams(hellaswagTestParams().fill(NaN))   // diverged weights: every score NaN
  await assert.rejects(scoreHellaswag(model, val, { scoring: 'harness', shots: 0 }),
    (e: Error) => e instanceof InputError && /example 0: the model's log-likelihoods of its endings are NaN, NaN, NaN, NaN/.test(e.message))
  const r = await scoreHellaswag(model, val, { scoring: 'harness', shots: 0, nonFinite: 'wrong', keepExamples: true })
  assert.equal(r.count, 6)
  assert.deepEqual([r.acc, r.accNorm], [0, 0])
  assert.ok(r.examples!.every(x => x.pred === -1 && x.predNorm === -1))
})

test('tied scores go to the first ending, as numpy\'s and torch\'s argmax do (the harness and llm.c)', async () => {
  const model = new GPT(new CpuBackend(), HELLASWAG_TEST_CONFIG, { maxBatch: 4, maxSeqLen: HELLASWAG_TEST_CONFIG.contextLength })
  model.setParams(hellaswagTestParams())
  const same = { ...val[0]!, endings: Array(4).fill(val[0]!.endings[0]!), label: 3 }   // four equal endings: four equal scores
  for (const scoring of ['harness', 'llmc'] as const) {
    const r = await scoreHellaswag(model, [same], { scoring, shots: 0, keepExamples: true })
    assert.equal(new Set(r.examples![0]!.scores).size, 1, 'the scores tie')
    assert.deepEqual([r.examples![0]!.pred, r.examples![0]!.predNorm], [0, 0], scoring)
  }
})

test('the shared-prefix path (context once through the cache, then the 4 remainders) gives the scores of one (4, T) forward per example', async () => {
  const model = new GPT(new CpuBackend(), HELLASWAG_TEST_CONFIG, { maxBatch: 4, maxSeqLen: HELLASWAG_TEST_CONFIG.contextLength })
  model.setParams(hellaswagTestParams())
  const prefixes: number[] = []
  const decodeShared = model.decodeShared.bind(model)
  model.decodeShared = (cache, tokens, Tq) => { prefixes.push(Tq); decodeShared(cache, tokens, Tq) }
  for (const c of expected.cases) {
    const prepared = await prepareHellaswag(val, { scoring: c.scoring, shots: c.shots, train, seed: c.seed })
    prefixes.length = 0
    const r = scorePrepared(model, prepared, { scoring: c.scoring, shots: c.shots, window: c.window, keepExamples: true,
      method: 'shared-prefix' })
    prepared.forEach(({ rows }, i) => {
      // the old path, written out: one forward of the packed rows, losses summed over each ending's targets
      const { inputs, targets, T } = packRows(rows, c.window)
      model.forward(inputs, targets, 4, T)
      const losses = model.lastLosses()
      const want = rows.map((_, b) => -losses.subarray(b * T, (b + 1) * T).reduce((s, x) => s + x, 0))
      const got = r.examples![i]!.scores
      // the same float32 ops on other row counts: measured equal bit for bit 0-shot, within 1e-6 2-shot
      want.forEach((w, b) => assert.ok(Math.abs(got[b]! - w) <= 1e-5, `${c.name} example ${i} ending ${b}: ${got[b]} vs forward ${w}`))
      assert.equal(r.examples![i]!.pred, want.indexOf(Math.max(...want)), `${c.name} example ${i} prediction`)
    })
    // the context really is shared: untruncated rows share all of it but the last token (which predicts the ending)
    if (c.shots === 0) assert.deepEqual(prefixes, prepared.map(p => p.rows[0]!.ctx.length - 1), `${c.name} prefix lengths`)
  }
})

test('packed (several examples a pass, decodePacked) gives the unbatched path\'s scores, acc and acc_norm, in groups of ' +
  'batchExamples within the pass\'s row budget', async () => {
  const groups: string[][] = []   // per pass, per example: its prefix + the rest's length
  const model = (kernels: 'js' | 'auto'): GPT => {
    const m = new GPT(new CpuBackend({ kernels }), HELLASWAG_TEST_CONFIG, { maxBatch: 1, maxSeqLen: 1, mode: 'inference' })
    m.setParams(hellaswagTestParams())
    const decodePacked = m.decodePacked.bind(m)
    m.decodePacked = (pool, gs) => { groups.push(gs.map(g => `${g.prefix.length}+${g.T}`)); return decodePacked(pool, gs) }
    return m
  }
  const blas = model('auto')
  for (const c of expected.cases) {
    const prepared = await prepareHellaswag(val, { scoring: c.scoring, shots: c.shots, train, seed: c.seed })
    const opts = { scoring: c.scoring, shots: c.shots, window: c.window, keepExamples: true }
    const unbatched = scorePrepared(blas, prepared, { ...opts, method: 'shared-prefix' })
    // batchExamples, passRows -> the group sizes they must give the 6 examples. 4·T of the examples: harness 0-shot
    // 112 172 104 156 116 200, llmc 96 208 92 172 104 232 (both [3, 2, 1] in 400 rows), 2-shot cut to 4·64 each
    assert.deepEqual(prepared.map(p => 4 * Math.min(c.window, longestInput([p]))), { 'harness-0shot': [112, 172, 104, 156, 116, 200],
      'llmc-0shot': [96, 208, 92, 172, 104, 232] }[c.name] ?? Array(6).fill(256), c.name)
    const plans: [number, number | undefined, number[]][] = [[1, undefined, [1, 1, 1, 1, 1, 1]], [4, undefined, [4, 2]],
      [100, undefined, [6]], [100, 400, c.shots === 0 ? [3, 2, 1] : [1, 1, 1, 1, 1, 1]], [100, 1, [1, 1, 1, 1, 1, 1]]]
    let mixed = false
    for (const [batchExamples, passRows, sizes] of plans) {
      const what = `${c.name}, ${batchExamples} a pass, ${passRows ?? 'default'} rows`
      groups.length = 0
      let progress = 0
      const r = scorePrepared(blas, prepared, { ...opts, batchExamples, ...(passRows !== undefined ? { passRows } : {}),
        onProgress: (done) => { assert.equal(done, ++progress, `${what}: progress`) } })
      assert.equal(progress, 6)
      assert.deepEqual(groups.map(g => g.length), sizes, `${what}: group sizes`)
      mixed ||= groups.some(g => new Set(g).size > 1)
      // BLAS may round a row's matmul outputs differently in a bigger matmul: measured <= 1e-6 (a loss 1 ulp apart)
      r.examples!.forEach((e, i) => e.scores.forEach((x, b) => assert.ok(Math.abs(x - unbatched.examples![i]!.scores[b]!) <= 1e-5,
        `${what}: example ${i} ending ${b}: ${x} vs ${unbatched.examples![i]!.scores[b]} unbatched`)))
      assert.deepEqual(r.examples!.map(e => [e.pred, e.predNorm]), unbatched.examples!.map(e => [e.pred, e.predNorm]), what)
      assert.deepEqual([r.acc, r.accNorm, r.accStderr, r.accNormStderr], [unbatched.acc, unbatched.accNorm, unbatched.accStderr,
        unbatched.accNormStderr], what)
    }
    // 2-shot rows are all cut to the 64-token window, from the left: no common prefix, the same length
    if (c.shots === 0) assert.ok(mixed, `${c.name}: examples of different lengths shared a pass`)
  }
  // float64 sums per matmul output (js kernels) whatever the row count: the same float32 losses, the same scores
  const js = model('js'), c = expected.cases[0]!
  const prepared = await prepareHellaswag(val, { scoring: c.scoring, shots: c.shots })
  const opts = { scoring: c.scoring, shots: c.shots, window: c.window, keepExamples: true }
  assert.deepEqual(scorePrepared(js, prepared, { ...opts, batchExamples: 4 }), scorePrepared(js, prepared, { ...opts, method: 'shared-prefix' }))
  await assert.rejects(scoreHellaswag(js, val, { scoring: 'llmc', shots: 0, batchExamples: 0 }), /batch of 0 examples, expected a positive integer/)
})
