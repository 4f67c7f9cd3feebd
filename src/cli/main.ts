#!/usr/bin/env node
// The llmts binary: dispatches to one module per subcommand and is the only place that sets exit codes.
// InputError (bad file, flag, config) -> one line on stderr, exit 2; any other error -> one line, exit 1
// (LLMTS_DEBUG=1 prints the stack).

import { InputError } from '../util/errors.js'
import type { Command } from './command.js'

const commands: Record<string, () => Promise<{ command: Command }>> = {
  prepare: () => import('./prepare.js'),
  tokenize: () => import('./tokenize.js'),
  model: () => import('./model.js'),
  eval: () => import('./eval.js'),
}

const summaries: Record<string, string> = {
  prepare: 'tokenize text, JSONL, Parquet or a built-in corpus into llm.c token shards',
  tokenize: 'print the GPT-2 token ids of a file (or decode ids back to text)',
  model: 'list model presets with their parameter counts',
  eval: 'evaluate a model: validation loss (eval loss)',
}

function mainHelp(): string {
  const w = Math.max(...Object.keys(commands).map(k => k.length)) + 2
  const lines = Object.keys(commands).map(k => `  ${k.padEnd(w)}${summaries[k] ?? ''}`)
  return `usage: llmts <command> [flags]\n\ncommands:\n${lines.join('\n')}\n\n` +
    `Run 'llmts <command> --help' for the flags of a command.\n`
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(mainHelp())
    return name === undefined ? 2 : 0
  }
  if (name === '--version') {
    process.stdout.write('llmts 0.1.0\n')
    return 0
  }
  const load = commands[name]
  if (load === undefined) throw new InputError(`llmts: unknown command "${name}" (expected one of ${Object.keys(commands).join(', ')})`)
  const { command } = await load()
  return command.run(rest)
}

function report(e: unknown): number {
  const err = e instanceof Error ? e : new Error(String(e))
  if (process.env['LLMTS_DEBUG']) process.stderr.write(`${err.stack ?? err.message}\n`)
  else process.stderr.write(`${err instanceof InputError ? '' : 'llmts: internal error: '}${err.message}\n`)
  return err instanceof InputError ? 2 : 1
}

main(process.argv.slice(2)).then(
  code => { process.exitCode = code },
  e => { process.exitCode = report(e) },
)
