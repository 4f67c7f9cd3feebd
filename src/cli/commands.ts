// Every subcommand of the llmts binary, each loaded on first use (main.ts dispatches through this table; the README
// test walks it to find every command and flag).

import type { Command } from './command.js'

export const commands: Record<string, () => Promise<{ command: Command }>> = {
  prepare: () => import('./prepare.js'),
  tokenize: () => import('./tokenize.js'),
  model: () => import('./model.js'),
  train: () => import('./train.js'),
  sample: () => import('./sample.js'),
  eval: () => import('./eval.js'),
  export: () => import('./export.js'),
  download: () => import('./download.js'),
  plot: () => import('./plot.js'),
}
