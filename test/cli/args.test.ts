// Flag errors of src/cli/args.ts through the built binary: unknown flags, bad and missing values, enum and
// bool values, unknown commands — each one stderr line naming the flag and what it expects, exit code 2.
// Then parseArgs and formatHelp directly: '--', number grammar, min/max bounds, defaults in the help.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { formatHelp, jsonFlag, parseArgs, type FlagTable, type Parsed } from '../../src/cli/args.js'

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
    [['prepare', '--workers', '2000'], 'llmts prepare: --workers expects a value <= 1024, got 2000'],
    [['prepare', '--val-tokens', '0x10'], 'llmts prepare: --val-tokens expects a non-negative integer, got "0x10"'],
    [['prepare', '--corpus', 'bogus'], 'llmts prepare: --corpus expects one of moby-dick, sotu, tinyshakespeare, got "bogus"'],
    [['prepare', '--json=maybe'], 'llmts prepare: --json expects true or false, got "maybe"'],
    [['prepare', '--out='], 'llmts prepare: --out expects a value, got an empty string'],
    // a forgotten value: the next flag is not taken for it (the stray 2 would be blamed instead)
    [['prepare', '--corpus', 'sotu', '--out', '--workers', '2'],
      "llmts prepare: --out expects a value, got the flag --workers (a value that starts with '-' is given as --out=VALUE)"],
    [['prepare', '--name', '--json=true'], "llmts prepare: --name expects a value, got the flag --json=true (a value that starts"],
    [['nope'], 'llmts: unknown command "nope"'],
    // names every object has (Object.prototype's) are not commands, evaluations or flags
    [['toString'], 'llmts: unknown command "toString"'],
    [['eval', 'constructor'], 'llmts eval: unknown evaluation "constructor"'],
    [['prepare', '--constructor=1'], 'llmts prepare: unknown flag --constructor'],
    [['prepare', '--toString'], 'llmts prepare: unknown flag --toString'],
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
  assert.doesNotThrow(() => json.stdout.trimEnd().split('\n').map(l => JSON.parse(l)), 'the last value, --json, was used')
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

test('llmts help COMMAND prints that command\'s help, as llmts COMMAND --help does', () => {
  // it printed the command list, the command ignored
  for (const args of [['train'], ['eval', 'loss'], ['prepare', 'fineweb']]) {
    const r = llmts(['help', ...args])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`^usage: llmts ${args.join(' ')} `))
    assert.equal(r.stdout, llmts([...args, '--help']).stdout)
  }
  const typo = llmts(['help', 'trian'])
  assert.equal(typo.code, 2)
  assert.match(typo.stderr, /^llmts: unknown command "trian" \(expected one of prepare, /)
  assert.match(llmts(['help']).stdout, /^usage: llmts <command> .*\n[^]*'llmts help <command>'/)
})

test('--version prints the version of package.json', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
  const r = llmts(['--version'])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout, `llmts ${pkg.version}\n`)
})

// parseArgs and formatHelp themselves, on a table of their own (no command's flags, so these hold whatever
// the commands declare)
const table = {
  count: { type: 'int', min: 0, max: 1000, default: 7, help: 'an int' },
  temp: { type: 'number', min: 0, help: 'a number' },
  frac: { type: 'number', min: 0, max: 1, default: 0.5, help: 'a fraction' },
  json: jsonFlag,
} as const satisfies FlagTable
const parse = (argv: string[]): Parsed<typeof table> => parseArgs('t', table, argv, () => {})

test('parseArgs: "--" ends the flags; what follows is positional even when it looks like a flag', () => {
  const p = parseArgs('t', table, ['a', '--', '--json', '-q', '--count=3'])
  assert.deepEqual(p.positionals, ['a', '--json', '-q', '--count=3'])
  assert.equal(p.flags.json, false)
  assert.equal(p.flags.count, 7)
  assert.deepEqual([...p.given], [])
})

test('parseArgs: a value starting with a dash is taken after =, and bare unless it starts with -- (a forgotten value)', () => {
  const t = { out: { type: 'string', help: 'a path' }, json: jsonFlag } as const satisfies FlagTable
  assert.equal(parseArgs('t', t, ['--out', '-x']).flags.out, '-x')   // as getopt: a dash alone is no flag of ours
  assert.throws(() => parseArgs('t', t, ['--out', '--jsno']), /got the flag --jsno/)   // a misspelt flag too
  assert.equal(parseArgs('t', t, ['--out=--json']).flags.out, '--json')
  assert.throws(() => parseArgs('t', t, ['--out', '--json']), /^InputError: t: --out expects a value, got the flag --json/)
  assert.throws(() => parseArgs('t', t, ['--out', '-h']), /got the flag -h/)
})

test('parseArgs numbers: "_" digit separators, and only decimal literals (no hex, no spaces)', () => {
  assert.equal(parse(['--count', '1_000']).flags.count, 1000)
  assert.equal(parse(['--temp=1_0.2_5']).flags.temp, 10.25)
  for (const raw of ['0x10', ' 5', '5 ', '0b1', 'Infinity', '1e', '']) {
    assert.throws(() => parse(['--count', raw]), { message: `t: --count expects a non-negative integer, got "${raw}"` })
  }
})

test('parseArgs bounds: a fraction below the minimum and any value above the maximum are refused', () => {
  assert.throws(() => parse(['--temp', '-0.5']), { message: 't: --temp expects a non-negative number, got -0.5' })
  assert.throws(() => parse(['--frac', '-0.25']), { message: 't: --frac expects a non-negative number, got -0.25' })
  assert.equal(parse(['--temp', '0']).flags.temp, 0)
  assert.throws(() => parse(['--frac', '1.5']), { message: 't: --frac expects a value <= 1, got 1.5' })
  assert.throws(() => parse(['--count', '1001']), { message: 't: --count expects a value <= 1000, got 1001' })
  assert.equal(parse(['--count', '1000']).flags.count, 1000)
  assert.equal(parse(['--frac', '1']).flags.frac, 1)
})

test('formatHelp: each flag with its default, when it has one', () => {
  const lines = formatHelp('t', 'ARGS', 'a summary', table).split('\n')
  const row = (flag: string): string => lines.find(l => l.trimStart().startsWith(flag)) ?? ''
  assert.match(row('--count N'), /an int \(default 7\)$/)
  assert.match(row('--frac N'), /a fraction \(default 0\.5\)$/)
  assert.match(row('--temp N'), /a number$/)
  assert.match(row('--json'), /print results as JSON on stdout$/)
})
