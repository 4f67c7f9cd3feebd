// lockOutput: a lock held by a live process refuses (naming its pid), one left by a dead process is taken over
// with a note, another host's is refused whatever its pid, and release() leaves no trace of the lock; a takeover claim
// left by a dead taker is passed over, one whose owner runs is waited for.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { InputError } from '../../src/util/errors.js'
import { lockOutput } from '../../src/util/lock.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-lock-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

const holder = (pid: number, host = hostname()): string => JSON.stringify({ pid, host, command: 'llmts train' }) + '\n'
/** The pid of a process that has exited (a reused pid within the test is vanishingly unlikely). */
const deadPid = (): number => spawnSync(process.execPath, ['-e', '']).pid!

test('a lock held by a live process is refused, naming it; the lock file is left as it was', () => {
  const dir = join(root, 'live')
  lockOutput(dir, { command: 'llmts train', flag: '--out', note: () => {} })   // made by this (live) process
  const before = readFileSync(join(dir, '.lock'), 'utf8')
  const { nonce, ...named } = JSON.parse(before)
  assert.deepEqual(named, { pid: process.pid, host: hostname(), command: 'llmts train' })
  assert.match(nonce, /^[0-9a-f]{12}$/)   // tells this lock file from any other this process writes
  assert.throws(() => lockOutput(dir, { command: 'llmts export', flag: '--out', note: () => {} }),
    (e: Error) => e instanceof InputError &&
      e.message === `llmts export: ${dir} is in use by llmts train (pid ${process.pid}) (lock file ${join(dir, '.lock')}; ` +
        'wait for it to finish, or remove the lock file if no such process runs)')
  assert.equal(readFileSync(join(dir, '.lock'), 'utf8'), before)
})

test('a lock left by a dead process is taken over with a note, and released without a trace', () => {
  const dir = join(root, 'stale', 'run')
  lockOutput(dir, { command: 'x', flag: '--out', note: () => {} }).release()   // makes the folders, then removes them
  assert.equal(existsSync(join(root, 'stale')), false)
  const notes: string[] = []
  const pid = deadPid()
  writeFileSync(join(root, 'dead.lock'), holder(pid))
  const lock = lockOutput(root, { command: 'llmts prepare', flag: '--out', note: l => notes.push(l), name: 'dead.lock' })
  assert.deepEqual(notes, [`note: took over the lock file ${join(root, 'dead.lock')} of llmts train (pid ${pid}), which is no longer running`])
  assert.equal(JSON.parse(readFileSync(lock.path, 'utf8')).pid, process.pid)
  lock.release()
  assert.equal(existsSync(lock.path), false)
  assert.equal(existsSync(root), true)   // a folder that existed before stays
})

test("another host's lock is refused even when its pid is not running here", () => {
  writeFileSync(join(root, 'far.lock'), holder(deadPid(), 'elsewhere'))
  assert.throws(() => lockOutput(root, { command: 'llmts train', flag: '--out', note: () => {}, name: 'far.lock' }),
    /in use by llmts train \(pid \d+ on elsewhere\)/)
})

test('an empty lock file (its holder killed between creating and writing it) is taken over once 2 s old, with a note', () => {
  const path = join(root, 'empty.lock'), notes: string[] = []
  writeFileSync(path, '')   // just made: it may be one being written, so it is waited for first
  const t0 = Date.now()
  const lock = lockOutput(root, { command: 'llmts train', flag: '--out', note: l => notes.push(l), name: 'empty.lock' })
  const waited = Date.now() - t0
  assert.ok(waited >= 1900 && waited < 5000, `waited ${waited} ms, expected about 2,000`)
  assert.deepEqual(notes, [`note: took over the lock file ${path} of another process (an unreadable lock file), which is no longer running`])
  assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, process.pid)
  lock.release()
})

test('a takeover claim left by a taker that died mid-takeover does not block the next: taken over, claims removed', () => {
  const dir = join(root, 'claimed'), path = join(dir, '.lock')
  mkdirSync(dir)
  writeFileSync(path, holder(deadPid()))
  const { ino, mtimeMs } = statSync(path)
  const key = createHash('sha256').update(`${ino}:${mtimeMs}:${readFileSync(path, 'utf8')}`).digest('hex').slice(0, 16)
  writeFileSync(`${path}.takeover-${key}-1`, holder(deadPid(), hostname()))   // its owner killed before removing it
  const notes: string[] = []
  const lock = lockOutput(dir, { command: 'llmts train', flag: '--out', note: l => notes.push(l) })
  assert.equal(notes.length, 1)
  assert.deepEqual(readdirSync(dir), ['.lock'])
  lock.release()
})

test('a takeover claim whose owner runs is waited for, then refused naming the claim files', () => {
  const dir = join(root, 'claimed-live'), path = join(dir, '.lock')
  mkdirSync(dir)
  writeFileSync(path, holder(deadPid()))
  const { ino, mtimeMs } = statSync(path)
  const key = createHash('sha256').update(`${ino}:${mtimeMs}:${readFileSync(path, 'utf8')}`).digest('hex').slice(0, 16)
  writeFileSync(`${path}.takeover-${key}-1`, holder(process.pid))   // a live owner (never finishing here)
  const t0 = Date.now()
  assert.throws(() => lockOutput(dir, { command: 'llmts train', flag: '--out', note: () => {} }),
    (e: Error) => e instanceof InputError && e.message === `llmts train: ${dir}: another process is taking over the lock ` +
      `file ${path} of llmts train (pid ${JSON.parse(readFileSync(path, 'utf8')).pid}), for more than 5 s (remove ` +
      `${path}.takeover-* if no such process runs)`)
  assert.ok(Date.now() - t0 >= 4900)
  assert.equal(readdirSync(dir).length, 2)   // both left as they were
})
