// --device: cpu always; cuda is the CUDA backend or, without a usable GPU, one InputError; auto is cuda exactly when
// the CUDA backend can start (probeCuda, the backend's own check), else the CPU backend.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { probeCuda } from '../../src/backend/cuda/index.js'
import { createBackend, describeBackend } from '../../src/train/device.js'
import { InputError } from '../../src/util/errors.js'

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
