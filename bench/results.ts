// bench/RESULTS.md, where benchmarks record what they measured: each --append adds one dated entry (a heading
// with the UTC time and the benchmark's name, then the benchmark's text: machine, command, tables), and the file
// is rewritten atomically so an interrupted write never loses earlier entries.

import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { writeFileAtomic } from '../src/util/atomic.js'

/** The command line that ran this benchmark (`bench` is its file name without .js), for an entry's Command line. */
export function benchCommand(bench: string): string {
  return `node dist/bench/${bench}.js ${process.argv.slice(2).join(' ')}`.trimEnd()
}

/** Appends `## <date> UTC — bench/<bench>` and `body` to bench/RESULTS.md (in the working directory). */
export function appendResults(bench: string, body: string): void {
  const file = resolve(process.cwd(), 'bench/RESULTS.md')
  const entry = `\n## ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — bench/${bench}\n\n${body}\n`
  writeFileAtomic(file, existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n', entry)
  console.error(`bench/${bench}: appended to bench/RESULTS.md`)
}

/** The JSON object a measuring child printed as its last stdout line (the lines before it are its own chatter). */
export function lastJson<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split('\n').pop()!) as T
}
