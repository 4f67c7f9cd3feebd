// lockOutput under contention: 8 processes released in the same millisecond on one stale lock. Each round, the
// takers that get the lock log '+pid' when they do and '-pid' before they release it, 150 ms later; no two may
// hold it at once (an '+' while another holds it), and the lock and every takeover file are gone at the end.
// Before takeovers were claimed (a stale file was removed and made again), about 1 round in 4 had two holders.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'

const root = mkdtempSync(join(tmpdir(), 'llmts-lock-race-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const lockJs = new URL('../../src/util/lock.js', import.meta.url).href
const TAKERS = 8, ROUNDS = Number(process.env.LLMTS_LOCK_RACE_ROUNDS ?? 12)

// argv: dir, log, t0 (ms since epoch: all start then). A refusal (the lock is held) is the expected outcome for most.
const taker = `
import { appendFileSync } from 'node:fs'
import { lockOutput } from '${lockJs}'
const [dir, log, t0] = process.argv.slice(1)
const sleep = ms => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
sleep(Math.max(0, Number(t0) - Date.now() - 5))
while (Date.now() < Number(t0)) {}
let lock
try { lock = lockOutput(dir, { command: 'taker', flag: '--out', note: () => {} }) } catch (e) {
  if (e.name !== 'InputError') throw e
  process.exit(0)
}
appendFileSync(log, '+' + process.pid + '\\n')
sleep(150)
appendFileSync(log, '-' + process.pid + '\\n')
lock.release()
`

function runTaker(dir: string, log: string, t0: number): Promise<string> {
  return new Promise(resolve => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', taker, dir, log, String(t0)], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    p.stderr.on('data', (d: Buffer) => { err += d.toString() })
    p.on('close', code => resolve(code === 0 ? '' : `taker ${p.pid} exited ${code}: ${err}`))
  })
}

/** The most processes that held the lock at once, from the log's '+pid' / '-pid' lines. */
function mostAtOnce(log: string): { most: number; held: number } {
  let now = 0, most = 0, held = 0
  for (const line of log.split('\n').filter(l => l !== '')) {
    if (line.startsWith('+')) { now++; held++; most = Math.max(most, now) } else now--
  }
  return { most, held }
}

test(`${TAKERS} processes taking over one stale lock at once: one holds it at a time, in each of ${ROUNDS} rounds`, async () => {
  const deadPid = spawnSync(process.execPath, ['-e', '']).pid!
  const overlaps: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const dir = join(root, `r${round}`), log = join(root, `r${round}.log`)
    spawnSync('mkdir', ['-p', dir])
    writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: deadPid, host: hostname(), command: 'llmts train' }) + '\n')
    writeFileSync(log, '')
    const t0 = Date.now() + 1500   // the takers' start-up (node, the module) is done by then
    const errors = (await Promise.all(Array.from({ length: TAKERS }, () => runTaker(dir, log, t0)))).filter(e => e !== '')
    assert.deepEqual(errors, [])
    const { most, held } = mostAtOnce(readFileSync(log, 'utf8'))
    assert.ok(held >= 1, `round ${round}: no taker got the lock`)
    if (most > 1) overlaps.push(round)
    assert.deepEqual(readdirSync(dir), [], `round ${round}: left behind`)
  }
  assert.deepEqual(overlaps, [], `rounds in which two or more processes held the lock at once (of ${ROUNDS})`)
})
