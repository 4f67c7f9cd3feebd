// The GPT-2 tokenizer: ids equal a from-scratch port of OpenAI's encoder.py run on the original encoder.json
// and vocab.bpe (../shared/data/gpt2), long pieces (our own merge) equal to the library's merge, round trips on
// tricky strings, the 338,025-token tinyshakespeare figure, <|endoftext|> as ordinary text vs allowSpecial, and
// token-safe cut points.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { BytePairEncodingCore } from 'gpt-tokenizer/BytePairEncodingCore'
import bpeRanks from 'gpt-tokenizer/bpeRanks/r50k_base'
import { decode, encode, EOT, findSafeCut, GPT2_SPLIT } from '../../src/tokenizer.js'
import { Rng } from '../../src/util/rng.js'

const shared = resolve(process.cwd(), '../shared/data')
const tinyPath = resolve(shared, 'tinyshakespeare.txt')

const tricky = [
  '', ' ', 'a', 'Hello, world!', "I'm sure they'll've done it — isn't it?",
  '😀🎉👩‍👩‍👧‍👦 emoji 🇫🇷 flags', '中文字符和日本語のテキスト、한국어', 'e\u0301 a\u0300\u0316 Z\u0351\u0324\u0300 combining',
  '\u0000\u0001\u0007\b\t\u000b\f\r\u001b\u007f controls', ' '.repeat(1000), '\n\n\n\t \t  \n', 'a    b\n\n  c',
  '<|endoftext|>', 'x<|endoftext|>y <|endoftext|><|endoftext|>', '<|endoftext', '12345678901234567890 3.14159',
  '\u00a0\u2003\u3000 unicode spaces\u2028\u2029', 'mixed🙂text中文 with   spaces\r\n', '\ufeffBOM at start',
  'a \ufeffb \ufeff\ufeff c', "\ufeff's x", ' \x85t\x85\x85 u', 'fs\x1cgs\x1d \u180e\u200b zw',
]

/** OpenAI's GPT-2 encoder.py, ported: byte -> unicode map, then greedy lowest-rank merges per regex piece. */
function referenceEncoder(): (text: string) => number[] {
  const encoder = JSON.parse(readFileSync(resolve(shared, 'gpt2/encoder.json'), 'utf8')) as Record<string, number>
  const merges = readFileSync(resolve(shared, 'gpt2/vocab.bpe'), 'utf8').split('\n').slice(1).filter(l => l.length > 0)
  const ranks = new Map(merges.map((m, i) => [m, i]))
  const bs: number[] = []
  for (let b = 33; b <= 126; b++) bs.push(b)
  for (let b = 161; b <= 172; b++) bs.push(b)
  for (let b = 174; b <= 255; b++) bs.push(b)
  const byteToChar = new Map<number, string>(bs.map(b => [b, String.fromCharCode(b)]))
  let n = 0
  for (let b = 0; b < 256; b++) if (!byteToChar.has(b)) byteToChar.set(b, String.fromCharCode(256 + n++))
  // encoder.py's pattern; its \s as Python's regex module reads it (Unicode White_Space), not as JavaScript does
  const ws = '\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000'
  const pat = new RegExp(`'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${ws}\\p{L}\\p{N}]+|[${ws}]+(?![^${ws}])|[${ws}]+`, 'gu')
  const bpe = (token: string): string[] => {
    let word = [...token]
    for (;;) {
      let best = -1, bestRank = Infinity
      for (let i = 0; i < word.length - 1; i++) {
        const r = ranks.get(`${word[i]} ${word[i + 1]}`)
        if (r !== undefined && r < bestRank) { bestRank = r; best = i }
      }
      if (best < 0) return word
      const [a, b] = [word[best]!, word[best + 1]!]
      const merged: string[] = []
      for (let i = 0; i < word.length; i++) {
        if (i < word.length - 1 && word[i] === a && word[i + 1] === b) { merged.push(a + b); i++ } else merged.push(word[i]!)
      }
      word = merged
    }
  }
  return text => {
    const out: number[] = []
    for (const [piece] of text.matchAll(pat)) {
      const mapped = [...Buffer.from(piece, 'utf8')].map(b => byteToChar.get(b)!).join('')
      for (const t of bpe(mapped)) out.push(encoder[t]!)
    }
    return out
  }
}

test('ids equal a port of OpenAI encoder.py on the original GPT-2 vocabulary files', t => {
  if (!existsSync(resolve(shared, 'gpt2/encoder.json'))) { t.skip('../shared/data/gpt2 is absent'); return }
  const ref = referenceEncoder()
  for (const s of tricky) assert.deepEqual(encode(s), ref(s), JSON.stringify(s))
  if (existsSync(tinyPath)) {
    const text = readFileSync(tinyPath, 'utf8').slice(0, 60_000)
    assert.deepEqual(encode(text), ref(text))
  }
})

test('ids equal those of encoder.py run by Python\'s regex module (fixture: U+FEFF, U+0085 and other contested spaces)', () => {
  // made by reference/gpt2_bpe_fixtures.py; JavaScript's own \s (U+FEFF is space, U+0085 is not) gets 41 of them wrong
  const fixture = JSON.parse(readFileSync(new URL('../../../test/fixtures/gpt2-bpe.json', import.meta.url), 'utf8')) as
    { cases: [string, number[]][] }
  assert.ok(fixture.cases.length > 100)
  for (const [s, ids] of fixture.cases) assert.deepEqual(encode(s), ids, JSON.stringify(s))
  assert.deepEqual(fixture.cases[0], ['a \ufeffb', [64, 27332, 119, 123, 65]])
  assert.deepEqual(fixture.cases[2], [' \x85t', [220, 126, 227, 83]])
})

test('pieces of 256+ characters (merged in O(n log n)) get the ids of the library\'s own merge and of encoder.py', t => {
  // texts of runs from small alphabets: long letter, digit, symbol and whitespace pieces among short ones
  const alphabets = ['ab', 'abcdefghij', 'the quick brown fox', '0123456789', '😀é漢字', '!!..--', ' \n\t', 'aé 😀1!', 'aaaa b']
  const lib = new BytePairEncodingCore({ bytePairRankDecoder: bpeRanks, tokenSplitRegex: GPT2_SPLIT, specialTokensEncoder: new Map() })
  const ref = existsSync(resolve(shared, 'gpt2/encoder.json')) ? referenceEncoder() : null
  const rng = new Rng(11)
  let long = 0
  for (let k = 0; k < 80; k++) {
    let text = ''
    for (let p = 1 + rng.int(5); p > 0; p--) {
      const a = [...alphabets[rng.int(alphabets.length)]!]
      const len = rng.int(2) === 0 ? rng.int(20) : 250 + rng.int(700)
      for (let i = 0; i < len; i++) text += a[rng.int(a.length)]
    }
    long += [...text.matchAll(GPT2_SPLIT)].filter(m => m[0].length >= 256).length
    const ids = encode(text)
    assert.deepEqual(ids, lib.encodeNative(text, new Set()), JSON.stringify(text.slice(0, 60)))
    if (ref !== null) assert.deepEqual(ids, ref(text), JSON.stringify(text.slice(0, 60)))
  }
  assert.ok(long >= 40, `${long} long pieces`)
  if (ref === null) t.diagnostic('../shared/data/gpt2 is absent: compared with the library only')
  // a whitespace run of 200,000: the library's encodeNative overflowed the call stack (push(...ids) of one piece)
  const short = lib.encodeNative(' '.repeat(1000) + 'x', new Set())
  assert.deepEqual(short.slice(0, -1), Array<number>(999).fill(220))
  assert.deepEqual(encode(' '.repeat(200_000) + 'x'), [...Array<number>(199_999).fill(220), short.at(-1)!])
  // the library's merge takes ~20 s on 100,000 letters (quadratic); this one well under a second
  const t0 = performance.now()
  const run = 'a'.repeat(100_000) + ' ' + '0'.repeat(50_000)
  assert.equal(decode(encode(run)), run)
  assert.ok(performance.now() - t0 < 5000, `${(performance.now() - t0).toFixed(0)} ms for 150,000 characters in two pieces`)
})

test('decode(encode(s)) == s on tricky strings and random code points', () => {
  for (const s of tricky) assert.equal(decode(encode(s)), s, JSON.stringify(s))
  const rng = new Rng(7)
  const ranges: [number, number][] = [[0, 0x7f], [0x80, 0x7ff], [0x800, 0xd7ff], [0xe000, 0xfffd], [0x10000, 0x10ffff]]
  for (let k = 0; k < 200; k++) {
    let s = ''
    const len = 1 + rng.int(40)
    for (let i = 0; i < len; i++) {
      const [lo, hi] = ranges[rng.int(ranges.length)]!
      s += String.fromCodePoint(lo + rng.int(hi - lo + 1))
    }
    assert.equal(decode(encode(s)), s, JSON.stringify(s))
  }
})

test('tinyshakespeare is 338,025 tokens', t => {
  if (!existsSync(tinyPath)) { t.skip('../shared/data/tinyshakespeare.txt is absent'); return }
  const text = readFileSync(tinyPath, 'utf8')
  const ids = encode(text)
  assert.equal(ids.length, 338_025)
  assert.equal(decode(ids), text)
})

test('"<|endoftext|>" is ordinary text unless allowSpecial', () => {
  const s = 'a<|endoftext|>b <|endoftext|>'
  const plain = encode(s)
  assert.ok(!plain.includes(EOT))
  assert.equal(decode(plain), s)
  const special = encode(s, { allowSpecial: true })
  assert.deepEqual(special, [...encode('a'), EOT, ...encode('b '), EOT])
  assert.equal(decode(special), s)
  assert.deepEqual(encode('<|endoftext|>', { allowSpecial: true }), [EOT])
  assert.deepEqual(encode('no special here', { allowSpecial: true }), encode('no special here'))
})

test('decode rejects ids outside the vocabulary', () => {
  assert.throws(() => decode([50257]), /outside the vocabulary/)
  assert.throws(() => decode([-1]), /outside the vocabulary/)
  assert.equal(decode([EOT]), '<|endoftext|>')
})

test('each decode stands alone: a cut character is U+FFFD, nothing carries over, U+FEFF is kept', () => {
  const ids = encode('日本')   // 日 spans two tokens
  assert.ok(decode(ids.slice(0, 1)).endsWith('\uFFFD'))
  assert.equal(decode([encode('a')[0]!]), 'a')
  assert.equal(decode(ids), '日本')
  // in a fresh process, where gpt-tokenizer's shared decoder dropped it (the first bytes it saw)
  const tokenizer = new URL('../../src/tokenizer.js', import.meta.url).href
  const script = `import(${JSON.stringify(tokenizer)}).then(m => process.stdout.write(` +
    `JSON.stringify(['a\\ufeffb', '\\ufeffx'].map(s => m.decode(m.encode(s))))))`
  assert.deepEqual(JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })), ['a\ufeffb', '\ufeffx'])
})

test('cutting at findSafeCut never changes the ids', () => {
  const check = (text: string, maxChars: number): void => {
    const ids: number[] = []
    let rest = text
    for (let cut = findSafeCut(rest, maxChars); cut > 0; cut = findSafeCut(rest, maxChars)) {
      assert.ok(cut <= maxChars)
      ids.push(...encode(rest.slice(0, cut)))
      rest = rest.slice(cut)
    }
    ids.push(...encode(rest))
    assert.deepEqual(ids, encode(text), `maxChars ${maxChars}: ${JSON.stringify(text.slice(0, 60))}`)
  }
  // U+0085 is space and U+FEFF is not: a cut JavaScript's \s would allow before the U+FEFF here changes the ids
  const contested = ['a \ufeff b\ufeff\ufeff c', 'x\x85\x85y \x85 z\u180e w', 'a\x85  b.\ufeff\ufeff c', ' \x85\ufeffa \x85\ufeff.']
  for (const s of [...tricky, ...contested]) for (const m of [1, 2, 3, 5, 8]) check(s, m)
  check("He said:  'tis   the\n\n\nend\t\t of it's  \u00a0 reign.  ", 4)
  assert.equal(findSafeCut('nowhitespace', 5), -1)
  assert.equal(findSafeCut('ab cd', 10), 2)
  if (existsSync(tinyPath)) check(readFileSync(tinyPath, 'utf8').slice(0, 200_000), 97)
})
