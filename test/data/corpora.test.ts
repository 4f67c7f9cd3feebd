// Built-in corpora: the offline npm corpora have the documents of their packages; tinyshakespeare's
// fallback download (fetch stubbed: offline, truncated, complete) gives a clear error or is cached once.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { openCorpus, TINYSHAKESPEARE_URL } from '../../src/data/sources/corpora.js'
import { InputError } from '../../src/util/errors.js'

const tinyPath = resolve(process.cwd(), '../shared/data/tinyshakespeare.txt')
const dir = mkdtempSync(join(tmpdir(), 'llmts-corpora-'))
after(() => rmSync(dir, { recursive: true, force: true }))

async function texts(name: string): Promise<string[]> {
  const out: string[] = []
  for await (const p of (await openCorpus(name)).pieces()) if (p.newDoc) out.push(p.text); else out[out.length - 1] += p.text
  return out
}

test('moby-dick and sotu come from their npm packages, shuffled with a fixed seed', async () => {
  const moby = await texts('moby-dick')
  assert.equal(moby.length, 139)
  assert.ok(moby.some(d => d.startsWith('CHAPTER 1. Loomings.')))
  assert.notEqual(moby[0]!.slice(0, 20), 'CHAPTER 1. Loomings.', 'shuffled')
  assert.deepEqual(await texts('moby-dick'), moby, 'same order every time')
  // the order of seed 1337 (it decides the validation split, so a changed seed or shuffle would change every run)
  assert.deepEqual(moby.slice(0, 3).map(d => d.split('\n')[0]), ['CHAPTER 44. The Chart.', 'CONTENTS', 'CHAPTER 77. The Great Heidelburgh Tun.'])
  const sotu = await texts('sotu')
  assert.equal(sotu.length, 233)
  assert.deepEqual(sotu.slice(0, 3).map(d => d.slice(0, 40)), ['Mr. Speaker, Mr. Vice President, Members', 'Please, everybody, have a seat. Mr. Spea',
    'Fellow-Citizens of the Senate and of the'])
  assert.ok(sotu.every(d => d.length > 1000))
  await assert.rejects(openCorpus('nope'), /unknown corpus "nope" \(expected one of moby-dick, sotu, tinyshakespeare\)/)
})

test('tinyshakespeare download: offline and truncated are clear errors; a full download is cached', async t => {
  const realFetch = globalThis.fetch
  const cwd = process.cwd()
  const work = join(dir, 'cwd')
  rmSync(work, { recursive: true, force: true })
  mkdirSync(work)
  process.chdir(work)
  const calls: string[] = []
  try {
    globalThis.fetch = (async (url: string) => { calls.push(url); throw new TypeError('fetch failed') }) as typeof fetch
    await assert.rejects(openCorpus('tinyshakespeare', { cacheDir: join(work, 'cache'), sharedPath: join(work, 'no-shared.txt') }), (e: unknown) =>
      e instanceof InputError && /downloading .*input\.txt failed \(fetch failed; offline\?\); pass --tinyshakespeare-path FILE/.test(e.message))
    assert.deepEqual(calls, [TINYSHAKESPEARE_URL])
    globalThis.fetch = (async () => new Response('First Citizen:\n')) as typeof fetch
    await assert.rejects(openCorpus('tinyshakespeare', { cacheDir: join(work, 'cache'), sharedPath: join(work, 'no-shared.txt') }), /has 15 bytes, expected 1115394 \(truncated download\?\)/)
    if (!existsSync(tinyPath)) { t.skip('../shared/data/tinyshakespeare.txt is absent (needed as the served body)'); return }
    const body = readFileSync(tinyPath, 'utf8')
    let served = 0
    globalThis.fetch = (async () => { served++; return new Response(body) }) as typeof fetch
    const a = await openCorpus('tinyshakespeare', { cacheDir: join(work, 'cache'), sharedPath: join(work, 'no-shared.txt') })
    const b = await openCorpus('tinyshakespeare', { cacheDir: join(work, 'cache'), sharedPath: join(work, 'no-shared.txt') })
    assert.equal(served, 1, 'downloaded once, then read from the cache')
    assert.equal(a.totalBytes, 1_115_394)
    assert.equal(b.totalBytes, 1_115_394)
    assert.equal(readFileSync(join(work, 'cache', 'downloads', 'tinyshakespeare.txt'), 'utf8'), body)
  } finally {
    globalThis.fetch = realFetch
    process.chdir(cwd)
  }
})
