// The durability order of atomic writes, observed by wrapping node:fs (syncBuiltinESMExports makes the wrapped
// functions visible to every importer): a temp file is fsynced before it is renamed over the target, the folder
// after; a multi-file write renames nothing before every file is on disk; a checkpoint replacing an older one
// moves the old one aside (never deletes it) until the new one is in place. Also: a full disk reported by
// write() or only by fsync() (NFS) is an OutOfSpaceError that leaves no temp file, and which codes count as one.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import fs, { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { configFromJson } from '../../src/config.js'
import { ParamLayout } from '../../src/model/params.js'
import { checkpointName, writeCheckpoint, type Checkpoint } from '../../src/train/checkpoint.js'
import { trainDefaults } from '../../src/train/config.js'
import { OutOfSpaceError, spaceError, tempPathFor, writeFileAtomic, writeFilesAtomic } from '../../src/util/atomic.js'
import { Rng } from '../../src/util/rng.js'

const dir = mkdtempSync(join(tmpdir(), 'llmts-atomic-order-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const hasProc = existsSync('/proc/self/fd')

/** Runs `fn` with fsyncSync, renameSync and rmSync recorded as ['fsync', path] / ['rename', from, to] / ['rm', path]
 *  (paths relative to `dir`); `failFsync` makes fsyncSync throw that errno code instead. */
function recorded(fn: () => void, opts: { failFsync?: string } = {}): string[][] {
  const calls: string[][] = []
  const rel = (p: string): string => p.startsWith(dir) ? p.slice(dir.length + 1) || '.' : p
  const orig = { fsyncSync: fs.fsyncSync, renameSync: fs.renameSync, rmSync: fs.rmSync }
  fs.fsyncSync = (fd: number): void => {
    calls.push(['fsync', rel(readlinkSync(`/proc/self/fd/${fd}`))])
    if (opts.failFsync !== undefined) throw Object.assign(new Error(`${opts.failFsync}: injected`), { code: opts.failFsync })
    orig.fsyncSync(fd)
  }
  fs.renameSync = (a: fs.PathLike, b: fs.PathLike): void => { calls.push(['rename', rel(String(a)), rel(String(b))]); orig.renameSync(a, b) }
  fs.rmSync = (p: fs.PathLike, o?: fs.RmOptions): void => { calls.push(['rm', rel(String(p))]); orig.rmSync(p, o) }
  syncBuiltinESMExports()
  try { fn() } finally {
    Object.assign(fs, orig)
    syncBuiltinESMExports()
  }
  return calls
}

const at = (calls: string[][], ...want: string[]): number => {
  const i = calls.findIndex(c => c.length === want.length && c.every((x, k) => x === want[k]))
  assert.ok(i >= 0, `no ${JSON.stringify(want)} in ${JSON.stringify(calls)}`)
  return i
}

test('writeFileAtomic: fsync(temp) < rename(temp -> target) < fsync(folder)', { skip: !hasProc && 'no /proc/self/fd' }, () => {
  const target = join(dir, 'a.json'), tmp = basename(tempPathFor(target))
  const calls = recorded(() => writeFileAtomic(target, '{"a": 1}'))
  const synced = at(calls, 'fsync', tmp), renamed = at(calls, 'rename', tmp, 'a.json'), folder = at(calls, 'fsync', '.')
  assert.ok(synced < renamed && renamed < folder, JSON.stringify(calls))
})

test('writeFilesAtomic: every file is fsynced before the first rename', { skip: !hasProc && 'no /proc/self/fd' }, () => {
  const names = ['x.bin', 'y.bin']
  const calls = recorded(() => writeFilesAtomic(names.map(n => ({ path: join(dir, n), write: w => w.write(n) }))))
  const firstRename = calls.findIndex(c => c[0] === 'rename')
  for (const n of names) assert.ok(at(calls, 'fsync', basename(tempPathFor(join(dir, n)))) < firstRename, JSON.stringify(calls))
})

test('a checkpoint replacing an older one: the old one is moved aside, and removed only once the new one is in place',
  { skip: !hasProc && 'no /proc/self/fd' }, () => {
    const config = configFromJson({ preset: 'tiny-variant', vocabSize: 96, contextLength: 32, layers: 1, channels: 32, heads: 4,
      kvHeads: 2, mlpHidden: 64 }, 'test')
    const params = new Float32Array(new ParamLayout(config).total).fill(0.5)
    const ck: Checkpoint = { modelConfig: config, trainConfig: { ...trainDefaults, data: 'd', seqLen: 32 }, params, optimizer: null,
      progress: { step: 4, loader: null, rng: new Rng(1).state(), valLoss: null, bestValLoss: null } }
    const target = join(dir, 'run', 'checkpoints', checkpointName(4)), name = `run/checkpoints/${checkpointName(4)}`
    writeCheckpoint(target, ck)
    const calls = recorded(() => writeCheckpoint(target, ck))
    const aside = calls.findIndex(c => c[0] === 'rename' && c[1] === name)
    const inPlace = calls.findIndex(c => c[0] === 'rename' && c[2] === name)
    assert.ok(aside >= 0 && aside < inPlace, `the old checkpoint is renamed aside first: ${JSON.stringify(calls)}`)
    assert.ok(!calls.slice(0, inPlace).some(c => c[0] === 'rm' && (c[1] === name || c[1] === calls[aside]![2])),
      `nothing of the old checkpoint is removed before the new one is in place: ${JSON.stringify(calls)}`)
    assert.ok(at(calls, 'fsync', calls[inPlace]![1]!) < inPlace, 'the new folder is fsynced before its rename')
    assert.ok(at(calls, 'fsync', 'run/checkpoints') > inPlace, 'and the parent after')
    assert.ok(at(calls, 'rm', calls[aside]![2]!) > inPlace)
  })

test('a full disk reported only by fsync (as NFS does) is an OutOfSpaceError; no temp file is left', { skip: !hasProc && 'no /proc/self/fd' }, () => {
  const target = join(dir, 'late.json')
  assert.throws(() => recorded(() => writeFileAtomic(target, 'x'), { failFsync: 'EDQUOT' }),
    (e: Error) => e instanceof OutOfSpaceError && e.message === `cannot write ${target}: disk quota exceeded (EDQUOT)`)
  assert.deepEqual(readdirSync(dir).filter(n => n.includes('late')), [])
})

test('writeFileAtomic on a full disk (/dev/full): OutOfSpaceError naming the file, no temp file left', t => {
  if (!existsSync('/dev/full')) { t.skip('no /dev/full on this system'); return }
  const target = join(dir, 'full.json')
  symlinkSync('/dev/full', tempPathFor(target))
  assert.throws(() => writeFileAtomic(target, 'x'.repeat(1 << 16)),
    (e: Error) => e instanceof OutOfSpaceError && e.message === `cannot write ${target}: no space left on device (ENOSPC)`)
  assert.deepEqual(readdirSync(dir).filter(n => n.includes('full')), [])
})

test('spaceError: ENOSPC, EDQUOT and EFBIG are OutOfSpaceErrors (exit 2); anything else is returned as it was', () => {
  const cases: [string, string][] = [['ENOSPC', 'no space left on device (ENOSPC)'], ['EDQUOT', 'disk quota exceeded (EDQUOT)'],
    ['EFBIG', 'file too large (EFBIG: over the file-size limit)']]
  for (const [code, text] of cases) {
    const e = spaceError(Object.assign(new Error(code), { code }), '/x/y')
    assert.ok(e instanceof OutOfSpaceError && e.message === `cannot write /x/y: ${text}`, code)
  }
  const other = Object.assign(new Error('EACCES'), { code: 'EACCES' })
  assert.equal(spaceError(other, '/x/y'), other)
})
