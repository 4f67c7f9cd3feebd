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
