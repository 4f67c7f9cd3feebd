// stdout and stderr that cannot be written: a reader that went away (`| head -1`: EPIPE) ends the command quietly
// with exit 0, and sample stops generating; a full device (`> /dev/full`: ENOSPC) is one line, exit 2, not a stack
// trace; stderr on a full device leaves the work and its exit code alone (a train then still finishes its run).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { makeToyRun } from '../train/helpers.js'

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'llmts-streams-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const env = { ...process.env, LLMTS_DEBUG: '' }

/** Runs llmts with stdout or stderr on /dev/full. */
function onFull(stream: 'stdout' | 'stderr', ...args: string[]): { code: number | null; stderr: string } {
  const fd = openSync('/dev/full', 'w')
  try {
    const stdio = stream === 'stdout' ? ['ignore', fd, 'pipe'] as const : ['ignore', 'pipe', fd] as const
    const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', env, stdio: [...stdio] })
    return { code: r.status, stderr: r.stderr ?? '' }
  } finally { closeSync(fd) }
}

/** Runs llmts with its stdout's reader gone before the first write (EPIPE on it). */
function closedReader(...args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise(resolve => {
    const child = spawn(process.execPath, [main, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.destroy()
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('close', code => resolve({ code, stderr }))
  })
}

test('stdout on a full device: one line naming stdout and ENOSPC, exit 2', t => {
  if (!existsSync('/dev/full')) { t.skip('no /dev/full on this system'); return }
  for (const args of [['model', '--json'], ['model', 'tiny-gpt2'], ['--help']]) {
    const r = onFull('stdout', ...args)
    assert.equal(r.code, 2, r.stderr)
    const cmd = args[0] === '--help' ? 'llmts' : `llmts ${args[0]}`
    assert.equal(r.stderr, `${cmd}: cannot write the output to stdout: no space left on device (ENOSPC)\n`)
  }
})

test('stderr on a full device: a bad flag keeps exit 2, and a train finishes its run', t => {
  if (!existsSync('/dev/full')) { t.skip('no /dev/full on this system'); return }
  assert.equal(onFull('stderr', 'model', 'no-such-preset').code, 2)
  const toy = makeToyRun(join(root, 'toy'))
  const out = join(root, 'run')
  const r = onFull('stderr', 'train', '--model', toy.modelJson, '--data', toy.data, '--batch-size', '4', '--seq-len', '16',
    '--total-batch-size', '64', '--steps', '2', '--warmup-steps', '1', '--device', 'cpu', '--threads', '1', '--out', out)
  assert.equal(r.code, 0)
  assert.deepEqual(readdirSync(join(out, 'checkpoints')), ['step_000002'])
})

test('a reader gone from stdout: exit 0 and nothing on stderr; sample stops generating', async () => {
  const model = await closedReader('model', '--json')
  assert.deepEqual(model, { code: 0, stderr: '' })
  // a preset has random weights: with --ignore-eot, 200 tokens would be generated, and a note would count them
  const sample = await closedReader('sample', '--model', 'tiny-gpt2', '--max-tokens', '200', '--ignore-eot', '--device', 'cpu',
    '--threads', '1', '--prompt', 'Hello')
  assert.equal(sample.code, 0, sample.stderr)
  assert.doesNotMatch(sample.stderr, /tokens in|internal error|EPIPE/)
})
