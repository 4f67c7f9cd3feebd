// Test tooling: tests build commands as base settings followed by overrides (`[...small, '--steps', '2']`). The CLI
// takes the last of a repeated flag but says so on stderr; lastWins passes each flag once, the one the CLI would use,
// so the tests' stderr stays as a user's would be.

/** `args` with every flag but its last occurrence dropped (with its value). A flag's value is the next item unless
 *  that starts with "--" (a bool flag has none); `--flag=value` is one item. Other items keep their places. */
export function lastWins(args: readonly string[]): string[] {
  const items: { flag: string | null; words: string[] }[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (!a.startsWith('--') || a === '--') { items.push({ flag: null, words: [a] }); continue }
    const flag = a.split('=')[0]!
    const hasValue = !a.includes('=') && i + 1 < args.length && !args[i + 1]!.startsWith('--')
    items.push({ flag, words: hasValue ? [a, args[++i]!] : [a] })
  }
  const last = new Map(items.map((it, i) => [it.flag, i] as const))
  return items.filter((it, i) => it.flag === null || last.get(it.flag) === i).flatMap(it => it.words)
}
