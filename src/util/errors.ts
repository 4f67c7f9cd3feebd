// Error types shared by every module.
// InputError marks a problem with what the user gave us (a file, a flag, a config): the CLI prints its
// message as one line and exits with code 2. Any other Error is a bug: one line, exit 1, stack with LLMTS_DEBUG=1.

export class InputError extends Error {
  override name = 'InputError'
  readonly exitCode: number = 2   // the CLI's; a subclass may differ (DivergenceError: 3)

  /** Line breaks (e.g. from a JSON.parse message quoting the input) are folded: the message is one line. */
  constructor(message: string) {
    super(message.replace(/\s*[\r\n]+\s*/g, ' '))
  }
}

/** A command stopped by Ctrl-C that says how to go on (a download: run it again): exit code 130, as a process
 *  ended by SIGINT, so that `llmts download … && llmts train …` does not go on. */
export class Interrupted extends InputError {
  override name = 'Interrupted'
  override readonly exitCode = 130
}

/** A data-parallel rank stopped because another rank failed: that rank's error is the one shown; this one is
 *  printed without "internal error" (src/train/launch.ts). */
export class PeerFailure extends Error {
  override name = 'PeerFailure'
}

/** Throws an InputError unless `cond` holds. Message format: 'module: what, where, expected (hint)'. */
export function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new InputError(message)
}

/** A user's JSON value as an error message shows it: JSON, except that a number JSON cannot write (1e400 parses
 *  as Infinity) stays a number, a missing value is "nothing", and a long value is cut at 80 characters. */
export function shown(v: unknown): string {
  if (v === undefined) return 'nothing'
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v)
  // JSON writes Infinity and NaN as null: inside arrays and objects they are marked, then written bare
  const marked = JSON.stringify(v, (_k, x: unknown) => typeof x === 'number' && !Number.isFinite(x) ? `\u0000${x}` : x)
  const s = marked?.replace(/"\\u0000(-?Infinity|NaN)"/g, '$1') ?? String(v)
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}

/** Why a file could not be read, in words with Node's code: "no such file (ENOENT)", "a directory, not a file
 *  (EISDIR)"; an error without a code gives its message. */
export function fsReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code
  const words: Record<string, string> = {
    ENOENT: 'no such file', EISDIR: 'a directory, not a file', ENOTDIR: 'a part of the path is a file, not a folder',
    EACCES: 'permission denied', EPERM: 'permission denied', ELOOP: 'too many symbolic links', ENAMETOOLONG: 'name too long',
    ENOSPC: 'no space left on device', EIO: 'input/output error',
  }
  if (code === undefined) return e instanceof Error ? e.message : String(e)
  return words[code] === undefined ? code : `${words[code]} (${code})`
}
