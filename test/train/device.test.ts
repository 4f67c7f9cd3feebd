// --device: cpu always; cuda is the CUDA backend or, without a usable GPU, one InputError; auto is cuda exactly when
// the CUDA backend can start (probeCuda, the backend's own check), else the CPU backend. --precision picks the GPU's
// storage and matmuls; the CPU refuses anything but fp32.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { probeCuda } from '../../src/backend/cuda/index.js'
import { createBackend, describeBackend } from '../../src/train/device.js'
import { metric, readLog } from '../../src/train/log.js'
import { InputError } from '../../src/util/errors.js'
import { buildEmulator, emulatorEnv, emulatorSkipReason } from '../backend/cuda-emu/build.js'
import { withEnv } from '../helpers/env.js'
import { makeToyRun } from './helpers.js'

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))

const gpu = probeCuda()

test('--device cpu is the CPU backend, with the thread count asked for', async () => {
  const b = await createBackend('cpu', { threads: 1 })
  assert.equal(b.name, 'cpu')
  assert.match(describeBackend(b), /1 thread/)
})

test('--device auto: cuda when a GPU is usable, else cpu', async () => {
  const b = await createBackend('auto', { threads: 1 })
  assert.equal(b.name, gpu.ok ? 'cuda' : 'cpu', gpu.ok ? gpu.device : gpu.reason)
})

test('--device cuda without a usable GPU: one InputError saying what is missing', async (t) => {
  if (gpu.ok) { t.skip(`a GPU is usable here (${gpu.device})`); return }
  await assert.rejects(createBackend('cuda'), (e: Error) => e instanceof InputError && !e.message.includes('\n'))
})

test('$LLMTS_THREADS when --threads is 0: a count, 0 or unset for every core, anything else refused naming the variable', async () => {
  const every = availableParallelism()
  const described = async (v: string | undefined): Promise<string> => describeBackend(await withEnv({ LLMTS_THREADS: v }, () => createBackend('cpu')))
  assert.match(await described('1'), /, 1 thread$/)
  for (const v of ['0', undefined]) assert.match(await described(v), new RegExp(`, ${every} threads?$`))
  for (const v of ['abc', '2000', '-1']) {
    await assert.rejects(withEnv({ LLMTS_THREADS: v }, () => createBackend('cpu')), (e: Error) => e instanceof InputError &&
      e.message === `cpu backend: LLMTS_THREADS=${v}, expected an integer in [0, 1024] (0: every core)`)
  }
})

test('--precision bf16 or tf32 on the CPU: one InputError; fp32 and auto are the CPU backend', async () => {
  for (const precision of ['bf16', 'tf32'] as const) {
    await assert.rejects(createBackend('cpu', { threads: 1, precision }), (e: Error) => e instanceof InputError &&
      e.message === `device: --precision ${precision} needs an NVIDIA GPU (the CPU backend computes in fp32; give --precision fp32 or auto)`)
  }
  for (const precision of ['fp32', 'auto'] as const) assert.equal((await createBackend('cpu', { threads: 1, precision })).name, 'cpu')
})

// through the binary on the CUDA emulator: --precision fp32 keeps every tensor and matmul in fp32, so its losses
// track the CPU's (measured 1.3e-8 relative after 3 steps; the emulator sums in float64, the CPU in float32), while
// bf16 (the default) stores activations in bf16 and lands further off (2.8e-4)
test('--precision on the CUDA emulator: the start line and config.json name it; fp32 tracks the CPU run, bf16 does not', async (t) => {
  const reason = emulatorSkipReason()
  if (reason !== null) { t.skip(reason); return }
  const root = mkdtempSync(join(tmpdir(), 'llmts-precision-'))
  t.after(() => rmSync(root, { recursive: true, force: true }))
  const toy = makeToyRun(root), env = emulatorEnv(buildEmulator())
  const train = (out: string, ...args: string[]): number[] => {
    const r = spawnSync(process.execPath, [main, 'train', '--model', toy.modelJson, '--data', toy.data, '--seq-len', '16',
      '--batch-size', '4', '--total-batch-size', '64', '--steps', '3', '--warmup-steps', '1', '--val-every', '0',
      '--sample-every', '0', '--threads', '1', '--out', join(root, out), ...args], { encoding: 'utf8', env: { ...env, LLMTS_DEBUG: '' } })
    assert.equal(r.status, 0, r.stderr)
    const config = JSON.parse(readFileSync(join(root, out, 'config.json'), 'utf8')) as { train: { precision: string }; backend: string }
    assert.equal(config.train.precision, args.includes('--precision') ? args[args.indexOf('--precision') + 1] : 'auto')
    if (args.includes('cuda')) {
      const named = { auto: 'bf16 mixed precision', bf16: 'bf16 mixed precision', tf32: 'fp32 tensors, TF32 matmuls', fp32: 'fp32' }
      assert.ok(config.backend.endsWith(`, ${named[config.train.precision as keyof typeof named]}`), config.backend)
      assert.ok(r.stderr.includes(config.backend), 'the start line names the backend as config.json does')
    }
    return readLog(join(root, out, 'log.jsonl')).flatMap(l => [metric(l, 'loss'), metric(l, 'grad_norm')].filter(x => x !== undefined))
  }
  const worst = (a: number[], b: number[]): number => Math.max(...a.map((x, i) => Math.abs(x - b[i]!) / Math.abs(b[i]!)))
  const cpu = train('cpu', '--device', 'cpu')
  const fp32 = train('fp32', '--device', 'cuda', '--precision', 'fp32')
  const bf16 = train('bf16', '--device', 'cuda')
  train('tf32', '--device', 'cuda', '--precision', 'tf32')
  assert.equal(cpu.length, 6)
  assert.ok(worst(fp32, cpu) < 1e-5, `fp32 against the CPU: ${worst(fp32, cpu)}`)
  assert.ok(worst(bf16, cpu) > 5e-5, `bf16 against the CPU: ${worst(bf16, cpu)}, so bf16 is not in use`)
})
