// Flag parsing for every subcommand: a typed flag table per command, --flag value and --flag=value,
// -h/--help, and one-line InputErrors naming the flag and what it expects (exit code 2 in main.ts).

import { existsSync } from 'node:fs'
import { precisions } from '../train/config.js'
import { InputError } from '../util/errors.js'

export type FlagSpec =
  | { type: 'string'; help: string; default?: string; metavar?: string; allowEmpty?: boolean }   // "" is refused unless allowEmpty
  | { type: 'int'; help: string; default?: number; min?: number; max?: number }
  | { type: 'number'; help: string; default?: number; min?: number; max?: number }
  | { type: 'bool'; help: string }
  | { type: 'enum'; help: string; values: readonly string[]; default?: string }
  | { type: 'list'; help: string; metavar?: string } // repeatable string flag

export type FlagTable = Record<string, FlagSpec>

type ValueOf<S extends FlagSpec> =
  S extends { type: 'bool' } ? boolean
    : S extends { type: 'int' | 'number' } ? number
      : S extends { type: 'list' } ? string[]
        : S extends { type: 'enum'; values: readonly (infer V)[] } ? V
          : string

/** Parsed flags: bool and list flags always present; others present when given or defaulted. */
type Flags<F extends FlagTable> = {
  [K in keyof F]: F[K] extends { type: 'bool' | 'list' } ? ValueOf<F[K]>
    : F[K] extends { default: unknown } ? ValueOf<F[K]> : ValueOf<F[K]> | undefined
}

export interface Parsed<F extends FlagTable> {
  flags: Flags<F>
  positionals: string[]
  /** Flags that were given on the command line (as opposed to defaulted). */
  given: Set<string>
  help: boolean
}

/** The --json flag every command that prints results accepts. */
export const jsonFlag = { type: 'bool', help: 'print results as JSON on stdout' } as const satisfies FlagSpec

/** --model, for every command that reads a model: what src/model/load.ts resolveModel takes, in the usage line's
 *  words (MODEL_FORMS) and the flag line's, so the two say the same. */
export const MODEL_FORMS = 'RUN_DIR|CHECKPOINT|HF_DIR|PRESET|CONFIG'
export const modelFlag = { type: 'string', metavar: 'MODEL',
  help: 'run directory (its best, else newest checkpoint), checkpoint, Hugging Face directory, preset or config JSON' } as const satisfies FlagSpec

/** --device, --precision and --threads, for every command that computes. */
export const backendFlags = {
  device: { type: 'enum', values: ['cpu', 'cuda', 'auto'], default: 'auto',
    help: 'compute backend (auto = cuda when an NVIDIA GPU is usable, else cpu)' },
  precision: { type: 'enum', values: precisions, default: 'auto',
    help: 'GPU compute: bf16 (auto), tf32 (fp32 tensors, TF32 matmuls) or fp32; the CPU computes in fp32' },
  threads: { type: 'int', min: 0, default: 0, help: 'CPU threads: native BLAS and the worker pool (0 = every core, or $LLMTS_THREADS)' },
} as const satisfies Record<string, FlagSpec>

/** Parses argv against `table`; `cmd` names the command in error messages (e.g. 'llmts train'); `warn` gets a
 *  line for each flag given again with another value (default: stderr). */
export function parseArgs<F extends FlagTable>(cmd: string, table: F, argv: readonly string[],
                                               warn: (line: string) => void = line => process.stderr.write(`${line}\n`)): Parsed<F> {
  const out: Record<string, unknown> = {}
  const given = new Set<string>()
  const positionals: string[] = []
  let help = false
  for (const [name, spec] of Object.entries(table)) {
    if (spec.type === 'bool') out[name] = false
    else if (spec.type === 'list') out[name] = []
    else if (spec.default !== undefined) out[name] = spec.default
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') { positionals.push(...argv.slice(i + 1)); break }
    if (arg === '-h' || arg === '--help') { help = true; continue }
    if (!arg.startsWith('--') || arg === '-') {
      if (arg.startsWith('-') && arg !== '-' && !/^-\d/.test(arg)) {
        throw new InputError(`${cmd}: unknown flag ${arg} (see ${cmd} --help)`)
      }
      positionals.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2)
    const spec = Object.hasOwn(table, name) ? table[name] : undefined   // --constructor is no flag
    if (spec === undefined) throw new InputError(`${cmd}: unknown flag --${name} (see ${cmd} --help)`)
    // the same flag twice with different values: the last wins, as with argparse (defaults in a script, then an
    // override), but not without a word (--data a --data b reads b alone)
    const once = (value: unknown): void => {
      if (given.has(name) && out[name] !== value) {
        warn(`${cmd}: --${name} given twice (${String(out[name])}, then ${String(value)}); using ${String(value)}`)
      }
      given.add(name)
      out[name] = value
    }
    if (spec.type === 'bool') {
      if (eq >= 0) {
        const v = arg.slice(eq + 1)
        if (v !== 'true' && v !== 'false') throw new InputError(`${cmd}: --${name} expects true or false, got "${v}"`)
        once(v === 'true')
      } else once(true)
      continue
    }
    const raw = eq >= 0 ? arg.slice(eq + 1) : separateValue(cmd, name, spec, argv[++i])
    const value = convert(cmd, name, spec, raw)
    if (spec.type === 'list') { given.add(name); (out[name] as string[]).push(value as string) } else once(value)
  }
  return { flags: out as Flags<F>, positionals, given, help }
}

/** The value given as the next argument (`--out DIR`). `--out --workers 2`: the value was forgotten; taking the next
 *  flag (or a mistyped one) as it would blame the 2 for being stray. A single dash is a value, as with getopt
 *  (`--out -x`; `--seed -1` gets its own message). */
function separateValue(cmd: string, name: string, spec: FlagSpec, next: string | undefined): string {
  if (next === undefined) throw new InputError(`${cmd}: --${name} expects ${describe(spec)}, got nothing`)
  if (next === '-h' || (next.startsWith('--') && next.length > 2)) {
    throw new InputError(`${cmd}: --${name} expects ${describe(spec)}, got the flag ${next} ` +
      `(a value that starts with '-' is given as --${name}=VALUE)`)
  }
  return next
}

function describe(spec: FlagSpec): string {
  switch (spec.type) {
    case 'int': return spec.min !== undefined && spec.min >= 1 ? 'a positive integer'
      : spec.min === 0 ? 'a non-negative integer' : 'an integer'
    case 'number': return spec.min !== undefined && spec.min >= 0 ? 'a non-negative number' : 'a number'
    case 'enum': return `one of ${spec.values.join(', ')}`
    case 'bool': return 'true or false'
    default: return 'a value'
  }
}

function convert(cmd: string, name: string, spec: FlagSpec, raw: string): string | number {
  const bad = (): never => { throw new InputError(`${cmd}: --${name} expects ${describe(spec)}, got "${raw}"`) }
  switch (spec.type) {
    case 'int':
    case 'number': {
      const s = raw.replace(/_/g, '')
      if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) bad()
      const v = Number(s)
      if (!Number.isFinite(v) || (spec.type === 'int' && !Number.isSafeInteger(v))) bad()
      if (spec.min !== undefined && v < spec.min) {
        const bound = spec.min === 0 || (spec.type === 'int' && spec.min === 1) ? '' : ` >= ${spec.min}`   // else said twice
        throw new InputError(`${cmd}: --${name} expects ${describe(spec)}${bound}, got ${raw}`)
      }
      if (spec.max !== undefined && v > spec.max) {
        throw new InputError(`${cmd}: --${name} expects a value <= ${spec.max}, got ${raw}`)
      }
      return v
    }
    case 'enum':
      if (!spec.values.includes(raw)) bad()
      return raw
    default:
      if (raw === '' && !(spec.type === 'string' && spec.allowEmpty === true)) throw new InputError(`${cmd}: --${name} expects ${describe(spec)}, got an empty string`)
      return raw
  }
}

/** Help text: usage, summary, then one line per flag with its default. */
export function formatHelp(cmd: string, usage: string, summary: string, table: FlagTable): string {
  const rows: [string, string][] = Object.entries(table).map(([name, spec]) => {
    let left = `--${name}`
    if (spec.type === 'enum') left += ` ${spec.values.join('|')}`
    else if (spec.type === 'int' || spec.type === 'number') left += ' N'
    else if (spec.type === 'string' || spec.type === 'list') left += ` ${spec.metavar ?? 'VALUE'}`
    let right = spec.help
    if ('default' in spec && spec.default !== undefined) right += ` (default ${spec.default})`
    if (spec.type === 'list') right += ' (repeatable)'
    return [left, right]
  })
  rows.push(['-h, --help', 'show this help'])
  const w = Math.min(34, Math.max(...rows.map(r => r[0].length)) + 2)
  const lines = rows.map(([l, r]) => `  ${l.padEnd(w)}${l.length >= w ? '\n  ' + ' '.repeat(w) : ''}${r}`)
  return `usage: ${cmd} ${usage}\n\n${summary}\n\nflags:\n${lines.join('\n')}\n`
}

/** Refuses arguments a command does not take (`extra`: those beyond the ones it takes). Where a flag takes globs
 *  (`globFlag`), an argument that names an existing path is most likely a glob the shell expanded before llmts saw
 *  it (`--data dir/*.bin` unquoted): the hint says to quote it. */
export function refuseArguments(cmd: string, extra: readonly string[], o: { hint?: string; globFlag?: string } = {}): void {
  const first = extra[0]
  if (first === undefined) return
  const glob = o.globFlag !== undefined && existsSync(first)
    ? `a path here is usually an unquoted glob the shell expanded: quote it, e.g. ${o.globFlag} 'DIR/*.bin'` : undefined
  const why = [o.hint, glob].filter(x => x !== undefined).join('; ')
  throw new InputError(`${cmd}: unexpected argument "${first}"${why === '' ? '' : ` (${why})`}`)
}
