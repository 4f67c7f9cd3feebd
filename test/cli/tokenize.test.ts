// `llmts tokenize` through the built binary: ids of a file (plain, --json, --allow-special), the stdin round
// trip with --decode, decoding a shard, and one-line errors with exit code 2 for missing files, truncated
// or foreign shards, out-of-vocabulary ids and malformed id lists. Text longer than a piece is encoded and printed
// a piece at a time: the ids equal the whole text's, and a reader that goes away stops it.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeShard } from '../../src/data/shards.js'
import { encode, EOT } from '../../src/tokenizer.js'
import { MAX_PIECE_CHARS } from '../../src/data/sources/source.js'

const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'llmts-tokenize-'))
after(() => rmSync(dir, { recursive: true, force: true }))

function llmts(args: string[], input?: string | Buffer): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', input, cwd: process.cwd(), maxBuffer: 64 << 20 })
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

const tinyPath = resolve(process.cwd(), '../shared/data/tinyshakespeare.txt')
const prose = (n: number): string => Array.from({ length: n }, (_, i) => `Line ${i}: to be, or not to be; that's it.`).join('\n')

test('text longer than a piece: the ids of the whole text, from a file and from stdin, plain and --json', () => {
  const long = MAX_PIECE_CHARS + 1000
  const cases: [string, string, string[]][] = [
    ['runs of spaces', prose(8000) + ' '.repeat(long) + 'x' + ' '.repeat(5000) + '\n' + prose(8000), []],
    ['CRLF', prose(16000).replace(/\n/g, '\r\n'), []],
    ['no newline', prose(16000).replace(/\n/g, ' '), []],
    ['one word, then spaces', 'a'.repeat(long) + ' b ' + ' '.repeat(long), []],
    // 4-byte and 3-byte characters across the 256 KiB reads; a BOM kept; <|endoftext|> as 50256
    ['BOM, emoji, special', '\ufeff' + '日本 🎉 x\u0085\u3000y <|endoftext|>\n'.repeat(20000), ['--allow-special']],
  ]
  if (existsSync(tinyPath)) cases.push(['tinyshakespeare', readFileSync(tinyPath, 'utf8'), []])
  for (const [what, text, flags] of cases) {
    assert.ok(text.length > MAX_PIECE_CHARS, what)
    const ids = encode(text, { allowSpecial: flags.length > 0 })
    const p = join(dir, 'long.txt')
    writeFileSync(p, text)
    const plain = llmts(['tokenize', p, ...flags])
    assert.equal(plain.code, 0, plain.stderr)
    assert.ok(plain.stdout === ids.join(' ') + '\n', `${what}: the ids differ from the whole text's`)
    const piped = llmts(['tokenize', '-', '--json', ...flags], text)
    assert.ok(piped.stdout === JSON.stringify({ tokens: ids.length, ids }) + '\n', `${what}: --json from stdin differs`)
  }
  // a bad byte past the first piece of a file: one line and no output, the offset in the whole file
  const bad = join(dir, 'bad.txt')
  writeFileSync(bad, Buffer.concat([Buffer.from(prose(20000)), Buffer.from([0x61, 0xe2, 0x82, 0x20])]))
  const r = llmts(['tokenize', bad])
  assert.equal(r.code, 2)
  assert.equal(r.stdout, '')
  assert.match(r.stderr, new RegExp(`^llmts tokenize: .*bad\\.txt is not UTF-8 text \\(invalid byte 0xe2 at offset ${Buffer.byteLength(prose(20000)) + 1}\\)\n$`))
})

test('a reader that goes away stops tokenize at once: exit 0, nothing on stderr, the rest of stdin never read', async () => {
  const piece = Buffer.from(prose(6000) + '\n')   // ~280 kB: more than a piece
  const child = spawn(process.execPath, [bin, 'tokenize', '-'], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  child.stdin.on('error', () => { /* EPIPE once it is gone */ })
  const exited = new Promise<number | null>(res => child.on('close', code => res(code)))
  let gone = false
  void exited.then(() => { gone = true })
  // ids come while stdin is still open: the text so far is encoded without waiting for its end
  child.stdin.write(piece)
  child.stdin.write(piece)
  const first = await Promise.race([new Promise(res => child.stdout.once('data', res)), exited.then(() => 'exited'),
    new Promise(res => setTimeout(res, 60_000, 'timeout').unref())])
  if (first === 'timeout' || first === 'exited') child.kill()
  assert.ok(first !== 'timeout' && first !== 'exited', `no ids before the end of stdin (${String(first)}): ${stderr}`)
  child.stdout.destroy()   // \`| head -c 100\`
  let sent = 0
  for (; !gone && sent < 400; sent++) {   // up to 110 MB more, hours of work: it must stop long before
    if (!child.stdin.write(piece)) await Promise.race([new Promise(res => child.stdin.once('drain', res)), exited])
  }
  if (!gone) child.kill()
  assert.equal(await exited, 0, stderr)
  assert.equal(stderr, '')
  assert.ok(sent < 400, 'still reading stdin after its reader went away')
})
