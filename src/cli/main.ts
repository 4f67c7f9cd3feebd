#!/usr/bin/env node
// The llmts binary: dispatches to one module per subcommand and is the only place that sets exit codes.
// InputError (bad file, flag, config) -> one line on stderr, exit 2; any other error -> one line, exit 1
// (LLMTS_DEBUG=1 prints the stack); a PeerFailure (a data-parallel rank stopped by another's failure) is printed
// without "internal error", exit 1. Every error line starts `llmts COMMAND: ` (commandLine, as notes do), added here only.

import { readFileSync } from 'node:fs'
import { fsReason, InputError, PeerFailure } from '../util/errors.js'
import { commands, summaries } from './commands.js'
import { commandLine, oneLine } from './output.js'

function mainHelp(): string {
  const w = Math.max(...Object.keys(commands).map(k => k.length)) + 2
  const lines = Object.keys(commands).map(k => `  ${k.padEnd(w)}${summaries[k as keyof typeof summaries]}`)
  return `usage: llmts <command> [flags]\n\ncommands:\n${lines.join('\n')}\n\n` +
    `Run 'llmts <command> --help' (or 'llmts help <command>') for the flags of a command; ` +
    `llmts --version prints the version.\n`
}

/** Runs the command; an error becomes one line on stderr and the exit code. */
export async function main(argv: string[]): Promise<number> {
  const typed: string[] = []   // the command as typed, once known: ['train'], ['eval', 'loss']
  running = typed
  try { return await dispatch(argv, typed) } catch (e) { return report(e, typed) }
}

let running: readonly string[] = []   // main's command as typed, for the stdout error's line

async function dispatch(argv: string[], typed: string[]): Promise<number> {
  const [name, ...rest] = argv
  // `llmts help train` as git's and npm's: the command's own help (it printed the list, the command ignored)
  if (name === 'help' && rest[0] !== undefined && !rest[0].startsWith('-')) return dispatch([...rest, '--help'], typed)
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(mainHelp())
    return name === undefined ? 2 : 0
  }
  if (name === '--version') {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
    process.stdout.write(`llmts ${pkg.version}\n`)
    return 0
  }
  const load = Object.hasOwn(commands, name) ? commands[name] : undefined   // not `llmts toString`: Object's own
  if (load === undefined) throw new InputError(`unknown command "${name}" (expected one of ${Object.keys(commands).join(', ')})`)
  typed.push(name)
  const { command } = await load()
  if (rest[0] !== undefined && command.subcommands !== undefined && Object.hasOwn(command.subcommands, rest[0])) typed.push(rest[0])
  return command.run(rest)
}

// A file-system call refused on a user's path (a file where a directory must be, no permission, a read-only disk)
// is bad input, not a bug: Node's message names the call and the path.
const PATH_ERRORS = new Set(['ENOENT', 'EACCES', 'EPERM', 'EISDIR', 'ENOTDIR', 'EEXIST', 'EROFS', 'ENOTEMPTY', 'ENAMETOOLONG', 'ELOOP'])

/** The error as one stderr line; the exit code: 2 for bad input (3 for a diverged run), 1 for anything else. */
function report(e: unknown, typed: string[]): number {
  let err = e instanceof Error ? e : new Error(String(e))
  const sys = err as NodeJS.ErrnoException
  if (!(err instanceof InputError) && sys.syscall !== undefined && PATH_ERRORS.has(sys.code ?? '')) {
    err = new InputError(`${err.message} (check the path, its type and its permissions)`)
  } else if (err instanceof RangeError && /allocation failed/i.test(err.message)) {
    err = new InputError(`out of memory: ${err.message} ` +
      `(the model and its buffers at these settings do not fit; a smaller model, batch or sequence length?)`)
  }
  if (process.env['LLMTS_DEBUG']) process.stderr.write(`${(e as Error).stack ?? err.message}\n`)
  else process.stderr.write(`${oneLine(commandLine(typed, err.message, err instanceof InputError || e instanceof PeerFailure ? '' : 'internal error: '))}\n`)
  return err instanceof InputError ? err.exitCode : 1
}

// `llmts tokenize big.txt | head` closes our stdout early: that is the reader's choice, not an error. Any other
// failure to write it (`> /dev/full`: ENOSPC; EIO) loses the results: one line on stderr and exit 2, as a full disk
// elsewhere, not a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0)
  process.stderr.write(`${oneLine(commandLine(running, `cannot write the output to stdout: ${fsReason(e)}`))}\n`)
  process.exit(2)
})

// `llmts train 2>&1 | head`, `2> /dev/full`: once stderr cannot be written, progress and notes go nowhere and the
// work goes on (a run that stopped here would lose its steps since the last checkpoint); the exit code still tells
process.stderr.on('error', () => {})

main(process.argv.slice(2)).then(code => { process.exitCode = code })
