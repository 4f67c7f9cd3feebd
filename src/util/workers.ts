// Node flags for worker threads. A worker inherits the parent's execArgv, and the flags that only make sense
// for the main script (`node --input-type=module -e CODE`) make a worker fail to load its own file.

/** The parent's Node flags minus -e/--eval/-p/--print (and their code) and --input-type. */
export function workerExecArgv(parent: readonly string[] = process.execArgv): string[] {
  const out: string[] = []
  for (let i = 0; i < parent.length; i++) {
    const a = parent[i]!
    if (a === '-e' || a === '--eval' || a === '-p' || a === '--print') { i++; continue }
    if (a.startsWith('--input-type') || a.startsWith('--eval=') || a.startsWith('--print=')) continue
    out.push(a)
  }
  return out
}
