// `llmts model [MODEL]`: the presets, or the model MODEL names (anything --model takes), with parameter counts
// (padded vocabulary rows excluded) and, for a Hugging Face directory, the tokenizer its files say; --json prints one
// line per model with every setting, so a line saved as a file is a config `--model` accepts. Nothing shown depends on
// the weights' values: they are not read, only their files' headers checked (a gpt2-xl describes in milliseconds).

import { GPT2_VOCAB, presetDescriptions, presets, type ModelConfig } from '../config.js'
import { resolveModel } from '../model/load.js'
import { ParamLayout } from '../model/params.js'
import { formatHelp, jsonFlag, MODEL_FORMS, parseArgs, refuseArguments } from './args.js'
import type { Command } from './command.js'
import { summaries } from './commands.js'
import { printJson } from './output.js'

const flags = { json: jsonFlag }

type Row = Record<string, unknown> & { name: string; parameters: number; description: string; tokenizer?: string }

/** One model's row: its name, count, every setting (the padded vocabulary follows vocab_size) and description. */
function row(name: string, c: ModelConfig, description: string, tokenizer?: string): Row {
  const { paddedVocabSize: _padded, ...settings } = c
  return { name, parameters: new ParamLayout(c).countReal(), ...settings, description, ...(tokenizer !== undefined ? { tokenizer } : {}) }
}

/** A Hugging Face directory's tokenizer as its files say (the one sample and eval hellaswag check); without tokenizer
 *  files its vocab_size decides, as for our own forms, which carry none. Undefined for other forms. */
function tokenizerOf(m: ReturnType<typeof resolveModel>): string | undefined {
  if (m.hfDir !== true) return undefined
  const v = m.config.vocabSize
  return m.tokenizer?.what ?? `none in the directory (vocab_size ${v}: ${v === GPT2_VOCAB ? 'GPT-2 ids assumed' : 'not GPT-2\'s'})`
}

export const command: Command = {
  name: 'model',
  summary: summaries.model,
  usage: `[${MODEL_FORMS}] [--json]`,
  flags,
  async run(argv) {
    const p = parseArgs('llmts model', flags, argv)
    if (p.help) { process.stdout.write(formatHelp('llmts model', this.usage, this.summary, flags)); return 0 }
    const [spec, ...extra] = p.positionals
    refuseArguments('llmts model', extra, { hint: 'one model at most' })
    const rows = spec === undefined
      ? Object.entries(presets).map(([name, c]) => row(name, c, presetDescriptions[name] ?? ''))
      : [(m => row(spec, m.config, presetDescriptions[spec] ?? m.source, tokenizerOf(m)))(resolveModel(spec, { weights: 'header' }))]
    if (p.flags.json) { for (const r of rows) printJson(r); return 0 }
    const w = Math.max(14, ...rows.map(r => r.name.length + 2))
    process.stdout.write(`${(spec === undefined ? 'preset' : 'model').padEnd(w)}${'params'.padStart(14)}  description\n`)
    for (const r of rows) process.stdout.write(`${r.name.padEnd(w)}${r.parameters.toLocaleString('en-US').padStart(14)}  ${r.description}\n`)
    for (const r of rows) if (r.tokenizer !== undefined) process.stdout.write(`tokenizer: ${r.tokenizer}\n`)
    return 0
  },
}
