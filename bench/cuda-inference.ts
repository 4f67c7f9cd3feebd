// The GPU memory of the inference commands on the CUDA backend, each built as its command builds it: `eval loss`
// (an inference-mode GPT of B×T rows, two batches), `eval hellaswag` (decodingModel and the packed path's pool for
// one example of four T-token rows, the largest pool a T-token window needs) and `sample` (decodingModel, a cache of
// T positions: a T-8-token prompt, then 8 tokens). One measurement per process, so its peak is its own; with
// LLMTS_EMU_PLAN=1 on the CPU emulator it is the plan (bench/cuda-memory --inference), values being meaningless there.
// Run: npx tsc && node dist/bench/cuda-inference.js --model gpt2-350m --batch 4 --command loss

import { CudaBackend } from '../src/backend/cuda/index.js'
import { formatHelp, parseArgs } from '../src/cli/args.js'
import { presetConfig } from '../src/config.js'
import { scorePrepared } from '../src/eval/hellaswag.js'
import { GPT } from '../src/model/gpt.js'
import { decodingModel } from '../src/model/load.js'
import { generate } from '../src/train/sample.js'
import { InputError } from '../src/util/errors.js'
import { Rng } from '../src/util/rng.js'

const flags = {
  model: { type: 'string', default: 'gpt2-350m', help: 'preset' },
  batch: { type: 'int', min: 1, default: 4, help: 'B of eval loss' },
  seq: { type: 'int', min: 2, default: 1024, help: 'T: eval loss\'s sequence, hellaswag\'s window, sample\'s cache' },
  command: { type: 'string', default: 'loss', help: 'loss, hellaswag or sample' },
} as const

/** Token ids of a deterministic pattern (values do not matter to memory). */
const ids = (n: number, V: number, seed: number): number[] => Array.from({ length: n }, (_, i) => (i * 7919 + seed) % V)

function run(command: string, model: string, B: number, T: number): { peak_bytes: number } {
  const be = new CudaBackend(), config = presetConfig(model), V = config.vocabSize
  if (command === 'loss') {
    const gpt = new GPT(be, config, { maxBatch: B, maxSeqLen: T, mode: 'inference' })   // as src/cli/eval-loss.ts
    const tokens = Int32Array.from(ids(B * T + 1, V, 1))
    for (let i = 0; i < 2; i++) gpt.forward(tokens.subarray(0, B * T), tokens.subarray(1), B, T)
  } else if (command === 'hellaswag') {
    const gpt = decodingModel(be, config), half = T / 2
    const rows = [0, 1, 2, 3].map(e => ({ ctx: ids(Math.floor(half), V, 2), cont: ids(Math.ceil(half) + 1, V, 3 + e) }))
    scorePrepared(gpt, [{ rows, label: 0 }], { scoring: 'llmc', shots: 0, window: T })
  } else if (command === 'sample') {
    const gpt = decodingModel(be, config)
    generate(gpt, Int32Array.from(ids(T - 8, V, 4)), { maxTokens: 8, temperature: 1, topK: 0, topP: 1 }, new Rng(1))
  } else {
    throw new InputError(`bench/cuda-inference: --command ${command}, expected loss, hellaswag or sample`)
  }
  be.synchronize()
  return { peak_bytes: be.ctx.peakBytes }
}

try {
  const { flags: f, help } = parseArgs('bench/cuda-inference', flags, process.argv.slice(2))
  if (help) console.log(formatHelp('node dist/bench/cuda-inference.js', '[flags]', 'GPU memory of eval loss, eval hellaswag, sample', flags))
  else console.log(JSON.stringify(run(f.command, f.model, f.batch, f.seq)))
} catch (e) {
  if (!(e instanceof InputError)) throw e
  console.error(e.message)
  process.exitCode = 2
}
