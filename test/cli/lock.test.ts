// Two commands on one output: while a live process holds OUT/.lock, train (with or without --resume), prepare
// (of the same NAME), export and download into it are refused with one line naming that process, exit 2, and change nothing.
// prepare fineweb's cache folder is held only while files are fetched into it: a complete cache is shared.
// The holder here is this test process (alive, never an llmts), so nothing depends on timing.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { makeToyRun } from '../train/helpers.js'
import { parquetOf } from '../helpers/http-fault-server.js'

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'llmts-cli-lock-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const toy = makeToyRun(root)

function llmts(...args: string[]): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', env: { ...process.env, LLMTS_DEBUG: '' } })
  return { code: r.status, stderr: r.stderr }
}

/** A folder whose `name` lock this (live) process holds, as a running llmts would. */
function held(dir: string, name = '.lock'): string {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, name), JSON.stringify({ pid: process.pid, host: hostname(), command: 'llmts train' }) + '\n')
  return dir
}

const refused = (r: { code: number | null; stderr: string }, dir: string, name = '.lock'): void => {
  assert.equal(r.code, 2, r.stderr)
  assert.equal(r.stderr, `${r.stderr.split(':')[0]}: ${dir} is in use by llmts train (pid ${process.pid}) (lock file ${join(dir, name)}; ` +
    'wait for it to finish, or remove the lock file if no such process runs)\n')
}

const train = ['--model', toy.modelJson, '--data', toy.data, '--batch-size', '4', '--seq-len', '16', '--total-batch-size', '64',
  '--steps', '2', '--warmup-steps', '1', '--device', 'cpu', '--threads', '1']

test('train --resume into a run another process writes: refused before its checkpoints are looked at', () => {
  const run = held(join(root, 'run'))
  const writing = join(run, 'checkpoints', 'step_000004')   // no state.json yet: its writer is not done
  mkdirSync(writing, { recursive: true })
  refused(llmts('train', ...train, '--out', run, '--resume'), run)
  assert.deepEqual(readdirSync(join(run, 'checkpoints')), ['step_000004'])   // not moved aside as damaged
  refused(llmts('train', ...train, '--out', run, '--overwrite'), run)
  assert.equal(existsSync(writing), true)
})

test('train, prepare (same NAME), export and download into a folder in use are refused; prepare of another NAME is not', () => {
  const fresh = held(join(root, 'fresh'))
  refused(llmts('train', ...train, '--out', fresh), fresh)
  assert.deepEqual(readdirSync(fresh), ['.lock'])
  refused(llmts('train', '--default-run', '--steps', '2', '--out', fresh), fresh)   // npm start twice at once
  assert.deepEqual(readdirSync(fresh), ['.lock'])
  const data = held(join(root, 'data-out'), '.moby-dick.lock')
  refused(llmts('prepare', '--corpus', 'moby-dick', '--out', data, '--workers', '0'), data, '.moby-dick.lock')
  assert.deepEqual(readdirSync(data), ['.moby-dick.lock'])
  writeFileSync(join(root, 'tiny.txt'), 'To be, or not to be.\n')
  const other = llmts('prepare', join(root, 'tiny.txt'), '--name', 'other', '--out', data, '--val-tokens', '4', '--workers', '0')
  assert.equal(other.code, 0, other.stderr)
  assert.deepEqual(readdirSync(data).sort(), ['.moby-dick.lock', 'other.json', 'other_train_000001.bin', 'other_val_000000.bin'])
  // prepare fineweb: the same rule, its lock named after the dataset (before the network: this address would time out)
  const web = held(join(root, 'web-out'), '.edufineweb.lock')
  refused(llmts('prepare', 'fineweb', '--edu', '--out', web, '--cache', join(root, 'cache'), '--base-url', 'http://192.0.2.1:9'),
    web, '.edufineweb.lock')
  assert.deepEqual(readdirSync(web), ['.edufineweb.lock'])
  const hf = held(join(root, 'hf'))
  refused(llmts('export', '--model', 'tiny-gpt2', '--out', hf), hf)
  assert.deepEqual(readdirSync(hf), ['.lock'])
  // before the network: this address would only time out
  refused(llmts('download', 'someone/model', '--out', hf, '--base-url', 'http://192.0.2.1:9'), hf)
  assert.deepEqual(readdirSync(hf), ['.lock'])
})

test('prepare fineweb: a cache another process downloads into is refused; a complete cache is read beside it', () => {
  const cache = join(root, 'fw-cache'), dir = join(cache, 'sample', '10BT')
  const data = parquetOf(Array.from({ length: 120 }, (_, i) => `To be, or not to be, that is question ${i}.`), 64)   // > 1 shard of 1024
  const file = { path: 'sample/10BT/000_00000.parquet', size: data.length }
  held(dir, '.download.lock')
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ repo: 'HuggingFaceFW/fineweb', revision: 'main', dir: 'sample/10BT', files: [file] }))
  const net = ['--cache', cache, '--base-url', 'http://192.0.2.1:9']   // never reached: the manifest is cached
  // the file is missing: both would append to its .part
  refused(llmts('prepare', 'fineweb', '--download-only', ...net), dir, '.download.lock')
  refused(llmts('prepare', 'fineweb', '--out', join(root, 'fw-out'), ...net), dir, '.download.lock')
  assert.deepEqual(readdirSync(dir).sort(), ['.download.lock', 'manifest.json'])
  // complete (files get their final name only once verified): nothing to fetch, nothing to lock
  writeFileSync(join(dir, '000_00000.parquet'), data)
  const only = llmts('prepare', 'fineweb', '--download-only', ...net)
  assert.equal(only.code, 0, only.stderr)
  const full = llmts('prepare', 'fineweb', '--out', join(root, 'fw-out'), '--shard-size', '1024', '--workers', '0', ...net)
  assert.equal(full.code, 0, full.stderr)
  assert.ok(existsSync(join(root, 'fw-out', 'fineweb.json')))
})
