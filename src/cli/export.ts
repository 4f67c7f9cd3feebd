// `llmts export --format hf`: writes a model as a Hugging Face directory (LlamaForCausalLM for the variant,
// GPT2LMHeadModel for GPT-2) with the GPT-2 tokenizer files, loadable by transformers without custom code.
// A preset or config file has no weights: it is exported randomly initialized from --seed (said on stderr).

import { initParams, ParamLayout } from '../model/params.js'
import { checkModelFits, resolveModel } from '../model/load.js'
import { requireHfFamily } from '../io/hf-config.js'
import { exportHf, requireGpt2Vocab } from '../io/hf.js'
import type { HfTokenizer } from '../io/hf-tokenizer-check.js'
import { refuseTrainingDir } from '../train/checkpoint-dirs.js'
import { InputError } from '../util/errors.js'
import { MAX_SEED } from '../util/rng.js'
import { formatHelp, jsonFlag, MODEL_FORMS, modelFlag, parseArgs, refuseArguments } from './args.js'
import type { Command } from './command.js'
import { summaries } from './commands.js'
import { checkOutputDir } from '../util/atomic.js'
import { lockOutput } from '../util/lock.js'
import { printJson, stderrNotes } from './output.js'

const CMD = 'llmts export'

const flags = {
  model: modelFlag,
  format: { type: 'enum', help: 'output format', values: ['hf'], default: 'hf' },
  out: { type: 'string', help: 'output directory (created if missing; our files in it are replaced)', metavar: 'DIR' },
  dtype: { type: 'enum', help: 'weight precision in model.safetensors (fp32: f32, as --precision spells it)', values: ['bf16', 'f32', 'fp32'],
    default: 'bf16' },
  seed: { type: 'int', help: 'weight initialization seed for a preset or config without weights', default: 1337, min: 0, max: MAX_SEED },
  json: jsonFlag,
} as const

export const command: Command = {
  name: 'export',
  summary: summaries.export,
  usage: `--model ${MODEL_FORMS} --out DIR [--format hf] [--dtype bf16|f32] [--json]`,
  flags,
  async run(argv) {
    const p = parseArgs(CMD, flags, argv)
    if (p.help) { process.stdout.write(formatHelp(CMD, this.usage, this.summary, flags)); return 0 }
    refuseArguments(CMD, p.positionals)
    const f = p.flags
    if (f.model === undefined) throw new InputError(`${CMD}: --model is required ` +
      `(a run or checkpoint directory, a Hugging Face directory, a preset or a config JSON)`)
    if (f.out === undefined) throw new InputError(`${CMD}: --out is required (the directory to write)`)
    refuseTrainingDir(CMD, f.out)
    checkOutputDir(CMD, '--out', f.out)
    // two exports into one folder would interleave their files' renames: the second is refused, before any work
    const lock = lockOutput(f.out, { command: CMD, flag: '--out', note: stderrNotes(['export']) })
    try { return exportModel(f.model, f.out, f) } finally { lock.release() }
  },
}

function exportModel(model: string, out: string, f: { seed: number; dtype: 'bf16' | 'f32' | 'fp32'; json: boolean; format: string }): number {
  const resolved = resolveModel(model, { check: requireGpt2Files })
  const family = requireHfFamily(resolved.config) // fail before any initialization work
  requireGpt2Vocab(resolved.config)
  checkModelFits(CMD, resolved.config, 4, 'its weights')
  let params = resolved.params
  if (params === undefined) {
    const layout = new ParamLayout(resolved.config)
    params = new Float32Array(layout.total)
    initParams(layout, params, f.seed)
    stderrNotes(['export'])(`${resolved.source} has no weights; exporting a random initialization (seed ${f.seed})`)
  }
  const dtype = f.dtype === 'fp32' ? 'f32' : f.dtype
  const files = exportHf(out, resolved.config, params, { dtype })
  const architecture = family === 'llama' ? 'LlamaForCausalLM' : 'GPT2LMHeadModel'
  if (f.json) {
    printJson({ out, format: f.format, architecture, dtype, files, model: resolved.path })
  } else {
    process.stdout.write(`wrote ${architecture} (${dtype}) from ${resolved.source} to ${out}: ${files.join(', ')}\n`)
  }
  return 0
}

/** The export writes GPT-2's tokenizer files beside the weights: a model read with another tokenizer would be
 *  loaded by transformers with the wrong one, silently. */
function requireGpt2Files(m: { source: string; tokenizer: HfTokenizer | null }): void {
  if (m.tokenizer === null || m.tokenizer.gpt2) return
  throw new InputError(`${CMD}: ${m.source} has a tokenizer other than GPT-2's (${m.tokenizer.what}); llmts export writes ` +
    `GPT-2's tokenizer files beside the weights, which would not match them`)
}
