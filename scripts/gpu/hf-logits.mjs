#!/usr/bin/env node
// Our side of the transformers load check (reference/hf_load_check.py): loads each exported Hugging Face directory
// with llm.ts's own loader (the built dist/), runs the CPU forward pass in float32 on a fixed text, and writes the
// real-vocabulary logits (T, V) as little-endian float32 files beside a JSON manifest.
// Usage: node scripts/gpu/hf-logits.mjs --out DIR/ours.json [--dist DIST] [--text TEXT] HF_DIR...

import { mkdirSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'

/** Contractions, digits, accents, a dash, curly quotes, runs of spaces, a newline and a tab, CJK and an emoji:
 *  the pre-tokenizer's cases. No "<|endoftext|>" (HF's tokenizer makes it one special token, we keep it text). */
const CHECK_TEXT = 'Hello, world! It\'s 2024: naïve café, déjà vu — “quoted”,   three spaces\n\tthen a tab. 東京 🙂 ok'

const HERE = dirname(fileURLToPath(import.meta.url))

async function loadDist(dist) {
  const at = p => import(pathToFileURL(join(dist, p)).href)
  const [load, gpt, device, tokenizer, atomic, hfConfig] = await Promise.all([
    at('src/model/load.js'), at('src/model/gpt.js'), at('src/train/device.js'), at('src/tokenizer.js'), at('src/util/atomic.js'),
    at('src/io/hf-config.js'),
  ])
  return {
    resolveModel: load.resolveModel, GPT: gpt.GPT, createBackend: device.createBackend, encode: tokenizer.encode,
    writeFileAtomic: atomic.writeFileAtomic, requireHfFamily: hfConfig.requireHfFamily,
  }
}

/** Logits (T, V) of `ids` under the model in `dir`, as our loader and CPU forward produce them. */
function logitsOf(lib, backend, dir, ids) {
  const { config, params } = lib.resolveModel(dir)
  if (params === undefined) throw new Error(`hf-logits: ${dir} has no weights`)
  const T = ids.length
  const model = new lib.GPT(backend, config, { maxBatch: 1, maxSeqLen: T })
  model.setParams(params)
  model.forward(Int32Array.from(ids), null, 1, T)
  return { config, logits: model.lastLogits() }
}

function argmax(row) {
  let best = 0
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i
  return best
}

async function dumpLogits({ out, dist, text, dirs }) {
  const lib = await loadDist(dist)
  const backend = await lib.createBackend('cpu')
  const ids = lib.encode(text)
  const outDir = dirname(out)
  mkdirSync(outDir, { recursive: true })
  const models = dirs.map((dir, i) => {
    const { config, logits } = logitsOf(lib, backend, dir, ids)
    const V = config.vocabSize, T = ids.length
    const file = `${String(i).padStart(2, '0')}-${basename(resolve(dir))}.logits.f32`
    const bytes = new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength)   // little-endian on x86/arm
    lib.writeFileAtomic(join(outDir, file), bytes)
    return {
      dir: resolve(dir), architecture: lib.requireHfFamily(config) === 'llama' ? 'LlamaForCausalLM' : 'GPT2LMHeadModel',
      config, shape: [T, V], logits: file, argmaxLast: argmax(logits.subarray((T - 1) * V, T * V)),
    }
  })
  // the text, our GPT-2 token ids, and per directory its config, shape and logits file
  const manifest = { generator: 'scripts/gpu/hf-logits.mjs', dtype: 'float32', text, ids, models }
  lib.writeFileAtomic(out, JSON.stringify(manifest, null, 1) + '\n')
  backend.close?.()
  return manifest
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { out: { type: 'string' }, dist: { type: 'string' }, text: { type: 'string' } },
  })
  if (values.out === undefined || positionals.length === 0) {
    process.stderr.write('usage: node scripts/gpu/hf-logits.mjs --out DIR/ours.json [--dist DIST] [--text TEXT] HF_DIR...\n')
    return 2
  }
  const dist = resolve(values.dist ?? join(HERE, '..', '..', 'dist'))
  const m = await dumpLogits({ out: resolve(values.out), dist, text: values.text ?? CHECK_TEXT, dirs: positionals })
  for (const x of m.models) process.stdout.write(`hf-logits: ${x.dir}: ${x.architecture} logits ${x.shape.join('x')} -> ${x.logits}\n`)
  return 0
}

main().then(code => { process.exitCode = code }, e => { process.stderr.write(`hf-logits: ${e.message}\n`); process.exitCode = 1 })
