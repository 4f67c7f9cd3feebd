// Test tooling: what a child `node --test` run printed (TAP), for tests that run a test file in a child process.

/** The run's total of `key` (its `# pass N` line and the like); NaN when the line is missing. */
export function tapCount(tap: string, key: 'pass' | 'fail' | 'skipped'): number {
  return Number(new RegExp(`^# ${key} (\\d+)`, 'm').exec(tap)?.[1] ?? NaN)
}

/** The lines of a failed run worth quoting in an assertion message: failed tests and their expected/actual values. */
export function tapFailures(tap: string, limit = 40): string {
  return tap.split('\n').filter(l => /not ok|error:|expected|actual|got /.test(l)).slice(0, limit).join('\n')
}
