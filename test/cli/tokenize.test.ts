// `llmts tokenize` through the built binary: ids of a file (plain, --json, --allow-special), the stdin round
// trip with --decode, decoding a shard, and one-line errors with exit code 2 for missing files, truncated
// or foreign shards, out-of-vocabulary ids and malformed id lists.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeShard } from '../../src/data/shards.js'
import { encode, EOT } from '../../src/tokenizer.js'

const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'llmts-tokenize-'))
after(() => rmSync(dir, { recursive: true, force: true }))

function llmts(args: string[], input?: string | Buffer): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', input, cwd: process.cwd() })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

const text = '\ufeffHello <|endoftext|> wörld 🎉\n\n  spaces\ttab\n'   // a BOM first: kept, as every other character
const file = join(dir, 'in.txt')
writeFileSync(file, text)

test('tokenize prints the ids; --json and --allow-special; --decode round-trips through stdin', () => {
  const plain = llmts(['tokenize', file])
  assert.equal(plain.code, 0, plain.stderr)
  assert.equal(plain.stdout, encode(text).join(' ') + '\n')
  const json = JSON.parse(llmts(['tokenize', file, '--json']).stdout)
  assert.deepEqual(json, { tokens: encode(text).length, ids: encode(text) })
  const special = JSON.parse(llmts(['tokenize', file, '--json', '--allow-special']).stdout)
  assert.ok(special.ids.includes(EOT) && !json.ids.includes(EOT))
  const back = llmts(['tokenize', '--decode', '-'], plain.stdout)
  assert.equal(back.code, 0, back.stderr)
  assert.equal(back.stdout, text)
  assert.equal(llmts(['tokenize', '--decode', '-'], JSON.stringify(encode(text))).stdout, text)
  assert.deepEqual(JSON.parse(llmts(['tokenize', '--decode', '-', '--json'], '15496, 995').stdout), { tokens: 2, text: 'Hello world' })
  // tokenize --json's own output decodes back (the {"ids": [...]} form), and JSON after blank lines is still JSON
  assert.equal(llmts(['tokenize', '--decode', '-'], llmts(['tokenize', file, '--json']).stdout).stdout, text)
  assert.equal(llmts(['tokenize', '--decode', '-'], '\n  [15496, 995]\n').stdout, 'Hello world')
})

test('tokenize --decode reads llm.c shards', () => {
  const p = join(dir, 'ok.bin')
  writeShard(p, [EOT, ...encode('a shard')])
  const r = llmts(['tokenize', '--decode', p])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout, '<|endoftext|>a shard')
  const piped = llmts(['tokenize', '--decode', '-'], readFileSync(p))
  assert.equal(piped.code, 0, piped.stderr)
  assert.equal(piped.stdout, '<|endoftext|>a shard')
})

test('bad input: one stderr line, exit code 2', () => {
  const good = readFileSync(join(dir, 'ok.bin'))
  const n = 1 + encode('a shard').length
  const truncated = join(dir, 'truncated.bin')
  writeFileSync(truncated, good.subarray(0, good.length - 2))
  const magic = join(dir, 'magic.bin')
  const m = Buffer.from(good)
  m.writeInt32LE(7, 0)
  writeFileSync(magic, m)
  const vocab = join(dir, 'vocab.bin')
  const v = Buffer.from(good)
  v.writeUInt16LE(50300, 1024 + 2)
  writeFileSync(vocab, v)
  const cases: [string[], string | Buffer | undefined, RegExp][] = [
    [['tokenize', join(dir, 'missing.txt')], undefined, /no such file: .*missing\.txt/],
    [['tokenize', '--decode', truncated], undefined,
      new RegExp(`truncated\\.bin header says ${n} tokens \\(${1024 + 2 * n} bytes\\) but the file has ${1022 + 2 * n} bytes`)],
    [['tokenize', '--decode', magic], undefined, /magic\.bin has magic 7, expected 20240520/],
    [['tokenize', '--decode', vocab], undefined, /vocab\.bin has token id 50300 at position 1, outside the vocabulary of 50257/],
    [['tokenize', '--decode', '-'], good.subarray(0, good.length - 2), new RegExp(`stdin header says ${n} tokens`)],
    [['tokenize', '--decode', '-'], v, /stdin has token id 50300 at position 1/],
    [['tokenize', '--decode', '-'], '1 2 x3', /^llmts tokenize: stdin: item 3 \("x3"\) is not a token id/],
    [['tokenize', '--decode', '-'], '[1, 50257]', /item 2 \(50257\) is not a token id/],
    [['tokenize', '--decode', '-'], '[1, 2', /invalid JSON/],
    [['tokenize', join(dir, 'ok.bin')], undefined, /ok\.bin is a token shard, not text \(its text: llmts tokenize --decode .*ok\.bin\)/],
    [['tokenize', '-'], Buffer.from([0x61, 0x62, 0xc3, 0xa9, 0x20, 0xff, 0x61]), /stdin is not UTF-8 text \(invalid byte 0xff at offset 5\)/],
    // the lead byte of a sequence cut short is named, not the byte after it (as Python's decode does)
    [['tokenize', '-'], Buffer.from('caf\xe9 x', 'latin1'), /stdin is not UTF-8 text \(invalid byte 0xe9 at offset 3\)/],
    [['tokenize', '-'], Buffer.from([0x61, 0x62, 0xe2, 0x82]), /invalid byte 0xe2 at offset 2\)/],
    [['tokenize', '-'], Buffer.from([0x61, 0xc3, 0xa9, 0xff]), /invalid byte 0xff at offset 3\)/],
    [['tokenize', '-'], Buffer.from([0x61, 0x80]), /invalid byte 0x80 at offset 1\)/],
    [['tokenize', file, file], undefined, /expected exactly one FILE, got 2/],
    [['tokenize'], undefined, /expected exactly one FILE, got 0/],
    [['tokenize', dir], undefined, /^llmts tokenize: .*llmts-tokenize-\w+ is not a file\n$/],   // not EISDIR, exit 1
    [['tokenize', '--decode', dir], undefined, /^llmts tokenize: .*llmts-tokenize-\w+ is not a file\n$/],
    // decoding always prints token 50256 as <|endoftext|>: the encoding flag would be a silent no-op
    [['tokenize', '--decode', '--allow-special', '-'], '50256', /^llmts tokenize: --allow-special is for encoding text; --decode always prints token 50256 as <\|endoftext\|>\n$/],
  ]
  for (const [args, input, re] of cases) {
    const r = llmts(args, input)
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, re)
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr)
    assert.equal(r.stdout, '')
  }
})
