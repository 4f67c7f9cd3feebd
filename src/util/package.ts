// The llm.ts package's root folder (the one holding its package.json), found from this module's own location,
// so that paths beside a checkout (../shared) do not depend on the working directory.

import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

let root: string | undefined

/** The folder of llm.ts's package.json (src/ and dist/src/ both lie below it). */
export function packageRoot(): string {
  if (root !== undefined) return root
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json')
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'llm.ts') return (root = dir)
    if (dirname(dir) === dir) throw new Error(`llm.ts: no package.json of llm.ts above ${fileURLToPath(import.meta.url)}`)
  }
}
