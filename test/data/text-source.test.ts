// Text files are decoded in 4 MiB chunks with StringDecoder (fast one-byte strings for ASCII text); the joined
// pieces must equal the WHATWG decoding of the whole file (TextDecoder: BOM dropped, invalid bytes -> U+FFFD),
// also when multi-byte characters and invalid sequences straddle a chunk boundary.

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { textFilePieces } from '../../src/data/sources/text.js'

const dir = mkdtempSync(join(tmpdir(), 'llmts-text-source-'))
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))

async function decodeFile(bytes: Uint8Array): Promise<string> {
  const path = join(dir, 'f.txt')
  writeFileSync(path, bytes)
  let text = ''
  for await (const p of textFilePieces(path, () => {})) text += p.text
  return text
}

test('small files: BOM dropped, invalid bytes become U+FFFD as TextDecoder decodes them', async () => {
  const cases = [
    Buffer.from('\ufeffhéllo wörld 🙂'),
    Uint8Array.from([0x61, 0xff, 0x62, 0xc3, 0x28, 0xe2, 0x82, 0x20, 0xf0, 0x9f, 0x99]),   // bad, overlong, truncated
    Uint8Array.from([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf, 0x41]),                           // only the first BOM goes
    new Uint8Array(0),
  ]
  for (const bytes of cases) assert.equal(await decodeFile(bytes), new TextDecoder('utf-8').decode(bytes))
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
    assert.equal(await decodeFile(copy), new TextDecoder('utf-8').decode(copy), `truncated sequence at ${at}`)
  }
})
