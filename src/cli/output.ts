// Results on stdout with --json: one line of JSON per result (a script can read it as JSON Lines), keys in
// snake_case whatever the TypeScript names (tokensPerSecond -> tokens_per_second), as in log.jsonl, Hugging Face
// files and lm-evaluation-harness results. Keys that are data (file or model names) have no capitals and pass as
// they are.

/** camelCase -> snake_case (runDir -> run_dir, nonFinite -> non_finite); other keys unchanged. */
export function snakeCase(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase()
}

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
