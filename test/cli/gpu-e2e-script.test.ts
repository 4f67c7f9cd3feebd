// scripts/gpu/e2e.sh (run.sh's e2e stage) on the CPU at a tiny size: it prepares the built-in corpus, trains 20 steps
// with checkpoints, resumes a copy from step 10 and compares steps 11-20. On the CPU a resume is bit-exact, so the
// script must report a zero difference; a flag the CLI no longer takes would fail it here rather than on a GPU.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = fileURLToPath(new URL('../../..', import.meta.url))   // dist/test/cli → the repository root
const root = mkdtempSync(join(tmpdir(), 'llmts-gpu-e2e-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

test('scripts/gpu/e2e.sh on the CPU: 20 steps, a copy resumed from step 10 repeats steps 11-20 exactly', () => {
  const env = {
    ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env['PATH'] ?? ''}`, LLMTS_THREADS: '1',
    MODELS: 'tiny-gpt2', DEVICE: 'cpu', B: '2', T: '32', DATA: join(root, 'data'), WORK: join(root, 'work'),
  }
  const r = spawnSync('bash', [join(repo, 'scripts/gpu/e2e.sh')], { cwd: repo, env, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stdout + r.stderr)
  const line = (what: string): number[] => {
    const m = new RegExp(`^tiny-gpt2 steps 11-20 ${what} +(.+)$`, 'm').exec(r.stdout)
    assert.ok(m, `no "${what}" line in:\n${r.stdout}`)
    return m[1]!.split(' ').map(Number)
  }
  const [a, b] = [line('uninterrupted'), line('resumed')]
  assert.equal(a.length, 10)
  assert.deepEqual(b, a)
  assert.ok(a.every(x => Number.isFinite(x) && x > 0 && x < 12), a.join(' '))
  assert.match(r.stdout, /^tiny-gpt2 worst relative difference 0\.00e\+0 /m)
  assert.match(r.stdout, /^e2e: OK$/m)
  assert.match(r.stdout + r.stderr, /resuming at step 10,/)   // the copy really restarted from step 10
  assert.ok(existsSync(join(root, 'work', 'tiny-gpt2-resumed', 'checkpoints', 'step_000020')))
})
