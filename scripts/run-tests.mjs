// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner. Node 20's `--test DIR`
// would also run every helper module under a test/ folder, so the files are listed explicitly.
// Usage: node scripts/run-tests.mjs [FILTER...]  (substrings of the test paths to run only some files)
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'

function find(dir) {
  const out = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...find(p))
    else if (e.name.endsWith('.test.js')) out.push(p)
  }
  return out
}

const filters = process.argv.slice(2)
const files = find(process.env.TEST_DIST ?? 'dist/test').sort().filter(f => filters.length === 0 || filters.some(s => f.includes(s)))
if (files.length === 0) {
  console.error(`run-tests: no test files under dist/test${filters.length ? ` matching ${filters.join(', ')}` : ''} (run npm run build first)`)
  process.exit(2)
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' })
process.exit(r.status ?? 1)
