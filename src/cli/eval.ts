// `llmts eval <what>`: dispatches to one module per evaluation (eval-loss.ts, eval-hellaswag.ts), each loaded
// lazily so `eval loss` never loads the HellaSwag code and its data handling.

import { InputError } from '../util/errors.js'
import type { Command } from './command.js'
import { summaries } from './commands.js'

const evaluations: Record<string, { summary: string; load: () => Promise<{ command: Command }> }> = {
  loss: { summary: summaries.evalLoss, load: () => import('./eval-loss.js') },
  hellaswag: { summary: summaries.evalHellaswag, load: () => import('./eval-hellaswag.js') },
}

function help(): string {
  const w = Math.max(...Object.keys(evaluations).map(k => k.length)) + 2
  const rows = Object.entries(evaluations).map(([k, e]) => `  ${k.padEnd(w)}${e.summary}`)
  return `usage: llmts eval <evaluation> [flags]\n\nevaluations:\n${rows.join('\n')}\n\n` +
    `Run 'llmts eval <evaluation> --help' for its flags.\n`
}

export const command: Command = {
  name: 'eval',
  summary: summaries.eval,
  usage: '<loss|hellaswag> [flags]',
  flags: {},
  subcommands: Object.fromEntries(Object.entries(evaluations).map(([k, e]) => [k, e.load])),
  async run(argv) {
    const [what, ...rest] = argv
    if (what === undefined || what === '-h' || what === '--help') {
      process.stdout.write(help())
      return what === undefined ? 2 : 0
    }
    const e = Object.hasOwn(evaluations, what) ? evaluations[what] : undefined   // not `constructor`
    const names = Object.keys(evaluations).join('|')
    if (e === undefined && what.startsWith('-')) {   // `llmts eval --model runs/b ...`: the evaluation was left out
      throw new InputError(`llmts eval: the evaluation comes first, got "${what}" (usage: llmts eval ${names} --model MODEL ...)`)
    }
    if (e === undefined) throw new InputError(`llmts eval: unknown evaluation "${what}" (expected one of ${Object.keys(evaluations).join(', ')})`)
    const { command: sub } = await e.load()
    return sub.run(rest)
  },
}
