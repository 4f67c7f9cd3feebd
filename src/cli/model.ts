// `llmts model`: lists the presets with their parameter counts (padded vocabulary rows excluded); --json gives
// each preset's every setting, so one entry saved as a file is a config `--model` accepts.

import { presetDescriptions, presets } from '../config.js'
import { ParamLayout } from '../model/params.js'
import { formatHelp, jsonFlag, parseArgs, refuseArguments } from './args.js'
import type { Command } from './command.js'
import { InputError } from '../util/errors.js'
import { printJson } from './output.js'

const flags = { json: jsonFlag }

export const command: Command = {
  name: 'model',
  summary: 'list model presets with their parameter counts',
  usage: '[--json]',
  flags,
  async run(argv) {
    const p = parseArgs('llmts model', flags, argv)
    if (p.help) { process.stdout.write(formatHelp('llmts model', this.usage, this.summary, flags)); return 0 }
    refuseArguments('llmts model', p.positionals, { hint: 'flags only: --json' })
    // every setting (the padded vocabulary follows vocab_size), so an entry saved as a file is a --model config
    const rows = Object.entries(presets).map(([name, c]) => {
      const { paddedVocabSize: _padded, ...settings } = c
      return { name, parameters: new ParamLayout(c).countReal(), ...settings, description: presetDescriptions[name] ?? '' }
    })
    if (p.flags.json) { printJson(rows); return 0 }
    process.stdout.write(`${'preset'.padEnd(14)}${'params'.padStart(14)}  description\n`)
    for (const r of rows) process.stdout.write(`${r.name.padEnd(14)}${r.parameters.toLocaleString('en-US').padStart(14)}  ${r.description}\n`)
    return 0
  },
}
