// withEnv: the variables are set while fn runs (also across an await) and put back after, also on a throw.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { withEnv } from './env.js'

const name = 'LLMTS_TEST_WITH_ENV'

test('withEnv sets and restores, synchronously and on a throw', () => {
  process.env[name] = 'before'
  try {
    assert.equal(withEnv({ [name]: 'during' }, () => process.env[name]), 'during')
    assert.equal(process.env[name], 'before')
    assert.equal(withEnv({ [name]: undefined }, () => name in process.env), false)
    assert.equal(process.env[name], 'before')
    assert.throws(() => withEnv({ [name]: 'during' }, () => { throw new Error('boom') }), /boom/)
    assert.equal(process.env[name], 'before')
  } finally {
    delete process.env[name]
  }
})

test('withEnv keeps the variables until an async fn settles', async () => {
  const seen = await withEnv({ [name]: 'during' }, async () => {
    await sleep(5)
    return process.env[name]
  })
  assert.equal(seen, 'during')
  assert.equal(name in process.env, false)
  await assert.rejects(withEnv({ [name]: 'during' }, async () => { await sleep(1); throw new Error('late') }), /late/)
  assert.equal(name in process.env, false)
})
