// Text files are decoded in 4 MiB chunks with StringDecoder (fast one-byte strings for ASCII text); the joined
// pieces must equal the WHATWG decoding of the whole file (TextDecoder: BOM dropped, invalid bytes -> U+FFFD),
// also when multi-byte characters and invalid sequences straddle a chunk boundary. The U+FFFD that decoding puts
// in are counted (prepare names a file that was not all UTF-8); one the file spells itself is not.

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { readLines, Replacements, textFilePieces } from '../../src/data/sources/text.js'

const dir = mkdtempSync(join(tmpdir(), 'llmts-text-source-'))
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))

async function decodeFile(bytes: Uint8Array, wantReplaced?: number): Promise<string> {
  const path = join(dir, 'f.txt')
  writeFileSync(path, bytes)
  let text = ''
  const replaced = new Replacements()
  for await (const p of textFilePieces(path, () => {}, replaced)) text += p.text
  if (wantReplaced !== undefined) assert.equal(replaced.count, wantReplaced, 'replacement characters counted')
  assert.equal(replaced.first, firstReplaced(Buffer.from(bytes)), 'the first bad byte')
  return text
}

/** The truth for the first byte that is not UTF-8: where the whole file's decoding puts its first U+FFFD that the
 *  file does not spell (the text before it decoded as it is, so it encodes back to the bytes before that byte). */
function firstReplaced(bytes: Buffer): number | null {
  const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes)
  for (let i = text.indexOf('\ufffd'); i >= 0; i = text.indexOf('\ufffd', i + 1)) {
    const at = Buffer.byteLength(text.slice(0, i))
    if (!(bytes[at] === 0xef && bytes[at + 1] === 0xbf && bytes[at + 2] === 0xbd)) return at
  }
  return null
}

/** The truth for a file read whole: U+FFFD in its decoding less those it spells (EF BF BD). */
function unchunkedReplacements(bytes: Buffer): number {
  let n = [...new TextDecoder('utf-8').decode(bytes)].filter(c => c === '\ufffd').length
  for (let i = 0; i + 2 < bytes.length; i++) if (bytes[i] === 0xef && bytes[i + 1] === 0xbf && bytes[i + 2] === 0xbd) n--
  return n
}

test('small files: BOM dropped, invalid bytes become U+FFFD as TextDecoder decodes them', async () => {
  const cases = [
    Buffer.from('\ufeffhéllo wörld 🙂'),
    Uint8Array.from([0x61, 0xff, 0x62, 0xc3, 0x28, 0xe2, 0x82, 0x20, 0xf0, 0x9f, 0x99]),   // bad, overlong, truncated
    Uint8Array.from([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf, 0x41]),                           // only the first BOM goes
    new Uint8Array(0),
    Uint8Array.from([0x61, 0x62, 0xe2, 0x82]),                                             // only a character cut by the end
  ]
  const replaced = [0, 4, 0, 0, 1]   // 0xff; 0xc3 before '('; 0xe2 0x82 before ' '; 0xf0 0x9f 0x99 at the end
  for (const [i, bytes] of cases.entries()) assert.equal(await decodeFile(bytes, replaced[i]), new TextDecoder('utf-8').decode(bytes))
  assert.equal(await decodeFile(Buffer.from('a\ufffdb\ufffd'), 0), 'a\ufffdb\ufffd')   // spelled by the file: not counted
})

test('a 9 MB file: characters and invalid sequences across the 4 MiB chunk boundaries', async () => {
  const chunk = 4 << 20
  const parts: Buffer[] = []
  let size = 0
  const words = ['the ', 'whale ', 'café ', '🙂 ', '中文 ', '\n\n', 'naïve ']
  for (let i = 0; size < 9_000_000; i++) { const b = Buffer.from(words[i % words.length]!); parts.push(b); size += b.length }
  const bytes = Buffer.concat(parts)
  for (const at of [chunk - 1, chunk - 2, 2 * chunk - 1]) {
    const copy = Buffer.from(bytes)
    Buffer.from('🙂').copy(copy, at - 1)               // a 4-byte character straddling the boundary
    assert.equal(await decodeFile(copy), new TextDecoder('utf-8').decode(copy), `4-byte char at ${at - 1}`)
    copy[at] = 0xe2; copy[at + 1] = 0x82                // a truncated 3-byte sequence on the boundary
    assert.equal(await decodeFile(copy, unchunkedReplacements(copy)), new TextDecoder('utf-8').decode(copy), `truncated sequence at ${at}`)
  }
  for (const start of [chunk - 2, chunk - 1, 2 * chunk - 1]) {   // a U+FFFD the file spells, split 2|1 or 1|2: not counted
    const spelled = Buffer.from(bytes)
    Buffer.from('\ufffd').copy(spelled, start)
    // (it may cut a character beside it, which then is a replacement)
    assert.equal(await decodeFile(spelled, unchunkedReplacements(spelled)), new TextDecoder('utf-8').decode(spelled), `U+FFFD at ${start}`)
  }
})

test('JSONL lines: replacements counted per file, a spelled U+FFFD not', async () => {
  const path = join(dir, 'f.jsonl')
  const line = (text: string): string => JSON.stringify({ text }) + '\n'
  const parts = [Buffer.from(line('caf\u00e9 \ufffd')), Buffer.from('{"text": "caf'), Buffer.from([0xe9, 0x20, 0xff]), Buffer.from('"}\r\n')]
  writeFileSync(path, Buffer.concat(parts))
  const replaced = new Replacements()
  const lines: string[] = []
  for await (const l of readLines(path, replaced)) lines.push(l.line)
  assert.deepEqual(lines, [line('caf\u00e9 \ufffd').trimEnd(), '{"text": "caf\ufffd \ufffd"}'])
  assert.equal(replaced.count, 2)
  assert.equal(replaced.first, Buffer.byteLength(line('caf\u00e9 \ufffd') + '{"text": "caf'), 'the 0xe9 of the second line')
})
