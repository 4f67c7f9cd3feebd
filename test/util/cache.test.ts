// The cache root: LLMTS_CACHE wins (relative to the working directory), then an absolute XDG_CACHE_HOME, then
// ~/.cache/llmts; every cached thing (corpora, FineWeb, HellaSwag, CUDA kernels) sits in a folder under it.

import assert from 'node:assert/strict'
import { join, resolve } from 'node:path'
import { test } from 'node:test'
import { defaultCacheDir } from '../../src/backend/cuda/compile.js'
import { hellaswagCacheDir } from '../../src/eval/hellaswag-data.js'
import { cacheRoot } from '../../src/util/cache.js'

test('cache root: LLMTS_CACHE, then XDG_CACHE_HOME when absolute, then ~/.cache/llmts', () => {
  const home = '/home/u'
  assert.equal(cacheRoot({}, home), '/home/u/.cache/llmts')
  assert.equal(cacheRoot({ LLMTS_CACHE: '' }, home), '/home/u/.cache/llmts')   // empty means unset, as in a shell
  assert.equal(cacheRoot({ LLMTS_CACHE: '/data/c', XDG_CACHE_HOME: '/x' }, home), '/data/c')
  assert.equal(cacheRoot({ LLMTS_CACHE: 'rel/c' }, home), resolve('rel/c'))
  assert.equal(cacheRoot({ XDG_CACHE_HOME: '/x' }, home), '/x/llmts')
  assert.equal(cacheRoot({ XDG_CACHE_HOME: 'relative' }, home), '/home/u/.cache/llmts')   // invalid by the XDG spec
})

test('the kernel and HellaSwag caches live under the same root', () => {
  const env = { LLMTS_CACHE: '/data/c' }
  assert.equal(defaultCacheDir(env, '/home/u'), join('/data/c', 'cuda'))
  assert.equal(hellaswagCacheDir(env), join('/data/c', 'hellaswag'))
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/x' }, '/home/u'), '/x/llmts/cuda')
})
