// Data parallelism (`llmts train --nproc N`) through the binary, on the CPU and on the CUDA emulator: N ranks with
// accumulation a log what one process with accumulation N·a logs (the same tokens per step; only the order of float
// sums differs), validation and HellaSwag included; the ranks stop, resume and fail together. The launcher's hub is
// checked alone too.

import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { writeShard } from '../../src/data/shards.js'
import { listCheckpoints, readCheckpoint } from '../../src/train/checkpoint.js'
import { rankFromEnv, type LauncherReply } from '../../src/train/collective.js'
import { CollectiveHub } from '../../src/train/launch.js'
import { readLog, type LogRecord } from '../../src/train/log.js'
import { sharedCoresNote } from '../../src/train/run.js'
import { withoutTiming } from '../faults/helpers.js'
import { buildEmulator, emulatorEnv, emulatorSkipReason } from '../backend/cuda-emu/build.js'
import { longValData, makeToyRun } from './helpers.js'
import { lastWins } from '../helpers/args.js'

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'llmts-dp-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const toy = makeToyRun(root)
const common = ['--model', toy.modelJson, '--data', toy.data, '--seq-len', '16', '--batch-size', '4', '--device', 'cpu', '--threads', '1',
  '--warmup-steps', '1', '--sample-every', '0', '--total-batch-size', '256']

function llmts(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string; ms: number } {
  const t0 = Date.now()
  const r = spawnSync(process.execPath, [main, 'train', ...lastWins(args)],
    { encoding: 'utf8', env: { ...process.env, LLMTS_DEBUG: '', ...env }, timeout: 120_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 }
}


/** Same records, and each loss, gradient norm and validation loss within 1e-6 relative. */
function assertLogsClose(a: LogRecord[], b: LogRecord[], what: string): void {
  assert.deepEqual(b.map(r => Object.keys(r)), a.map(r => Object.keys(r)), what)
  a.forEach((r, i) => {
    for (const k of ['loss', 'grad_norm', 'val_loss'] as const) {
      if (!(k in r)) continue
      const x = r[k] as number, y = b[i]![k] as number
      assert.ok(Math.abs(x - y) <= 1e-6 * Math.abs(x), `${what}: step ${r.step} ${k}: ${x} vs ${y}`)
    }
  })
}

test('the hub sums in rank order in float64, broadcasts rank 0\'s bytes, and refuses mismatched requests', () => {
  const got: [number, LauncherReply][] = []
  const hub = new CollectiveHub(3, (rank, r) => got.push([rank, r]))
  const parts = [[1e8, 0.5], [1, 0.25], [-1e8, 0.125]]
  parts.forEach((p, r) => hub.receive(r, { llmts: 'collective', seq: 0, op: 'sum', data: Float32Array.from(p) }))
  assert.equal(got.length, 3, 'one answer per rank, once all three asked')
  for (const [, r] of got) assert.deepEqual([...r.data as Float32Array], [1, 0.875])   // float32 in order would give 0
  got.length = 0
  hub.receive(1, { llmts: 'collective', seq: 1, op: 'broadcast', data: null })
  hub.receive(0, { llmts: 'collective', seq: 1, op: 'broadcast', data: Uint8Array.of(7, 8) })
  assert.equal(got.length, 0)
  hub.receive(2, { llmts: 'collective', seq: 1, op: 'broadcast', data: null })
  assert.deepEqual(got.map(([rank, r]) => [rank, [...r.data as Uint8Array]]), [[0, [7, 8]], [1, [7, 8]], [2, [7, 8]]])
  got.length = 0
  hub.receive(0, { llmts: 'collective', seq: 2, op: 'sum', data: new Float64Array(2) })
  hub.receive(1, { llmts: 'collective', seq: 2, op: 'sum', data: new Float64Array(3) })
  hub.receive(2, { llmts: 'collective', seq: 2, op: 'sum', data: new Float64Array(2) })
  assert.match(got[0]![1].error ?? '', /rank 1 asked for sum of 3 Float64Array values at request 2, rank 0 for sum of 2/)
  got.length = 0
  hub.fail('rank 2 exited')
  hub.receive(0, { llmts: 'collective', seq: 3, op: 'sum', data: new Float64Array(1) })
  assert.deepEqual(got.map(([rank, r]) => [rank, r.error, r.peer]), [[0, 'rank 2 exited', true]], 'after a failure, requests are refused at once')
})

test('rankFromEnv reads LLMTS_RANK / LLMTS_WORLD and refuses a rank outside the world', () => {
  assert.equal(rankFromEnv({}), null)
  assert.deepEqual(rankFromEnv({ LLMTS_RANK: '1', LLMTS_WORLD: '4' }), { rank: 1, world: 4 })
  assert.throws(() => rankFromEnv({ LLMTS_RANK: '4', LLMTS_WORLD: '4' }), /LLMTS_RANK=4 LLMTS_WORLD=4 is not a rank/)
})

test('--nproc 2 logs what one process with twice the accumulation logs, and ends with the same weights', () => {
  const one = join(root, 'one'), two = join(root, 'two')
  // 3 validation batches: rank 0 evaluates batches 0 and 2, rank 1 batch 1, of the 3 that one process reads
  const steps = ['--steps', '8', '--val-every', '4', '--val-steps', '3']
  const a = llmts([...common, ...steps, '--out', one])
  const b = llmts([...common, ...steps, '--out', two, '--nproc', '2'])
  assert.equal(a.code, 0, a.stderr)
  assert.equal(b.code, 0, b.stderr)
  assert.match(a.stderr, /accumulation 4,/)
  assert.match(b.stderr, /accumulation 2, .*2 ranks, gradients summed through the launcher/)
  assert.equal(b.stderr.match(/^step 8\/8/gm)?.length, 1, 'one rank reports')
  const la = withoutTiming(readLog(join(one, 'log.jsonl'))), lb = withoutTiming(readLog(join(two, 'log.jsonl')))
  assert.equal(la.filter(r => 'val_loss' in r).length, 3)
  for (const dir of [one, two]) {   // the throughput counts every rank's tokens: tokens_per_s · ms = the 256-token step
    for (const r of readLog(join(dir, 'log.jsonl')).filter(r => 'tokens_per_s' in r)) {
      const tokens = (r['tokens_per_s'] as number) * (r['ms'] as number) / 1000
      assert.ok(Math.abs(tokens - 256) < 1e-6 * 256, `${dir} step ${r.step}: ${tokens} tokens`)
    }
  }
  assertLogsClose(la, lb, 'one process, two ranks')   // the same tokens and mean: only the order of float sums differs
  const pa = readCheckpoint(listCheckpoints(one).at(-1)!.path, { withOptimizer: false }).params
  const pb = readCheckpoint(listCheckpoints(two).at(-1)!.path, { withOptimizer: false }).params
  let worst = 0
  for (let i = 0; i < pa.length; i++) worst = Math.max(worst, Math.abs(pa[i]! - pb[i]!))
  assert.ok(worst < 2e-6, `weights after 8 steps differ by up to ${worst}`)
})

test('--val-steps beyond the validation shards with ranks: the note and validation losses of one process', () => {
  const args = [...common, '--steps', '1', '--val-every', '1', '--val-steps', '100000']
  const a = llmts([...args, '--out', join(root, 'capped1')])
  const b = llmts([...args, '--out', join(root, 'capped2'), '--nproc', '2'])
  assert.equal(a.code, 0, a.stderr)
  assert.equal(b.code, 0, b.stderr)
  const note = (stderr: string): string | undefined => /^llmts train: the validation shards hold .*$/m.exec(stderr)?.[0]
  assert.ok(note(a.stderr) !== undefined, a.stderr)
  assert.equal(note(b.stderr), note(a.stderr), 'every rank reads the batches one process reads: no "per rank"')
  assertLogsClose(withoutTiming(readLog(join(root, 'capped1', 'log.jsonl'))), withoutTiming(readLog(join(root, 'capped2', 'log.jsonl'))),
    'capped validation')
})

test('HellaSwag during training is split over the ranks and gives the one-process counts', () => {
  const gpt2 = join(root, 'gpt2vocab.json')
  writeFileSync(gpt2, JSON.stringify({ preset: 'tiny-variant', contextLength: 64, layers: 1, channels: 32, heads: 4, kvHeads: 2, mlpHidden: 64 }))
  const hs = ['--model', gpt2, '--hellaswag-every', '2', '--hellaswag-limit', '5', '--steps', '2', '--val-every', '0',
    '--hellaswag-data', resolve(process.cwd(), 'test/fixtures/hellaswag/val.jsonl')]
  const a = llmts([...common, ...hs, '--out', join(root, 'hs1')])
  const b = llmts([...common, ...hs, '--out', join(root, 'hs2'), '--nproc', '2'])   // 3 examples on rank 0, 2 on rank 1
  assert.equal(a.code, 0, a.stderr)
  assert.equal(b.code, 0, b.stderr)
  const lines = (dir: string): LogRecord[] => readLog(join(dir, 'log.jsonl')).filter(r => 'hellaswag_count' in r)
  const la = lines(join(root, 'hs1')), lb = lines(join(root, 'hs2'))
  assert.deepEqual(la.map(r => r.step), [0, 2])
  assert.equal(lb[0]!['hellaswag_count'], 5)
  assert.deepEqual(lb[0], la[0], 'step 0 (the same initial weights): the same counts')
})

test('Ctrl-C stops every rank at the end of a step with a checkpoint; --resume continues bit-exactly', async () => {
  const args = [...common, '--steps', '300', '--val-every', '50', '--val-steps', '2', '--nproc', '2']
  const whole = join(root, 'whole'), cut = join(root, 'cut')
  assert.equal(llmts([...args, '--out', whole]).code, 0)
  // rank 0's stop checkpoint takes seconds, so rank 1 has stopped (exit 130) well before rank 0 does
  const child = spawn(process.execPath, [main, 'train', ...lastWins([...args, '--out', cut])],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LLMTS_TEST_SLOW_CHECKPOINT_MS: '700' } })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString()
    if (/step 50 \| val loss/.test(stderr) && child.exitCode === null && !child.killed) child.kill('SIGINT')
  })
  const code = await new Promise<number | null>(res => child.on('close', c => res(c)))
  assert.equal(code, 130, stderr)   // the ranks' 130 is a stop, not a failure: nothing about stopping the others
  assert.doesNotMatch(stderr, /stopping the other ranks|exited with code/)
  assert.match(stderr, /SIGINT: stopping at the end of this step/)
  const stopped = listCheckpoints(cut).at(-1)!.step
  assert.ok(stopped >= 50 && stopped < 300, `stopped at ${stopped}`)
  const r = llmts(['--out', cut, '--resume'])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, /resuming at step \d+, .*2 ranks|2 ranks.*resuming at step/)
  assert.deepEqual(withoutTiming(readLog(join(cut, 'log.jsonl'))), withoutTiming(readLog(join(whole, 'log.jsonl'))))
})

test('Ctrl-C during a long validation with ranks: agreed on in its sum, so they stop after it, not a step later', async () => {
  // the validation before step 1 takes seconds (3,000 batches a rank); the signal comes 300 ms after the start line
  const longVal = longValData(root, 'long-val', 3000 * 2, 4 * 16)   // 6,000 batches, split over the 2 ranks
  for (const [name, steps] of [['val0', 2], ['val3', 4]] as const) {
    const out = join(root, name)
    const args = [...common, '--steps', String(steps), '--val-every', '3', '--val-steps', '6000', '--val-data', longVal, '--nproc', '2', '--out', out]
    const child = spawn(process.execPath, [main, 'train', ...lastWins(args)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = '', sent = false
    // in the validation before step 1, or step 3's (steps 2 and 3 take milliseconds, a validation seconds)
    const inValidation = name === 'val0' ? /run directory/ : /step 1\/4/
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      if (!sent && inValidation.test(stderr)) { sent = true; setTimeout(() => child.kill('SIGINT'), 300) }
    })
    const code = await new Promise<number | null>(res => child.on('close', c => res(c)))
    assert.equal(code, 130, stderr)
    const stopAt = name === 'val0' ? 0 : 3
    assert.match(stderr, new RegExp(`stopped at step ${stopAt}; continue with`))
    const log = readLog(join(out, 'log.jsonl'))
    assert.deepEqual(log.at(-1), { step: stopAt, val_loss: log.at(-1)!['val_loss'] }, `the run ends with step ${stopAt}'s validation`)
    assert.deepEqual(listCheckpoints(out).map(ck => ck.step), stopAt === 0 ? [] : [3])
  }
})

test('--resume with ranks: a damaged checkpoint is reported once (by the launcher, which moves it aside) and skipped', () => {
  const out = join(root, 'damaged')
  const args = [...common, '--steps', '4', '--val-every', '0', '--checkpoint-every', '2', '--nproc', '2', '--out', out]
  assert.equal(llmts(args).code, 0)
  assert.equal(listCheckpoints(out).at(-1)!.step, 4)
  for (const nproc of [[], ['--nproc', '2']]) {   // the number of ranks from the checkpoint, or given again
    const file = join(listCheckpoints(out).at(-1)!.path, 'model.safetensors'), bytes = readFileSync(file)
    bytes[bytes.length - 1]! ^= 0xff
    writeFileSync(file, bytes)
    const r = llmts(['--out', out, '--resume', ...nproc])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stderr.match(/skips a damaged checkpoint/g)?.length, 1, r.stderr)
    assert.match(r.stderr, /resuming at step 2,/)
  }
})

test('a rank that fails stops the run at once: its error is shown, exit code 1, no rank left waiting', () => {
  for (const rank of [0, 1]) {
    const r = llmts([...common, '--steps', '6', '--val-every', '0', '--nproc', '2', '--out', join(root, `crash${rank}`)],
      { LLMTS_TEST_CRASH: `${rank}:3` })
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, new RegExp(`^${rank === 1 ? '\\[rank 1\\] ' : ''}llmts train: internal error: test hook: rank ${rank} crashes at step 3 \\(LLMTS_TEST_CRASH\\)$`, 'm'))
    if (rank === 1) {
      assert.match(r.stderr, /rank 1 exited with code 1; stopping the other ranks\n/)
      assert.match(r.stderr, /^llmts train: collective: rank 1 exited with code 1 \(its error is above\)$/m,
        'rank 0 names the failed rank, not as its own internal error')
    }
    else assert.equal(r.stderr.match(/internal error/g)?.length, 1, `rank 0's error alone: ${r.stderr}`)
    assert.ok(r.ms < 30_000, `took ${r.ms} ms`)
  }
})

test('a rank killed by a signal: the launcher names it (rank 0 too, which writes no error) and exits as the shell would', () => {
  for (const [rank, signal, code] of [[0, 'SIGKILL', 137], [1, 'SIGHUP', 129]] as const) {
    const out = join(root, `killed${rank}`)
    // at step 5: step 4's checkpoint may still be saving in the background (then it never appears), step 2's is complete
    const r = llmts([...common, '--steps', '6', '--val-every', '0', '--checkpoint-every', '2', '--nproc', '2', '--out', out],
      { LLMTS_TEST_CRASH: `${rank}:5:${signal}` })
    assert.equal(r.code, code, r.stderr)
    assert.match(r.stderr, new RegExp(`^llmts train: rank ${rank} was killed \\(${signal}\\); stopping the other ranks$`, 'm'))
    const steps = listCheckpoints(out).map(ck => ck.step)
    assert.ok(['2', '2,4'].includes(steps.join(',')), `the checkpoints before it: ${steps}`)
    for (const ck of listCheckpoints(out)) readCheckpoint(ck.path, { withOptimizer: true })   // whole
  }
})

test('SIGTERM stops the ranks with a checkpoint, and the launcher exits 143 as they did (not 130)', async () => {
  const out = join(root, 'sigterm')
  const args = [...common, '--steps', '100000', '--val-every', '0', '--checkpoint-every', '0', '--nproc', '2', '--out', out]
  const child = spawn(process.execPath, [main, 'train', ...lastWins(args)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = '', sent = false
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString()
    if (!sent && /run directory/.test(stderr)) { sent = true; setTimeout(() => child.kill('SIGTERM'), 300) }
  })
  const code = await new Promise<number | null>(res => child.on('close', c => res(c)))
  assert.equal(code, 143, stderr)
  assert.match(stderr, /SIGTERM: stopping at the end of this step/)
  assert.doesNotMatch(stderr, /stopping the other ranks|exited with code/)
  assert.equal(listCheckpoints(out).length, 1, 'the stop\'s checkpoint')
})

// (which step a single signal stops at: test/train/rank-stop.test.ts, without timing)
test('a second signal during a long step with ranks ends them at once, and the launcher exits 130 as they did', async () => {
  // 1,000 micro-batches a rank: a step takes seconds; the second signal comes 100 ms after a rank handled the first
  const out = join(root, 'long-step')
  const args = [...common, '--steps', '3', '--val-every', '0', '--checkpoint-every', '0', '--total-batch-size', String(64 * 2000),
    '--nproc', '2', '--out', out]
  const child = spawn(process.execPath, [main, 'train', ...lastWins(args)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = '', sent = 0
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString()
    if (sent === 0 && /run directory/.test(stderr)) { sent = 1; setTimeout(() => child.kill('SIGTERM'), 100) }
    if (sent === 1 && /SIGTERM: stopping/.test(stderr)) { sent = 2; setTimeout(() => child.kill('SIGINT'), 100) }
  })
  const code = await new Promise<number | null>(res => child.on('close', c => res(c)))
  assert.equal(code, 130, `the second signal (SIGINT) ends the ranks, and the launcher exits as they did: ${stderr}`)
  assert.doesNotMatch(stderr, /step 1 \| checkpoint|stopped at step/, 'not a graceful stop')
  assert.deepEqual(listCheckpoints(out), [])
  assert.doesNotMatch(stderr, /stopping the other ranks/, 'the user stopped them: nothing to explain')
})

test('--nproc: a flag given twice is noted once (by the launcher, not again by rank 0)', () => {
  const args = [...common, '--steps', '1', '--steps', '2', '--val-every', '0', '--nproc', '2', '--out', join(root, 'twice')]
  const r = spawnSync(process.execPath, [main, 'train', ...args], { encoding: 'utf8', env: { ...process.env, LLMTS_DEBUG: '' } })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stderr.match(/--steps given twice \(1, then 2\); using 2/g)?.length, 1, r.stderr)
  assert.match(r.stdout, /finished at step 2/)
})

test('--nproc with more threads than cores: a note says the ranks share them and what gives each its own', () => {
  assert.equal(sharedCoresNote(8, 1, 2), 'train: --nproc 8 on 2 cores: 8 ranks of 1 thread share them ' +
    '(--nproc 2 or fewer gives each rank a core of its own)')
  assert.equal(sharedCoresNote(2, 3, 1), 'train: --nproc 2 on 1 core: 2 ranks of 3 threads share them ' +
    '(--nproc × --threads at most 1 gives each thread a core of its own)')
  assert.deepEqual([sharedCoresNote(2, 1, 2), sharedCoresNote(4, 4, 16), sharedCoresNote(1, 8, 2)], [null, null, null],
    'a core per thread, or one process (whose --threads is its own business)')
  // through the binary: --threads = every core makes 2 ranks too many on any machine; rank 0 alone says it
  const cores = availableParallelism()
  const r = llmts([...common, '--steps', '1', '--val-every', '0', '--nproc', '2', '--threads', String(cores), '--out', join(root, 'shared')])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stderr.split('\n').filter(l => l.startsWith('llmts train: --nproc 2 on')).length, 1, r.stderr)
  assert.ok(r.stderr.includes(`llmts ${sharedCoresNote(2, cores, cores)}\n`), r.stderr)
})

test('--nproc: bad settings are one-line errors with exit code 2', () => {
  const tinyVal = join(root, 'tiny_val_000000.bin')
  writeShard(tinyVal, Array.from({ length: 60 }, (_, i) => i % 96))   // fewer than B·T+1 = 65 tokens (all ranks read it all)
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    // every rank refuses it, after the ranks' first barriers: rank 0's error alone is shown
    [[...common, '--steps', '2', '--nproc', '2', '--val-data', tinyVal, '--out', join(root, 'badval')], {},
      /no shard of --val-data .*tiny_val_000000\.bin holds one batch of B·T\+1 = 65 tokens \(B 4 × T 16\); the largest holds 60 /],
    [['--nproc', '0'], {}, /--nproc expects a positive integer, got 0/],
    [['--nproc', '1025'], {}, /^llmts train: --nproc expects a value <= 1024, got 1025$/m],   // 1025 processes would be forked
    [[...common, '--steps', '2', '--nproc', '3', '--out', join(root, 'bad3')], {},
      /--total-batch-size 256 is not a multiple of --batch-size × --seq-len × --nproc = 4·16·3 = 192/],
    [[...common, '--steps', '2', '--nproc', '2', '--out', join(root, 'badenv')], { LLMTS_COLLECTIVE: 'mpi' },
      /LLMTS_COLLECTIVE=mpi is not one of host, device/],
  ]
  for (const [args, env, re] of cases) {
    const r = llmts(args, env)
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`)
    assert.match(r.stderr, re)
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`)
  }
})

// NCCL here is the emulator's stand-in library (its own test: test/backend/nccl.test.ts)
test('--device cuda --nproc 2 on the CUDA emulator: NCCL sums the gradients, and the run logs what one GPU logs', async (t) => {
  const reason = emulatorSkipReason()
  if (reason !== null) { t.skip(reason); return }
  const env = { ...emulatorEnv(buildEmulator()), LLMTS_EMU_DEVICES: '2' }
  const gpu = [...common.filter(a => a !== 'cpu' && a !== '--device'), '--device', 'cuda', '--steps', '3', '--val-every', '3']
  const one = llmts([...gpu, '--val-steps', '4', '--out', join(root, 'gpu1')], env)
  const two = llmts([...gpu, '--val-steps', '4', '--out', join(root, 'gpu2'), '--nproc', '2'], env)
  const host = llmts([...gpu, '--val-steps', '4', '--out', join(root, 'gpu2host'), '--nproc', '2'], { ...env, LLMTS_COLLECTIVE: 'host' })
  for (const r of [one, two, host]) assert.equal(r.code, 0, r.stderr)
  assert.match(two.stderr, /2 ranks, gradients summed by NCCL [\d.]+ \(.*libnccl\.so\.2\)/)
  assert.match(host.stderr, /2 ranks, gradients summed through the launcher/)
  const l1 = withoutTiming(readLog(join(root, 'gpu1', 'log.jsonl')))
  for (const dir of ['gpu2', 'gpu2host']) {
    const l2 = withoutTiming(readLog(join(root, dir, 'log.jsonl')))
    assertLogsClose(l1, l2, `one GPU, two ranks (${dir})`)
  }
})
