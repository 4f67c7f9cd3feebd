// The --runs lists of the GPU benchmarks (bench/cuda-runs.ts): each option's variant, the refusal of an unknown one,
// and the default lists the GPU scripts pass, so an option renamed or removed fails here rather than on the GPU.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseRuns } from '../../bench/cuda-runs.js'
import { InputError } from '../../src/util/errors.js'

const script = (name: string): string => readFileSync(fileURLToPath(new URL(`../../../scripts/gpu/${name}`, import.meta.url)), 'utf8')

test('--runs options pick their variant; an unknown option is one InputError naming the known ones', () => {
  const [plain, b4, both] = parseRuns('t', 'variant-124m:16, variant-124m:16:4-blocks, gpt2-124m:32:recompute:atomic-dq:rows=512')
  assert.deepEqual(plain!.variant, { recompute: false, attention: 'auto' })
  assert.deepEqual([b4!.variant, b4!.label], [{ recompute: false, attention: '4-blocks' }, ' (4-blocks)'])
  assert.deepEqual([both!.model, both!.B, both!.variant], ['gpt2-124m', 32, { recompute: true, attention: 'atomic-dq', classifierRows: 512 }])
  const [whole] = parseRuns('t', 'variant-350m:32:wgmma-whole')
  assert.deepEqual([whole!.variant, whole!.label], [{ recompute: false, attention: 'wgmma-whole' }, ' (wgmma-whole)'])
  const [tuned] = parseRuns('t', 'variant-350m:16:gemm-tune=4')
  assert.deepEqual([tuned!.variant, tuned!.label], [{ recompute: false, attention: 'auto', gemmTune: 4 }, ' (gemm-tune=4)'])
  for (const bad of ['wide', 'gemm-tune=0', 'gemm-tune=33', 'gemm-tune=x']) {
    assert.throws(() => parseRuns('t', `variant-124m:16:${bad}`), (e: unknown) => e instanceof InputError &&
      e.message === `t: --runs entry "variant-124m:16:${bad}" must be model:B, optionally followed by any of :recompute, ` +
        ':atomic-dq, :4-blocks, :wgmma, :wgmma-whole, :rows=N, :gemm-tune=N')
  }
})

test('the default --runs lists of scripts/gpu/run.sh and ncu.sh parse', () => {
  const lists = [...script('run.sh').matchAll(/\$\{(\w+_RUNS):-([^}]+)\}/g)].map(m => [m[1]!, m[2]!])
  assert.deepEqual(lists.map(l => l[0]).sort(), ['BENCH_RUNS', 'COMPARE_RUNS', 'PROFILE_RUNS'])
  // ncu.sh: DEFAULT="run=kernel,kernel run=kernel ..." over two lines
  const ncu = [...script('ncu.sh').matchAll(/^DEFAULT="(?:\$DEFAULT )?([^"]+)"/gm)].flatMap(m => m[1]!.split(' ').map(s => s.split('=')[0]!))
  assert.ok(ncu.length >= 3, `ncu.sh runs: ${ncu.join(' ')}`)
  for (const [name, runs] of [...lists, ['ncu.sh', ncu.join(',')]]) {
    assert.doesNotThrow(() => parseRuns(name!, runs!), `${name}: ${runs}`)
  }
})

test('run.sh: PYTHON=none leaves PyTorch out even beside a python3 with CUDA torch', () => {
  const body = /^find_python\(\) \{\n[\s\S]*?\n\}$/m.exec(script('run.sh'))![0]
  const bin = mkdtempSync(join(tmpdir(), 'llmts-python-'))
  try {
    writeFileSync(join(bin, 'python3'), '#!/bin/sh\nexit 0\n', { mode: 0o755 })   // answers "torch with CUDA: yes"
    const find = (python: string): string => spawnSync('bash', ['-c', `${body}\nfind_python`],
      { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env['PATH']}`, PYTHON: python } }).stdout
    assert.equal(find(''), 'python3\n')
    assert.equal(find('none'), 'none\n')
  } finally {
    rmSync(bin, { recursive: true, force: true })
  }
})
