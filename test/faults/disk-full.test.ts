// Disk full. A file-size limit (bash `ulimit -f`: the write fails with EFBIG; node ignores SIGXFSZ) stops
// `llmts train` inside a checkpoint write and `llmts prepare` inside a shard write: exit 2, one line naming the
// file and the cause, the previous checkpoint or shards intact, no temp file left, nothing half-written that
// looks complete. ENOSPC itself is produced in-process by a temp path planted as a symlink to /dev/full.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readShard, writeShard } from '../../src/data/shards.js'
import { writeSafetensors } from '../helpers/safetensors.js'
import { listCheckpoints, readCheckpoint } from '../../src/train/checkpoint.js'
import { readLog } from '../../src/train/log.js'
import { OutOfSpaceError, tempPathFor } from '../../src/util/atomic.js'
import { makeToyRun } from '../train/helpers.js'
import { bash, isOneLine, llmts, tempRoot, withoutTiming } from './helpers.js'

const root = tempRoot('disk')
const toy = makeToyRun(root)
const settings = ['--model', toy.modelJson, '--data', toy.data, '--batch-size', '4', '--seq-len', '16', '--total-batch-size', '64',
  '--steps', '8', '--warmup-steps', '1', '--val-every', '4', '--val-steps', '1', '--checkpoint-every', '2', '--sample-every', '0', '--device', 'cpu']
const hidden = (dir: string): string[] => existsSync(dir) ? readdirSync(dir).filter(n => n.startsWith('.')) : []

test('a checkpoint write hits the file-size limit: exit 2, one line, earlier checkpoints intact; --resume then completes',
  { timeout: 60_000 }, () => {
  const ref = join(root, 'ref'), run = join(root, 'full')
  const r0 = llmts(['train', ...settings, '--out', ref])
  assert.equal(r0.code, 0, r0.stderr)
  // the same run as if it had been stopped after its step-4 checkpoint
  cpSync(ref, run, { recursive: true })
  for (const s of ['000006', '000008']) rmSync(join(run, 'checkpoints', `step_${s}`), { recursive: true })
  const modelBytes = readFileSync(join(run, 'checkpoints', 'step_000004', 'model.safetensors')).byteLength
  const optBytes = readFileSync(join(run, 'checkpoints', 'step_000004', 'optimizer.safetensors')).byteLength
  const limitKb = Math.ceil((modelBytes + optBytes) / 2 / 1024)   // fits the model file, not the optimizer's
  assert.ok(limitKb * 1024 > modelBytes && limitKb * 1024 < optBytes)

  // --keep-checkpoints 1: step 4's is the one the resume needs, and must not be pruned before step 6's is whole
  const r = bash(`ulimit -f ${limitKb}; exec "$LLMTS_NODE" "$LLMTS_MAIN" train --out "${run}" --resume --keep-checkpoints 1`)
  assert.equal(r.code, 2, `exit ${r.code} ${r.signal}: ${r.stderr}`)
  const last = r.stderr.trim().split('\n').at(-1)!
  assert.match(last, /^llmts train: checkpoint of step 6 not written: cannot write .*optimizer\.safetensors: file too large \(EFBIG: over the file-size limit\); the checkpoints already written are intact \(free space, then llmts train --out .* --resume\)$/)
  assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace')
  assert.deepEqual(listCheckpoints(run).map(c => c.step), [4], 'no step_000006 appears')
  for (const c of listCheckpoints(run)) readCheckpoint(c.path, { withOptimizer: true })
  assert.deepEqual(hidden(join(run, 'checkpoints')), [], 'the temp directory is removed')

  const again = llmts(['train', '--out', run, '--resume'])
  assert.equal(again.code, 0, again.stderr)
  assert.deepEqual(withoutTiming(readLog(join(run, 'log.jsonl'))), withoutTiming(readLog(join(ref, 'log.jsonl'))))
})

test('a shard write hits the file-size limit: exit 2, one line, old shards whole, no NAME.json, training refuses the shards',
  { timeout: 60_000 }, () => {
  const out = join(root, 'shards')
  const text = (seed: number): string => Array.from({ length: 3000 }, (_, i) => `word${(i * seed) % 997} and more`).join(' ')
  writeFileSync(join(root, 'a.txt'), text(7))
  const ok = llmts(['prepare', join(root, 'a.txt'), '--out', out, '--name', 'c', '--val-tokens', '1000', '--shard-size', '6000', '--workers', '0'])
  assert.equal(ok.code, 0, ok.stderr)
  const before = new Map(readdirSync(out).filter(n => n.endsWith('.bin')).map(n => [n, readFileSync(join(out, n))]))
  assert.ok(before.has('c_train_000001.bin') && existsSync(join(out, 'c.json')))

  writeFileSync(join(root, 'a.txt'), text(13))   // new content; train shards (13 KB) exceed the 8 KB limit
  const r = bash(`ulimit -f 8; exec "$LLMTS_NODE" "$LLMTS_MAIN" prepare "${join(root, 'a.txt')}" --out "${out}" --name c ` +
    '--val-tokens 1000 --shard-size 6000 --workers 0')
  assert.equal(r.code, 2, `exit ${r.code} ${r.signal}: ${r.stderr}`)
  assert.ok(isOneLine(r.stderr), r.stderr)
  assert.match(r.stderr, /cannot write .*c_train_000001\.bin: file too large \(EFBIG/)
  assert.deepEqual(hidden(out), [], 'no temp file is left')
  assert.ok(!existsSync(join(out, 'c.json')), 'NAME.json (the completion record) is gone: the output does not claim to be complete')
  for (const [n, bytes] of before) {
    if (n === 'c_val_000000.bin') continue   // small enough: rewritten whole with the new text
    assert.ok(readFileSync(join(out, n)).equals(bytes), `${n} is the previous, complete shard`)
    readShard(join(out, n))
  }
  readShard(join(out, 'c_val_000000.bin'))
  // the new val shard beside the old train shards: training refuses the mix
  const t = llmts(['train', '--data', out, '--model', 'tiny-gpt2', '--steps', '1', '--warmup-steps', '1', '--out', join(root, 'unfinished-run')])
  assert.equal(t.code, 2, t.stderr)
  assert.ok(isOneLine(t.stderr), t.stderr)
  assert.match(t.stderr, /c_train_000001\.bin is part of an unfinished llmts prepare \(.*c\.incomplete exists, c\.json does not\)/)
})

test('ENOSPC (a temp path planted as a symlink to /dev/full): OutOfSpaceError naming the file, no temp left', t => {
  if (!existsSync('/dev/full')) { t.skip('no /dev/full on this system'); return }
  const dir = join(root, 'enospc')
  mkdirSync(dir)
  const cases: [string, () => void][] = [
    [join(dir, 'x_train_000001.bin'), () => writeShard(join(dir, 'x_train_000001.bin'), [1, 2, 3])],
    [join(dir, 'w.safetensors'),
      () => writeSafetensors(join(dir, 'w.safetensors'), [{ name: 'a', dtype: 'F32', shape: [2], data: new Float32Array(2) }])],
  ]
  for (const [path, write] of cases) {
    symlinkSync('/dev/full', tempPathFor(path))
    assert.throws(write, (e: Error) => e instanceof OutOfSpaceError && e.message === `cannot write ${path}: no space left on device (ENOSPC)`)
    assert.deepEqual(readdirSync(dir), [], `${path}: nothing left behind`)
  }
})
