// Error types shared by every module.
// InputError marks a problem with what the user gave us (a file, a flag, a config): the CLI prints its
// message as one line and exits with code 2. Any other Error is a bug: one line, exit 1, stack with LLMTS_DEBUG=1.

export class InputError extends Error {
  override name = 'InputError'

  /** Line breaks (e.g. from a JSON.parse message quoting the input) are folded: the message is one line. */
  constructor(message: string) {
    super(message.replace(/\s*[\r\n]+\s*/g, ' '))
  }
}

/** Throws an InputError unless `cond` holds. Message format: 'module: what, where, expected (hint)'. */
export function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new InputError(message)
}
