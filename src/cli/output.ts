// Lines for humans: every error, note and warning on stderr starts `llmts COMMAND: ` (commandLine). Results on
// stdout with --json: one line of JSON per result (a script can read it as JSON Lines), keys in
// snake_case whatever the TypeScript names (tokensPerSecond -> tokens_per_second), as in log.jsonl, Hugging Face
// files and lm-evaluation-harness results. Keys that are data (file or model names) have no capitals and pass as
// they are.

import { snakeCase } from '../util/json.js'

function snakeKeys(_key: string, value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [snakeCase(k), v]))
}

/** `value` as JSON with snake_case keys, one line (or indented by `space`, for files); NaN and infinities become
 *  null (JSON has no spelling for them). */
export function jsonText(value: unknown, space?: number): string {
  return JSON.stringify(value, snakeKeys, space) + '\n'
}

/** Writes jsonText(value) to stdout: one line. */
export function printJson(value: unknown): void {
  process.stdout.write(jsonText(value))
}

/** `text` safe to print as one terminal line: line breaks and tabs become spaces, other control characters (C0, DEL,
 *  C1) '?'. An error may quote a user's file (JSON.parse quotes the bytes near the fault): a binary file's escape
 *  sequences would otherwise reach the terminal (clear it, ring it) and a newline would break the one-line rule. */
export function oneLine(text: string): string {
  return text.replace(/[\t\n\r]/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
}

const escaped = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** `llmts COMMAND: ` (the command as typed; `llmts: ` before one is known), then `kind` ('internal error: ' or ''),
 *  then the message without the leading tags that only repeat the command: `train: `, `llmts train: `, `llmts train
 *  --default-run: `, `eval: ` or `eval loss: ` in eval loss, `hellaswag: ` in eval hellaswag, `fineweb: ` in prepare
 *  fineweb, `llmts: `; all of them (`train: ` in a default run's note). A deeper module's tag (`shards: `, `hf: `)
 *  stays: it says which part found the problem; so do the words `note: ` and `warning: `. */
export function commandLine(typed: readonly string[], message: string, kind = ''): string {
  const own = typed.length === 0 ? [] : [typed.join(' '), typed[0]!, typed.at(-1)!]
  const command = own.length === 0 ? '(?!)' : `(${own.map(escaped).join('|')})( --[a-z-]+)?`
  const tag = new RegExp(`^(llmts( ${command})?|${command}): `)
  let text = message
  for (let m = tag.exec(text); m !== null; m = tag.exec(text)) text = text.slice(m[0].length)
  return `${['llmts', ...typed].join(' ')}: ${kind}${text}`
}

/** A command's notes and warnings: each line on stderr as commandLine writes it; none when `quiet` (a data-parallel
 *  rank other than 0: rank 0 speaks for all). */
export function stderrNotes(typed: readonly string[], o: { quiet?: boolean } = {}): (line: string) => void {
  return line => { if (o.quiet !== true) process.stderr.write(`${oneLine(commandLine(typed, line))}\n`) }
}

/** `text` cut to fit one row of a terminal `columns` wide (undefined: unknown, not cut), for a line redrawn in place
 *  with '\r': a wrapped one would leave its first rows behind at each redraw (a narrow window, COLUMNS=40). */
export function fitLine(text: string, columns: number | undefined): string {
  if (columns === undefined || columns <= 1 || text.length < columns) return text
  return text.slice(0, columns - 1)   // the last column: some terminals wrap at once when it is written
}

/** Whether progress may be drawn live on stderr (redrawn lines, bars, escape codes): a terminal, and not a dumb one
 *  (TERM=dumb: Emacs shells, some CI logs show the escape codes as text). Otherwise plain lines. */
export function liveProgress(env: Record<string, string | undefined> = process.env): boolean {
  return process.stderr.isTTY === true && env['TERM'] !== 'dumb'
}
