// lockOutput: a lock held by a live process refuses (naming its pid), one left by a dead process is taken over
// with a note, another host's is refused whatever its pid, and release() leaves no trace of the lock; a takeover claim
// left by a dead taker is passed over, one whose owner runs is waited for.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
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
  const { nonce, start, boot, ...named } = JSON.parse(before)   // start, boot: checked below (Linux)
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

/** A folder whose .lock names a dead process, and a first takeover claim of that very file holding `claim`. */
function staleWithClaim(name: string, claim: string): { dir: string; path: string } {
  const dir = join(root, name), path = join(dir, '.lock')
  mkdirSync(dir)
  writeFileSync(path, holder(deadPid()))
  const { ino, mtimeMs } = statSync(path)
  const key = createHash('sha256').update(`${ino}:${mtimeMs}:${readFileSync(path, 'utf8')}`).digest('hex').slice(0, 16)
  writeFileSync(`${path}.takeover-${key}-1`, claim)
  return { dir, path }
}

test('a takeover claim left by a taker that died mid-takeover does not block the next: taken over, claims removed', () => {
  const { dir } = staleWithClaim('claimed', holder(deadPid(), hostname()))   // its owner killed before removing it
  const notes: string[] = []
  const lock = lockOutput(dir, { command: 'llmts train', flag: '--out', note: l => notes.push(l) })
  assert.equal(notes.length, 1)
  assert.deepEqual(readdirSync(dir), ['.lock'])
  lock.release()
})

test('a takeover claim whose owner runs is waited for, then refused naming the claim files', () => {
  const { dir, path } = staleWithClaim('claimed-live', holder(process.pid))   // a live owner (never finishing here)
  const t0 = Date.now()
  assert.throws(() => lockOutput(dir, { command: 'llmts train', flag: '--out', note: () => {} }),
    (e: Error) => e instanceof InputError && e.message === `llmts train: ${dir}: another process is taking over the lock ` +
      `file ${path} of llmts train (pid ${JSON.parse(readFileSync(path, 'utf8')).pid}), for more than 5 s (remove ` +
      `${path}.takeover-* if no such process runs)`)
  assert.ok(Date.now() - t0 >= 4900)
  assert.equal(readdirSync(dir).length, 2)   // both left as they were
})

const linux = existsSync('/proc/self/stat') && existsSync('/proc/sys/kernel/random/boot_id')
const bootId = (): string => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
/** Field 22 of /proc/PID/stat, the start time in clock ticks since boot, as awk splits it (no spaces in these names). */
const startOf = (pid: number): number => Number(spawnSync('awk', ['{ print $22 }', `/proc/${pid}/stat`], { encoding: 'utf8' }).stdout)

test('the lock file names its holder by start time and boot id too (Linux)', { skip: !linux }, () => {
  const lock = lockOutput(root, { command: 'llmts train', flag: '--out', note: () => {}, name: 'own.lock' })
  const h = JSON.parse(readFileSync(lock.path, 'utf8'))
  assert.deepEqual([h.pid, h.start, h.boot], [process.pid, startOf(process.pid), bootId()])
  lock.release()
})

test("a live pid that is not the lock's holder (another start time or boot) is taken over; the holder is refused (Linux)",
  { skip: !linux }, async () => {
    const sleeper = spawn('sleep', ['30'])   // a running process given the dead holder's pid, as it were
    try {
      await new Promise(resolve => sleeper.on('spawn', resolve))
      const pid = sleeper.pid!, start = startOf(pid), path = join(root, 'reused.lock')
      assert.ok(start > 0)
      const write = (at: object): void => writeFileSync(path, JSON.stringify({ pid, host: hostname(), command: 'llmts train', ...at }))
      for (const at of [{ start: start + 1, boot: bootId() }, { start, boot: 'another-boot' }]) {
        write(at)
        const notes: string[] = []
        const lock = lockOutput(root, { command: 'llmts export', flag: '--out', note: l => notes.push(l), name: 'reused.lock' })
        assert.deepEqual(notes, [`note: took over the lock file ${path} of llmts train (pid ${pid}), which is no longer running`])
        lock.release()
      }
      write({ start, boot: bootId() })
      assert.throws(() => lockOutput(root, { command: 'llmts export', flag: '--out', note: () => {}, name: 'reused.lock' }),
        new RegExp(`in use by llmts train \\(pid ${pid}\\)`))
      write({})   // written by an earlier version: the pid alone decides
      assert.throws(() => lockOutput(root, { command: 'llmts export', flag: '--out', note: () => {}, name: 'reused.lock' }),
        new RegExp(`in use by llmts train \\(pid ${pid}\\)`))
    } finally { sleeper.kill() }
  })
