// Path specs: globs (*, ?, [...], **), recursive directory listing in code-unit order with hidden entries
// skipped, and expandPaths' errors for missing paths, empty globs and directories without usable files.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expandPaths, globFiles, listDirectory } from '../../src/data/files.js'

const dir = mkdtempSync(join(tmpdir(), 'llmts-files-'))
after(() => rmSync(dir, { recursive: true, force: true }))
for (const f of ['a.txt', 'B.txt', 'b1.jsonl', 'b2.jsonl', '.hidden.txt', 'sub/c.txt', 'sub/deep/d.txt', '.git/e.txt']) {
  mkdirSync(join(dir, f, '..'), { recursive: true })
  writeFileSync(join(dir, f), 'x')
}
const rel = (ps: string[]): string[] => ps.map(p => p.slice(dir.length + 1))

test('globFiles: *, ?, [...] and ** with hidden entries skipped, sorted', () => {
  assert.deepEqual(rel(globFiles(join(dir, '*.txt'))), ['B.txt', 'a.txt'])
  assert.deepEqual(rel(globFiles(join(dir, 'b?.jsonl'))), ['b1.jsonl', 'b2.jsonl'])
  assert.deepEqual(rel(globFiles(join(dir, 'b[2-3].*'))), ['b2.jsonl'])
  assert.deepEqual(rel(globFiles(join(dir, '**', '*.txt'))), ['B.txt', 'a.txt', 'sub/c.txt', 'sub/deep/d.txt'])
  assert.deepEqual(rel(globFiles(join(dir, 's*', '*', '*.txt'))), ['sub/deep/d.txt'])
  assert.deepEqual(globFiles(join(dir, '*.none')), [])
})

test('listDirectory is recursive, sorted by code unit, without hidden entries', () => {
  assert.deepEqual(rel(listDirectory(dir)), ['B.txt', 'a.txt', 'b1.jsonl', 'b2.jsonl', 'sub/c.txt', 'sub/deep/d.txt'])
  assert.deepEqual(rel(listDirectory(dir, { recursive: false })), ['B.txt', 'a.txt', 'b1.jsonl', 'b2.jsonl'])
})

test('expandPaths keeps order, filters directories, keeps explicit files, and names bad specs', () => {
  const opts = { what: 'x', accept: (p: string) => p.endsWith('.txt'), acceptHint: '.txt files' }
  assert.deepEqual(rel(expandPaths([join(dir, 'b1.jsonl'), join(dir, 'sub'), join(dir, 'a.txt'), join(dir, 'sub', 'c.txt')], opts)),
    ['b1.jsonl', 'sub/c.txt', 'sub/deep/d.txt', 'a.txt'])
  assert.throws(() => expandPaths([join(dir, 'nope')], opts), /x: no such file or directory: .*nope/)
  assert.throws(() => expandPaths([join(dir, '*.none')], opts), /x: no files match .*\*\.none/)
  mkdirSync(join(dir, 'empty'))
  assert.throws(() => expandPaths([join(dir, 'empty')], opts), /x: directory .*empty has no usable files \(expected \.txt files\)/)
})

test('expandPaths reads a file named twice once: another spelling, a symlink, a folder holding it', () => {
  const opts = { what: 'x', accept: (p: string) => p.endsWith('.txt'), acceptHint: '.txt files' }
  symlinkSync(join(dir, 'a.txt'), join(dir, 'link-to-a.txt'))
  try {
    assert.deepEqual(rel(expandPaths([join(dir, 'a.txt'), `${dir}/sub/../a.txt`, `${dir}/./a.txt`, join(dir, 'link-to-a.txt')], opts)), ['a.txt'])
    assert.deepEqual(rel(expandPaths([join(dir, 'sub', 'c.txt'), join(dir, 'sub')], opts)), ['sub/c.txt', 'sub/deep/d.txt'])
  } finally { rmSync(join(dir, 'link-to-a.txt')) }
})

// A fresh folder per test below, so the listings above stay as they are.
const cases = mkdtempSync(join(tmpdir(), 'llmts-files-cases-'))
after(() => rmSync(cases, { recursive: true, force: true }))
function freshDir(files: readonly string[]): string {
  const d = mkdtempSync(join(cases, 'case-'))
  for (const f of files) {
    mkdirSync(join(d, f, '..'), { recursive: true })
    writeFileSync(join(d, f), 'x')
  }
  return d
}

test('globFiles returns one list in code-unit order, not the order it walked the folders in', () => {
  // Node's readdir (libuv scandir) already lists a folder by UTF-8 bytes, which differs from UTF-16 code-unit
  // order only past U+FFFF: U+FF5A (EF BD 9A) comes before U+1F600 (F0 9F 98 80) by bytes, after its
  // surrogate D83D by code units.
  const d = freshDir(['\uff5a.bin', '\u{1f600}.bin', 'a.bin'])
  assert.deepEqual(globFiles(join(d, '*.bin')).map(p => p.slice(d.length + 1)), ['a.bin', '\u{1f600}.bin', '\uff5a.bin'])
  // '**' walks a folder's own files before its subfolders; the result is still one sorted list
  const t = freshDir(['z.txt', 'sub/c.txt', 'a.txt', 'sub/x/y.txt'])
  assert.deepEqual(globFiles(join(t, '**', '*.txt')).map(p => p.slice(t.length + 1)), ['a.txt', 'sub/c.txt', 'sub/x/y.txt', 'z.txt'])
})

test("globFiles: '[!...]' negates a bracket set", () => {
  const d = freshDir(['b1.jsonl', 'b2.jsonl', 'b3.jsonl', 'b!.jsonl'])
  assert.deepEqual(globFiles(join(d, 'b[!1].jsonl')).map(p => p.slice(d.length + 1)), ['b!.jsonl', 'b2.jsonl', 'b3.jsonl'])
  assert.deepEqual(globFiles(join(d, 'b[!1-2].jsonl')).map(p => p.slice(d.length + 1)), ['b!.jsonl', 'b3.jsonl'])
})

test('expandPaths takes an existing file whose name has glob characters literally', () => {
  const d = freshDir(['a[1].txt', 'a1.txt', 'what?.txt', 'whatX.txt'])
  const opts = { what: 'x', accept: () => true, acceptHint: 'any file' }
  assert.deepEqual(expandPaths([join(d, 'a[1].txt')], opts), [join(d, 'a[1].txt')])
  assert.deepEqual(expandPaths([join(d, 'what?.txt')], opts), [join(d, 'what?.txt')])
  // a pattern that names no existing file is still a glob
  assert.deepEqual(expandPaths([join(d, 'what[X].txt')], opts), [join(d, 'whatX.txt')])
})
