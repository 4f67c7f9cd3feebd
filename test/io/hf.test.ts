// Hugging Face import/export of weights and configs against the fixtures written by reference/hf_fixtures.py
// (PyTorch, HF tensor names and layouts): export must reproduce the reference's tensors bit for bit, import
// then export must round-trip exactly, and every malformed directory must fail naming the tensor and shapes.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { presetConfig, type ModelConfig } from '../../src/config.js'
import { configFromHfJson, hfConfigJson } from '../../src/io/hf-config.js'
import { exportHf, loadHfDir } from '../../src/io/hf.js'
import type { WriteTensor } from '../../src/io/safetensors.js'
import { readSafetensors, writeSafetensors } from '../helpers/safetensors.js'
import { initParams, ParamLayout } from '../../src/model/params.js'
import { InputError } from '../../src/util/errors.js'

const fixture = (name: string): string => resolve(process.cwd(), 'test/fixtures', name)
const FIXTURES = ['hf-llama', 'hf-gpt2', 'hf-llama-bf16']

function tempDir(t: { after(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'llmts-hf-'))
  t.after(() => rmSync(d, { recursive: true, force: true }))
  return d
}

/** Copies a fixture, then rewrites its model.safetensors through `edit` (a list of tensors to write). */
function editedFixture(t: { after(fn: () => void): void }, name: string, edit: (ts: WriteTensor[]) => WriteTensor[]): string {
  const d = tempDir(t)
  cpSync(fixture(name), d, { recursive: true })
  const f = readSafetensors(join(d, 'model.safetensors'))
  const ts: WriteTensor[] = [...f.tensors].map(([n, e]) => ({ name: n, dtype: e.dtype, shape: e.shape, data: e.bytes.slice() }))
  writeSafetensors(join(d, 'model.safetensors'), edit(ts), { format: 'pt' })
  return d
}

test('import maps config.json to the architecture of each fixture', () => {
  const llama = loadHfDir(fixture('hf-llama')).config
  assert.deepEqual(
    [llama.norm, llama.positions, llama.mlp, llama.heads, llama.kvHeads, llama.mlpHidden, llama.tiedEmbeddings, llama.vocabSize,
      llama.paddedVocabSize],
    ['rmsnorm', 'rope', 'swiglu', 4, 2, 64, false, 96, 128])
  const gpt2 = loadHfDir(fixture('hf-gpt2')).config
  assert.deepEqual(
    [gpt2.norm, gpt2.positions, gpt2.mlp, gpt2.kvHeads, gpt2.mlpHidden, gpt2.attnBias, gpt2.mlpBias, gpt2.tiedEmbeddings, gpt2.contextLength],
    ['layernorm', 'learned', 'gelu', 4, 128, true, true, true, 32])
})

for (const name of FIXTURES) {
  test(`${name}: export writes the reference's tensors exactly, and import -> export -> import is the identity`, t => {
    const { config, params } = loadHfDir(fixture(name))
    const layout = new ParamLayout(config)
    const wte = layout.get('wte')
    const padStart = wte.offset + config.vocabSize * config.channels
    assert.ok(params.subarray(padStart, wte.offset + wte.size).every(v => v === 0), 'padded vocabulary rows must be zero')
    const bf16 = name.endsWith('bf16')
    const out = tempDir(t)
    exportHf(out, config, params, { dtype: bf16 ? 'bf16' : 'f32', tokenizer: 'none' })
    const ref = readSafetensors(join(fixture(name), 'model.safetensors'))
    const ours = readSafetensors(join(out, 'model.safetensors'))
    assert.deepEqual([...ours.tensors.keys()].sort(), [...ref.tensors.keys()].sort(), 'tensor names')
    for (const [n, e] of ref.tensors) {
      const o = ours.tensors.get(n)!
      assert.deepEqual([o.dtype, o.shape], [e.dtype, e.shape], n)
      assert.ok(Buffer.from(o.bytes).equals(Buffer.from(e.bytes)), `${n}: bytes differ from the reference`)
    }
    assert.equal(ours.metadata['format'], 'pt')
    const again = loadHfDir(out)
    assert.deepEqual(again.config, config)
    assert.ok(Buffer.from(again.params.buffer).equals(Buffer.from(params.buffer)), 'params after a round trip')
  })
}

test('bf16 export rounds each weight to the nearest bf16 (relative error <= 2^-8, low 16 bits zero)', t => {
  const { config, params } = loadHfDir(fixture('hf-llama'))
  const out = tempDir(t)
  exportHf(out, config, params, { dtype: 'bf16', tokenizer: 'none' })
  const back = loadHfDir(out).params
  let worst = 0, at = -1
  for (let i = 0; i < params.length; i++) {
    const err = Math.abs(back[i]! - params[i]!) / Math.max(Math.abs(params[i]!), 1e-30)
    if (params[i] !== 0 && err > worst) { worst = err; at = i }
  }
  assert.ok(worst <= 2 ** -8, `worst relative error ${worst} at ${at}: ${params[at]} -> ${back[at]}`)
  assert.ok(worst > 2 ** -10, 'bf16 must actually round')
  assert.ok(new Uint32Array(back.buffer).every(u => (u & 0xffff) === 0), 'every imported value is a bf16 number')
  assert.equal(readSafetensors(join(out, 'model.safetensors')).tensors.get('model.norm.weight')!.dtype, 'BF16')
})

test('config.json round-trips every HF-expressible preset and names what HF cannot express', () => {
  for (const name of ['tiny-gpt2', 'tiny-variant', 'gpt2-124m', 'variant-124m', 'variant-350m']) {
    const c = presetConfig(name)
    const json = hfConfigJson(c, 'bf16')
    assert.deepEqual(configFromHfJson(JSON.parse(JSON.stringify(json)), name).config, c, name)
    assert.equal(json['vocab_size'], 50257)
    assert.equal(json['torch_dtype'], 'bfloat16')
  }
  // every value config.json carries, away from the presets' (all 1e-5, theta 10,000, tied): each must come back
  for (const c of [{ ...presetConfig('tiny-gpt2'), normEps: 1e-6, contextLength: 77, mlpHidden: 320, tiedEmbeddings: false },
    { ...presetConfig('tiny-variant'), normEps: 1e-6, ropeTheta: 500_000, kvHeads: 2, contextLength: 300, tiedEmbeddings: false }]) {
    const json = JSON.parse(JSON.stringify(hfConfigJson(c, 'f32')))
    assert.deepEqual(configFromHfJson(json, 'edited').config, c)
  }
  const mixed: ModelConfig = { ...presetConfig('tiny-gpt2'), positions: 'rope' }
  assert.throws(() => hfConfigJson(mixed, 'f32'), /cannot export.*positions=rope/)
  const gqaGpt2: ModelConfig = { ...presetConfig('tiny-gpt2'), kvHeads: 4 }
  assert.throws(() => hfConfigJson(gqaGpt2, 'f32'), /grouped-query/)
  const noBias: ModelConfig = { ...presetConfig('tiny-gpt2'), mlpBias: false }
  assert.throws(() => exportHf('/nonexistent', noBias, new Float32Array(0), { dtype: 'f32' }), InputError)
})

test('tied Llama export writes no lm_head; an untied one does', t => {
  const tied = presetConfig('tiny-variant')
  const small: ModelConfig = { ...tied, layers: 1, channels: 64, heads: 4, kvHeads: 2, mlpHidden: 128 }
  for (const tiedEmbeddings of [true, false]) {
    const c = { ...small, tiedEmbeddings }
    const layout = new ParamLayout(c)
    const params = new Float32Array(layout.total)
    initParams(layout, params, 7)
    const out = tempDir(t)
    exportHf(out, c, params, { dtype: 'f32', tokenizer: 'none' })
    const tensors = readSafetensors(join(out, 'model.safetensors')).tensors, names = [...tensors.keys()]
    assert.equal(names.includes('lm_head.weight'), !tiedEmbeddings)
    // the parameter count we report is what transformers counts: the exported tensors (real vocabulary rows only)
    const exported = [...tensors.values()].reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0)
    assert.equal(layout.countReal(), exported, `tied ${tiedEmbeddings}`)
    assert.deepEqual(readSafetensors(join(out, 'model.safetensors')).tensors.get('model.embed_tokens.weight')!.shape, [50257, 64])
    assert.ok(Buffer.from(loadHfDir(out).params.buffer).equals(Buffer.from(params.buffer)))
  }
})

test('missing, mismatched and unexpected tensors are named with their shapes', t => {
  const missing = editedFixture(t, 'hf-llama', ts => ts.filter(x => x.name !== 'model.layers.1.mlp.up_proj.weight'))
  assert.throws(() => loadHfDir(missing), (e: Error) => e instanceof InputError &&
    /missing tensor model\.layers\.1\.mlp\.up_proj\.weight \(expected shape \[64,32\]\)/.test(e.message))
  const wrong = editedFixture(t, 'hf-gpt2', ts => ts.map(x => x.name === 'transformer.h.0.attn.c_attn.weight'
    ? { ...x, shape: [96, 32] } : x))
  // named once, as mismatched: not a second time as an unexpected tensor
  assert.throws(() => loadHfDir(wrong), { message: `hf: ${wrong}: tensor transformer.h.0.attn.c_attn.weight has shape [96,32], ` +
    'config.json implies [32,96]' })
  const extra = editedFixture(t, 'hf-llama', ts => [...ts, { name: 'model.layers.9.foo', dtype: 'F32', shape: [2], data: new Float32Array(2) }])
  assert.throws(() => loadHfDir(extra), /unexpected tensor model\.layers\.9\.foo with shape \[2\]/)
  const ints = editedFixture(t, 'hf-llama', ts => ts.map(x => x.name === 'model.norm.weight' ? { ...x, dtype: 'I32' } : x))
  assert.throws(() => loadHfDir(ints), /model\.norm\.weight is I32, expected a float type/)
  // the message names 5 problems and counts the rest: 6 missing -> '; and 1 more', 5 -> no count
  const six = ['q_proj', 'k_proj', 'v_proj', 'o_proj'].map(n => `model.layers.1.self_attn.${n}.weight`)
    .concat(['gate_proj', 'up_proj'].map(n => `model.layers.1.mlp.${n}.weight`))
  for (const n of [6, 5]) {
    const dir = editedFixture(t, 'hf-llama', ts => ts.filter(x => !six.slice(0, n).includes(x.name)))
    assert.throws(() => loadHfDir(dir), (e: Error) => (e.message.match(/missing tensor/g) ?? []).length === 5 &&
      e.message.endsWith(n === 6 ? '; and 1 more' : ')'), `${n} missing`)
  }
})

test('sizes in config.json that its tensors do not have are refused before any allocation', t => {
  // each would ask for a buffer of billions of floats (a RangeError, "internal error") if trusted before the shapes
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['hf-gpt2', { n_positions: 2e9 }, /tensor transformer\.wpe\.weight has shape \[32,32\], config\.json implies \[2000000000,32\]/],
    ['hf-gpt2', { n_embd: 2e9 }, /tensor transformer\.wte\.weight has shape \[96,32\], config\.json implies \[96,2000000000\]/],
    ['hf-llama', { vocab_size: 2e9 }, /tensor model\.embed_tokens\.weight has shape \[96,32\], config\.json implies \[2000000000,32\]/],
    ['hf-llama', { intermediate_size: 2e9 }, /tensor model\.layers\.0\.mlp\.gate_proj\.weight has shape \[64,32\], config\.json implies/],
  ]
  for (const [name, edit, want] of cases) {
    const d = tempDir(t)
    cpSync(fixture(name), d, { recursive: true })
    const path = join(d, 'config.json')
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), ...edit }))
    assert.throws(() => loadHfDir(d), (e: Error) => e instanceof InputError && want.test(e.message), JSON.stringify(edit))
  }
})

test('a NaN or infinite weight is refused, naming the tensor and index', t => {
  const poison = (tensor: string, index: number, value: number) => (ts: WriteTensor[]): WriteTensor[] => ts.map(x => {
    if (x.name !== tensor) return x
    const bytes = Uint8Array.from(x.data as Uint8Array), view = new DataView(bytes.buffer)   // a copy of its own
    if (x.dtype === 'F32') view.setFloat32(index * 4, value, true)
    else view.setUint16(index * 2, new Uint32Array(new Float32Array([value]).buffer)[0]! >>> 16, true)   // bf16: the high half
    return { ...x, data: bytes }
  })
  const cases: [string, string, number, number, RegExp][] = [
    ['hf-gpt2', 'transformer.wpe.weight', 0, NaN, /tensor transformer\.wpe\.weight holds NaN at index 0 \(weights must be finite\)/],
    ['hf-llama', 'model.norm.weight', 5, Infinity, /tensor model\.norm\.weight holds Infinity at index 5/],
    ['hf-llama-bf16', 'model.layers.1.self_attn.k_proj.weight', 17, -Infinity, /k_proj\.weight holds -Infinity at index 17/],
  ]
  for (const [name, tensor, index, value, want] of cases) {
    const d = editedFixture(t, name, poison(tensor, index, value))
    assert.throws(() => loadHfDir(d), (e: Error) => e instanceof InputError && want.test(e.message), `${name} ${tensor}`)
  }
})

test('unsupported configs are refused with the reason', t => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ model_type: 'mistral' }, /unsupported model_type "mistral"/],
    [{ rope_scaling: { type: 'linear', factor: 2 } }, /rope_scaling .* is not supported/],
    [{ hidden_act: 'gelu' }, /hidden_act "gelu" is not supported/],
    [{ head_dim: 16 }, /head_dim 16 differs/],
    [{ num_attention_heads: 3, head_dim: 16 }, /num_attention_heads 3 does not divide hidden_size 32/],   // not "differs from 10.67"
    [{ rope_parameters: { rope_type: 'yarn', rope_theta: 10000 } }, /rope_parameters .* not supported/],
    [{ num_key_value_heads: 3 }, /num_key_value_heads 3 does not divide num_attention_heads 4$/],   // its key, not ours (kvHeads)
  ]
  for (const [patch, re] of cases) {
    const d = tempDir(t)
    cpSync(fixture('hf-llama'), d, { recursive: true })
    const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'))
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, ...patch }))
    assert.throws(() => loadHfDir(d), (e: Error) => e instanceof InputError && re.test(e.message), JSON.stringify(patch))
  }
  assert.throws(() => configFromHfJson({ model_type: 'gpt2', n_embd: 8, n_layer: 1, n_head: 2, activation_function: 'gelu' }, 'x'),
    /activation_function "gelu" is not supported/)
  assert.throws(() => configFromHfJson({ n_embd: 8 }, 'x'), /^InputError: hf: x: no model_type or architectures \(llm.ts reads/)
  assert.throws(() => configFromHfJson({ architectures: ['BertModel'] }, 'x'), /unsupported architectures \["BertModel"\]/)
})

test('theta from transformers 5 rope_parameters; GPT-2 defaults', () => {
  const llama = configFromHfJson({ model_type: 'llama', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1,
    num_attention_heads: 4, vocab_size: 96, rope_parameters: { rope_type: 'default', rope_theta: 500000 } }, 'x').config
  assert.deepEqual([llama.ropeTheta, llama.kvHeads, llama.tiedEmbeddings, llama.normEps], [500000, 4, false, 1e-6])
  const gpt2 = configFromHfJson({ architectures: ['GPT2LMHeadModel'], n_embd: 64, n_layer: 1, n_head: 2 }, 'x').config
  assert.deepEqual([gpt2.vocabSize, gpt2.paddedVocabSize, gpt2.contextLength, gpt2.mlpHidden, gpt2.tiedEmbeddings], [50257, 50304, 1024, 256, true])
  assert.equal(gpt2.normEps, 1e-5)   // GPT2Config's layer_norm_epsilon default
  // transformers' two names for GELU with the tanh approximation
  for (const act of ['gelu_new', 'gelu_pytorch_tanh']) {
    const c = configFromHfJson({ model_type: 'gpt2', n_embd: 64, n_layer: 1, n_head: 2, activation_function: act }, 'x').config
    assert.equal(c.mlp, 'gelu', act)
  }
  // older GPT-2 configs give the context as n_ctx only; n_positions wins when both are there
  const nctx = (o: object): number => configFromHfJson({ model_type: 'gpt2', n_embd: 64, n_layer: 1, n_head: 2, ...o }, 'x').config.contextLength
  assert.deepEqual([nctx({ n_ctx: 256 }), nctx({ n_ctx: 256, n_positions: 512 })], [256, 512])
})

test('sharded checkpoints, base-model names without prefix and ignored buffers load like the single file', t => {
  const ref = loadHfDir(fixture('hf-gpt2')).params
  const f = readSafetensors(join(fixture('hf-gpt2'), 'model.safetensors'))
  const all: WriteTensor[] = [...f.tensors].map(([n, e]) => ({ name: n, dtype: e.dtype, shape: e.shape, data: e.bytes.slice() }))
  const sharded = tempDir(t)
  cpSync(join(fixture('hf-gpt2'), 'config.json'), join(sharded, 'config.json'))
  const half = Math.floor(all.length / 2)
  const weightMap: Record<string, string> = {}
  all.forEach((x, i) => { weightMap[x.name] = i < half ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors' })
  writeSafetensors(join(sharded, 'model-00001-of-00002.safetensors'), all.slice(0, half))
  writeSafetensors(join(sharded, 'model-00002-of-00002.safetensors'), all.slice(half))
  writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }))
  const wrongShard = { ...weightMap, [all[0]!.name]: 'model-00002-of-00002.safetensors' }   // the index points at the other shard
  writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ weight_map: wrongShard }))
  assert.throws(() => loadHfDir(sharded), (e: Error) => e instanceof InputError &&
    e.message.includes(`puts ${all[0]!.name} in model-00002-of-00002.safetensors, which has no such tensor`))
  writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }))
  assert.ok(Buffer.from(loadHfDir(sharded).params.buffer).equals(Buffer.from(ref.buffer)), 'sharded')
  for (const bad of ['../model-00001-of-00002.safetensors', 'sub/x.safetensors', '..']) {   // shard names must stay in the folder
    writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { ...weightMap, [all[0]!.name]: bad } }))
    assert.throws(() => loadHfDir(sharded), (e: Error) => e instanceof InputError && e.message.includes('bad shard file name'), bad)
  }
  // an index that is valid JSON without a weight_map object: named as such (null read as a TypeError called it invalid JSON;
  // an array read as an empty map reported every tensor missing)
  const index = join(sharded, 'model.safetensors.index.json')
  for (const [text, got] of [['null', 'nothing'], ['{"weight_map": []}', '[]'], ['[1]', 'nothing']]) {
    writeFileSync(index, text)
    assert.throws(() => loadHfDir(sharded), { message: `hf: ${index} has no "weight_map" object (tensor name -> shard file), got ${got}` }, text)
  }
  writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }))
  // GPT2Model.save_pretrained (as the hub's "gpt2") drops "transformer." and keeps the causal-mask buffers
  const bare = editedFixture(t, 'hf-gpt2', ts => [
    ...ts.map(x => ({ ...x, name: x.name.replace(/^transformer\./, '') })),
    { name: 'h.0.attn.bias', dtype: 'F32', shape: [1, 1, 2, 2], data: new Float32Array(4) },
  ])
  assert.ok(Buffer.from(loadHfDir(bare).params.buffer).equals(Buffer.from(ref.buffer)), 'prefix-less')
  // older GPT-2 checkpoints also keep attn.masked_bias; older Llama ones a RoPE buffer per layer; LlamaModel saves drop "model."
  const masked = editedFixture(t, 'hf-gpt2',
    ts => [...ts, { name: 'transformer.h.0.attn.masked_bias', dtype: 'F32', shape: [], data: new Float32Array(1) }])
  assert.ok(Buffer.from(loadHfDir(masked).params.buffer).equals(Buffer.from(ref.buffer)), 'masked_bias')
  const llamaRef = loadHfDir(fixture('hf-llama-bf16')).params
  const llamaBare = editedFixture(t, 'hf-llama-bf16', ts => [
    ...ts.map(x => ({ ...x, name: x.name.replace(/^model\./, '') })),
    { name: 'layers.0.self_attn.rotary_emb.inv_freq', dtype: 'F32', shape: [4], data: new Float32Array(4) },
  ])
  assert.ok(Buffer.from(loadHfDir(llamaBare).params.buffer).equals(Buffer.from(llamaRef.buffer)), 'LlamaModel layout with inv_freq')
  // a tied checkpoint that also stores lm_head: transformers ties it, so do we
  const withHead = editedFixture(t, 'hf-gpt2', ts => [...ts, { ...ts.find(x => x.name === 'transformer.wte.weight')!, name: 'lm_head.weight' }])
  assert.ok(Buffer.from(loadHfDir(withHead).params.buffer).equals(Buffer.from(ref.buffer)), 'tied with lm_head')
})

test('a directory without weights or config gives a one-line hint (an unfinished download says so)', t => {
  const d = tempDir(t)
  assert.throws(() => loadHfDir(d), /cannot read .*config\.json.*expected a Hugging Face model directory/)
  cpSync(join(fixture('hf-llama'), 'config.json'), join(d, 'config.json'))
  writeFileSync(join(d, 'pytorch_model.bin'), '')
  assert.throws(() => loadHfDir(d), /neither model\.safetensors nor .*pytorch_model\.bin is not read/)
  writeFileSync(join(d, 'model.safetensors.part'), 'x')   // what an interrupted llmts download leaves
  assert.throws(() => loadHfDir(d), { message: `hf: ${d} has neither model.safetensors nor model.safetensors.index.json ` +
    '(its weights are an unfinished download, a .part file: run the same llmts download again to finish it)' })
  rmSync(join(d, 'model.safetensors.part'))
  writeFileSync(join(d, 'model.safetensors.index.json.part'), 'x')   // the index cut short
  assert.throws(() => loadHfDir(d), { message: `hf: ${d} has neither model.safetensors nor model.safetensors.index.json ` +
    '(its weights are an unfinished download, a .part file: run the same llmts download again to finish it)' })
  rmSync(join(d, 'model.safetensors.index.json.part'))   // sharded: the index is there, a shard is still a .part
  const index = join(d, 'model.safetensors.index.json')
  writeFileSync(index, JSON.stringify({ weight_map: { 'model.norm.weight': 'model-00001-of-00002.safetensors' } }))
  writeFileSync(join(d, 'model-00001-of-00002.safetensors.part'), 'x')
  assert.throws(() => loadHfDir(d), { message: `hf: ${index} names model-00001-of-00002.safetensors, which is missing ` +
    '(its weights are an unfinished download, a .part file: run the same llmts download again to finish it)' })
})

test('an export that fails while writing leaves the previous one whole; temps of killed exports are removed', t => {
  const small = (family: 'tiny-variant' | 'tiny-gpt2'): { c: ModelConfig; params: Float32Array } => {
    const c: ModelConfig = { ...presetConfig(family), layers: 1, channels: 64, heads: 4, kvHeads: family === 'tiny-variant' ? 2 : 4 }
    const layout = new ParamLayout(c)
    const params = new Float32Array(layout.total)
    initParams(layout, params, 3)
    return { c, params }
  }
  const out = tempDir(t)
  const llama = small('tiny-variant'), gpt2 = small('tiny-gpt2')
  exportHf(out, llama.c, llama.params, { dtype: 'f32' })
  const before = new Map(readdirSync(out).map(n => [n, readFileSync(join(out, n))]))
  // the GPT-2 export cannot write its tokenizer.json (its temp name is taken by a directory): nothing is replaced
  mkdirSync(join(out, `.tokenizer.json.tmp-${process.pid}`))
  assert.throws(() => exportHf(out, gpt2.c, gpt2.params, { dtype: 'f32' }), /cannot write .*tokenizer\.json: the temp file beside it, .*\.tokenizer\.json\.tmp-\d+, is a directory/)
  rmSync(join(out, `.tokenizer.json.tmp-${process.pid}`), { recursive: true })
  assert.deepEqual(readdirSync(out).sort(), [...before.keys()].sort(), 'no temp file left')
  for (const [n, bytes] of before) assert.ok(readFileSync(join(out, n)).equals(bytes), `${n} unchanged`)
  assert.equal(loadHfDir(out).config.mlp, 'swiglu')

  // a killed export's temps (its process is gone) are removed by the next export; other files and live processes' temps stay
  const dead = spawnSync(process.execPath, ['-e', '']).pid!
  for (const n of [`.model.safetensors.tmp-${dead}`, `.config.json.tmp-${dead}`, `.notes.txt.tmp-${dead}`, `.config.json.tmp-${process.ppid}`]) {
    writeFileSync(join(out, n), 'partial')
  }
  exportHf(out, gpt2.c, gpt2.params, { dtype: 'f32' })
  const hidden = readdirSync(out).filter(n => n.startsWith('.')).sort()
  assert.deepEqual(hidden, [`.config.json.tmp-${process.ppid}`, `.notes.txt.tmp-${dead}`].sort())
  assert.equal(loadHfDir(out).config.mlp, 'gelu')
})
