// Flag errors of src/cli/args.ts through the built binary: unknown flags, bad and missing values, enum and
// bool values, unknown commands — each one stderr line naming the flag and what it expects, exit code 2.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))

function llmts(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: process.cwd() })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('flag errors: one line naming the flag and what it expects, exit code 2', () => {
  const cases: [string[], string][] = [
    [['prepare', '--bogus'], 'llmts prepare: unknown flag --bogus (see llmts prepare --help)'],
    [['tokenize', 'x', '-q'], 'llmts tokenize: unknown flag -q (see llmts tokenize --help)'],
    [['prepare', '--val-tokens', 'abc'], 'llmts prepare: --val-tokens expects a non-negative integer, got "abc"'],
    [['prepare', '--val-tokens=1.5'], 'llmts prepare: --val-tokens expects a non-negative integer, got "1.5"'],
    [['prepare', '--shard-size', '0'], 'llmts prepare: --shard-size expects a positive integer >= 1024, got 0'],
    [['prepare', '--shard-size', '1000'], 'llmts prepare: --shard-size expects a positive integer >= 1024, got 1000'],
    [['eval', 'hellaswag', '--shots', '-1'], 'llmts eval hellaswag: --shots expects a non-negative integer, got -1'],
    [['prepare', '--workers'], 'llmts prepare: --workers expects a non-negative integer, got nothing'],
    [['prepare', '--corpus', 'bogus'], 'llmts prepare: --corpus expects one of moby-dick, sotu, tinyshakespeare, got "bogus"'],
    [['prepare', '--json=maybe'], 'llmts prepare: --json expects true or false, got "maybe"'],
    [['prepare', '--out='], 'llmts prepare: --out expects a value, got an empty string'],
    [['nope'], 'llmts: unknown command "nope"'],
  ]
  for (const [args, message] of cases) {
    const r = llmts(args)
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.ok(r.stderr.startsWith(message), `${args.join(' ')}: got ${JSON.stringify(r.stderr)}`)
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr)
    assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/, 'no stack trace')
  }
})

test('a flag given twice: the last value wins (as with argparse), with a line on stderr when they differ', () => {
  const same = llmts(['model', '--json', '--json=true'])
  assert.equal(same.code, 0, same.stderr)
  assert.equal(same.stderr, '')
  const json = llmts(['model', '--json=false', '--json'])
  assert.equal(json.code, 0, json.stderr)
  assert.equal(json.stderr, 'llmts model: --json given twice (false, then true); using true\n')
  assert.doesNotThrow(() => JSON.parse(json.stdout), 'the last value, --json, was used')
  const r = llmts(['prepare', '--val-tokens', '5', '--val-tokens', 'x'])   // each value is still checked
  assert.equal(r.code, 2)
  assert.match(r.stderr, /^llmts prepare: --val-tokens expects a non-negative integer, got "x"\n$/)
  const special = llmts(['tokenize', '--allow-special', '--decode', '--allow-special=false', '-'])
  assert.match(special.stderr, /^llmts tokenize: --allow-special given twice \(true, then false\); using false\n/)
})

test('--help prints usage and flags on stdout, exit code 0', () => {
  for (const cmd of ['prepare', 'tokenize']) {
    const r = llmts([cmd, '--help'])
    assert.equal(r.code, 0)
    assert.match(r.stdout, new RegExp(`^usage: llmts ${cmd} `))
    assert.match(r.stdout, /--json/)
  }
})

test('--version prints the version of package.json', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
  const r = llmts(['--version'])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout, `llmts ${pkg.version}\n`)
})
