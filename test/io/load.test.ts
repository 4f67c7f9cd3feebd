// resolveModel: every form `--model` / `--init-from` accept (preset, our config JSON, an HF config.json, an HF
// directory, a checkpoint or run directory) resolves to the right config and weights, and the rest fails clearly.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { configFromJson, presetConfig } from '../../src/config.js'
import { loadHfDir } from '../../src/io/hf.js'
import { checkModelFits, MAX_PARAMS, moveWeightsInto, resolveModel } from '../../src/model/load.js'
import { ParamLayout } from '../../src/model/params.js'
import { checkpointName, writeCheckpoint } from '../../src/train/checkpoint.js'
import { InputError } from '../../src/util/errors.js'
import { Rng } from '../../src/util/rng.js'

const fixture = (name: string): string => resolve(process.cwd(), 'test/fixtures', name)
const root = mkdtempSync(join(tmpdir(), 'llmts-load-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

test('presets and config files resolve to configs without weights', () => {
  const p = resolveModel('tiny-gpt2')
  assert.deepEqual([p.config, p.params, p.source], [presetConfig('tiny-gpt2'), undefined, 'preset tiny-gpt2'])
  const ours = join(root, 'ours.json')
  writeFileSync(ours, JSON.stringify({ preset: 'tiny-variant', layers: 2 }))
  assert.equal(resolveModel(ours).config.layers, 2)
  const hfConfig = resolveModel(join(fixture('hf-llama'), 'config.json'))
  assert.deepEqual([hfConfig.config, hfConfig.params], [loadHfDir(fixture('hf-llama')).config, undefined])
})

test('HF directories, checkpoints and run directories resolve with their weights', () => {
  const hf = resolveModel(fixture('hf-gpt2'))
  assert.ok(hf.params !== undefined)
  assert.deepEqual([hf.source, resolveModel(undefined, { initFrom: fixture('hf-gpt2') }).source],
    Array(2).fill(`Hugging Face directory ${fixture('hf-gpt2')}`))
  const config = configFromJson({ preset: 'tiny-variant', vocabSize: 96, contextLength: 16, layers: 1, channels: 32, heads: 4,
    kvHeads: 2, mlpHidden: 64 }, 'test')
  const rng = new Rng(5)
  const params = Float32Array.from({ length: new ParamLayout(config).total }, () => rng.normal())
  const ck = join(root, 'run', 'checkpoints', checkpointName(2))
  writeCheckpoint(ck, {
    modelConfig: config, trainConfig: null, params, optimizer: null,
    progress: { step: 2, loader: null, rng: new Rng(1).state(), valLoss: null, bestValLoss: null },
  })
  for (const spec of [ck, join(root, 'run')]) {
    const r = resolveModel(spec)
    assert.deepEqual(r.config, config)
    assert.deepEqual(r.params, params)
    // --init-from takes what train's does: the same weights, and a weightless spec beside it must match
    const init = resolveModel(undefined, { initFrom: spec })
    assert.deepEqual([init.config, init.params, init.path], [config, params, ck])
    // the logs' label: the same checkpoint gets the same words whichever flag named it
    assert.deepEqual([r.source, init.source], [`checkpoint ${ck} (step 2)`, `checkpoint ${ck} (step 2)`], spec)
    const same = join(root, 'same.json')
    writeFileSync(same, JSON.stringify(config))
    assert.deepEqual(resolveModel(same, { initFrom: spec }).params, params)
    assert.throws(() => resolveModel('tiny-variant', { initFrom: spec }), /preset tiny-variant and --init-from .* differ: vocabSize 50257 vs 96/)
  }
})

test('--init-from takes the HF weights; a spec beside it must match and must not have weights', () => {
  const both = resolveModel(join(fixture('hf-llama'), 'config.json'), { initFrom: fixture('hf-llama') })
  assert.deepEqual(both.params, loadHfDir(fixture('hf-llama')).params)
  assert.equal(resolveModel(undefined, { initFrom: fixture('hf-gpt2') }).config.norm, 'layernorm')
  assert.throws(() => resolveModel('tiny-variant', { initFrom: fixture('hf-llama') }),
    /preset tiny-variant and --init-from .* differ: vocabSize 50257 vs 96, paddedVocabSize 50304 vs 128, contextLength 1024 vs 32/)
  assert.throws(() => resolveModel(fixture('hf-gpt2'), { initFrom: fixture('hf-gpt2') }), /would replace the weights/)
})

test('what is not a model fails with a hint', () => {
  const empty = join(root, 'empty')
  mkdirSync(empty)
  assert.throws(() => resolveModel(empty), (e: Error) => e instanceof InputError && e.message ===
    `model: directory ${empty} is neither a run directory (checkpoints/, best/), a checkpoint (state.json) nor a Hugging Face directory (config.json)`)
  const shards = join(root, 'shards')
  mkdirSync(shards)
  writeFileSync(join(shards, 'x_val_000000.bin'), '')
  assert.throws(() => resolveModel(shards), /nor a Hugging Face directory \(config\.json\); it holds token shards \(\*\.bin\): those go in --data$/)
  assert.throws(() => resolveModel('gpt3-175b'), /"gpt3-175b" is neither a preset \(gpt2-124m, .*\) nor an existing file/)
  const notJson = join(root, 'x.json')
  writeFileSync(notJson, '{oops')
  assert.throws(() => resolveModel(notJson), /x\.json is not a JSON config file/)
  const twice = join(root, 'twice.json')
  writeFileSync(twice, '{"preset": "tiny-gpt2",\n "layers": 1,\n "layers": 2}')
  assert.throws(() => resolveModel(twice), /^InputError: model: .*twice\.json: key "layers" appears twice in one object \(lines 2 and 3\); expected each key once$/)
  assert.throws(() => resolveModel(undefined), /no model given/)
  const half = join(root, 'half-checkpoint')
  mkdirSync(half)
  writeFileSync(join(half, 'state.json'), '{}')
  assert.throws(() => resolveModel(half), /half-checkpoint has a state\.json but no model\.safetensors/)
  const weights = join(root, 'model.safetensors')
  writeFileSync(weights, Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d]))
  assert.throws(() => resolveModel(weights), /model\.safetensors is a weights or data file, not a config; give the directory that holds the weights/)
  const binary = join(root, 'binary.json')
  writeFileSync(binary, Buffer.from([0x48, 0, 0, 0, 7, 0x1b, 0x5b, 0x32, 0x4a]))
  assert.throws(() => resolveModel(binary), (e: Error) => /binary\.json is not a JSON config file/.test(e.message) && !/[\x00-\x1f]/.test(e.message))
})

test('a model too large for the machine or for one float32 buffer is refused before any allocation', () => {
  const huge = { ...presetConfig('tiny-gpt2'), contextLength: 1_000_000_000 }
  assert.throws(() => checkModelFits('llmts export', huge, 4, 'its weights'),
    /^InputError: llmts export: the model has [\d,]+ parameters and needs at least [\d.]+ GiB for its weights; this machine has [\d.]+ GiB/)
  const over = { ...presetConfig('gpt2-124m'), layers: 700 }   // 700 · 7.1M + 39.4M parameters
  assert.ok(new ParamLayout(over).total > MAX_PARAMS)
  assert.throws(() => checkModelFits('llmts sample', over, 0, 'its weights'),
    /llmts sample: the model has [\d,]+ parameters, more than the 4,294,967,295 llm\.ts holds/)
  checkModelFits('llmts sample', presetConfig('gpt2-124m'), 4, 'its weights')
})

test('moveWeightsInto gives the model the checkpoint\'s weights and drops the resolved array (one copy, not two, while a command runs)', () => {
  const config = configFromJson({ preset: 'tiny-gpt2', vocabSize: 96, contextLength: 16, layers: 1, channels: 32, heads: 4 }, 'test')
  const rng = new Rng(9)
  const params = Float32Array.from({ length: new ParamLayout(config).total }, () => rng.normal())
  const ck = join(root, 'move', checkpointName(1))
  writeCheckpoint(ck, { modelConfig: config, trainConfig: null, params, optimizer: null,
    progress: { step: 1, loader: null, rng: new Rng(1).state(), valLoss: null, bestValLoss: null } })
  const m = resolveModel(ck), given: Float32Array[] = []
  assert.equal(moveWeightsInto({ setParams: p => given.push(p.slice()) }, m), true)
  assert.deepEqual(given, [params])
  assert.equal(m.params, undefined)
  assert.equal(m.source, `checkpoint ${ck} (step 1)`)   // the labels stay
  assert.equal(moveWeightsInto({ setParams: () => assert.fail('a preset has no weights') }, resolveModel('tiny-gpt2')), false)
})
