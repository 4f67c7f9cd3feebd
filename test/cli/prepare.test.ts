// `llmts prepare` through the built binary: a run on files with --json, a built-in corpus, and every bad
// input of the issue (missing path, empty file, directory without usable files, Parquet without the column,
// invalid JSONL line, too few tokens) as one stderr line with exit code 2.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parquetWriteFile } from 'hyparquet-writer'
import { readShard } from '../../src/data/shards.js'
import { sharedTinyShakespeare } from '../../src/data/sources/corpora.js'
import { encode, EOT } from '../../src/tokenizer.js'
import { availableParallelism } from 'node:os'

const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'llmts-cli-prepare-'))
after(() => rmSync(dir, { recursive: true, force: true }))

function llmts(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: process.cwd() })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('prepare files with --json: result on stdout, shards on disk', () => {
  const d = join(dir, 'docs')
  mkdirSync(d)
  writeFileSync(join(d, '1.txt'), 'The first document.')
  writeFileSync(join(d, '2.txt'), 'The second one.')
  const r = llmts(['prepare', d, '--out', join(dir, 'out'), '--val-tokens', '3', '--workers', '2', '--json'])
  assert.equal(r.code, 0, r.stderr)
  const res = JSON.parse(r.stdout)
  assert.equal(res.name, 'docs')
  assert.equal(res.documents, 2)
  const want = [EOT, ...encode('The first document.'), EOT, ...encode('The second one.')]
  assert.deepEqual([...readShard(res.val[0]), ...readShard(res.train[0])], want)
  assert.deepEqual(readdirSync(join(dir, 'out')).sort(), ['docs.json', 'docs_train_000001.bin', 'docs_val_000000.bin'])
  // more workers than cores: one per core is started (each holds a tokenizer), and the result is the same
  const many = llmts(['prepare', d, '--out', join(dir, 'out-many'), '--val-tokens', '3', '--workers', '1000', '--json'])
  assert.equal(many.code, 0, many.stderr)
  assert.equal(JSON.parse(many.stdout).workers, availableParallelism())
  assert.deepEqual([...readShard(JSON.parse(many.stdout).train[0])], [...readShard(res.train[0])])
  const one = llmts(['prepare', join(d, '1.txt'), '--out', join(dir, 'out-one'), '--val-tokens', '1'])
  assert.equal(one.code, 0, one.stderr)
  assert.match(one.stdout, /^prepared 1: 1 document, \d+ tokens /, 'one document, not "1 documents"')
})

test('prepare --corpus moby-dick works offline and prints a summary', () => {
  const r = llmts(['prepare', '--corpus', 'moby-dick', '--out', join(dir, 'moby'), '--workers', '1'])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /^prepared moby-dick: 139 documents, [\d,]+ tokens \(val 32,768, train [\d,]+\)/)
  assert.ok(existsSync(join(dir, 'moby', 'moby-dick.json')))
})

test('--corpus tinyshakespeare finds ../shared beside the checkout from any working directory, offline', t => {
  const shared = sharedTinyShakespeare()
  if (!existsSync(shared)) { t.skip(`${shared} is absent`); return }
  const work = join(dir, 'elsewhere')
  mkdirSync(work)
  // no network (fetch fails) and an empty cache: only the shared copy can answer
  const offline = 'data:text/javascript,globalThis.fetch=async()=>{throw new TypeError("offline (test)")}'
  const r = spawnSync(process.execPath, ['--import', offline, bin, 'prepare', '--corpus', 'tinyshakespeare', '--out', 'ts', '--json'],
    { encoding: 'utf8', cwd: work, env: { ...process.env, LLMTS_CACHE: join(work, 'cache') } })
  assert.equal(r.status, 0, r.stderr)
  const viaPath = llmts(['prepare', '--corpus', 'tinyshakespeare', '--tinyshakespeare-path', shared, '--out', join(dir, 'ts-path'), '--json'])
  assert.equal(viaPath.code, 0, viaPath.stderr)
  for (const f of ['tinyshakespeare_val_000000.bin', 'tinyshakespeare_train_000001.bin']) {
    assert.ok(readFileSync(join(work, 'ts', f)).equals(readFileSync(join(dir, 'ts-path', f))), f)
  }
  assert.ok(!existsSync(join(work, 'cache', 'downloads')), 'nothing downloaded')
  const help = llmts(['prepare', '--help']).stdout
  assert.ok(help.includes(`(default ${shared}, i.e. ../shared/data beside the llm.ts checkout;`), help)
})

test('bad input: one stderr line, exit code 2, no shards', () => {
  const d = join(dir, 'bad')
  mkdirSync(join(d, 'unusable'), { recursive: true })
  writeFileSync(join(d, 'unusable', 'data.csv'), 'a,b')
  writeFileSync(join(d, 'empty.txt'), '')
  writeFileSync(join(d, 'lines.jsonl'), '{"text": "fine"}\n{"text": "fine"}\n{oops}\n')
  writeFileSync(join(d, 'short.txt'), 'short')
  parquetWriteFile({ filename: join(d, 'p.parquet'), columnData: [{ name: 'content', data: ['x'], type: 'STRING' }] })
  const out = join(d, 'new', 'out')   // two folders a refusal must not leave behind
  const cases: [string[], RegExp][] = [
    [['prepare', join(d, 'missing.txt'), '--out', out], /no such file or directory: .*missing\.txt/],
    [['prepare', join(d, 'empty.txt'), '--out', out], /every input file is empty \(.*empty\.txt\)/],
    [['prepare', join(d, 'unusable'), '--out', out],
      /directory .*unusable has no usable files \(expected \.txt, \.text, \.md, \.jsonl, \.ndjson or \.parquet files\)/],
    [['prepare', join(d, 'p.parquet'), '--out', out], /p\.parquet has no column "text" \(columns: content; pick one with --text-column\)/],
    [['prepare', join(d, 'lines.jsonl'), '--out', out, '--workers', '0'], /lines\.jsonl:3: invalid JSON/],
    [['prepare', join(d, 'short.txt'), '--out', out], /only 2 tokens, all taken by --val-tokens 32768/],
    [['prepare', join(d, 'short.txt')], /--out DIR is required/],
    [['prepare', '--out', out], /nothing to prepare/],
    [['prepare', join(d, 'short.txt'), '--corpus', 'sotu', '--out', out], /not both/],
    [['prepare', '--corpus', 'tinyshakespeare', '--tinyshakespeare-path', join(d, 'nope.txt'), '--out', out], /no such file: .*nope\.txt/],
    [['prepare', '--corpus', 'tinyshakespeare', '--tinyshakespeare-path', d, '--out', out],
      /not a file: .* \(--tinyshakespeare-path expects the text file\)/],
    [['prepare', join(d, 'short.txt'), '--out', join(d, 'short.txt', 'x')],
      /short\.txt \(in --out .*\) is not a directory \(--out expects a directory to write to\)/],
  ]
  for (const [args, re] of cases) {
    const r = llmts(args)
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, re)
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr)
  }
  assert.ok(!existsSync(join(d, 'new')), 'no --out folder, nor its new parent, is left by a refusal')
})
