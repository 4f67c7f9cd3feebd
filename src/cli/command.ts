// The shape of one subcommand module (src/cli/<name>.ts exports `command`).
// main.ts loads commands lazily so `llmts tokenize` never pays for loading the model code.

import type { FlagTable } from './args.js'

export interface Command {
  name: string
  summary: string           // one line, shown in `llmts --help`
  usage: string             // after `llmts <name> `
  flags: FlagTable
  /** eval's evaluations, prepare fineweb, each loaded on use: error lines name the one typed (`llmts eval loss: `) */
  subcommands?: Record<string, () => Promise<{ command: Command }>>
  /** Runs with raw argv (after the subcommand name); returns the exit code. */
  run(argv: string[]): Promise<number>
}
