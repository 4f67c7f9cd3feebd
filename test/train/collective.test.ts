// The rank side of the host collective against a fake launcher channel (an EventEmitter with send): host sums
// travel in float64 (2^24 + 1 comes back exact), broadcast refuses misuse by rank, a vanished launcher fails every
// waiting request as a PeerFailure, a launcher error names the peer's failure, and rankFromEnv checks its range.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { HostCollective, rankFromEnv, type LauncherReply, type RankRequest } from '../../src/train/collective.js'
import { PeerFailure } from '../../src/util/errors.js'

/** A channel whose launcher answers each request with `answer(request)` (undefined: no answer). */
function fakeChannel(answer: (r: RankRequest) => Partial<LauncherReply> | undefined): { channel: NodeJS.Process; sent: RankRequest[] } {
  const sent: RankRequest[] = []
  const ch = new EventEmitter() as EventEmitter & { send: unknown }
  ch.send = (msg: RankRequest, _h: unknown, _o: unknown, cb: (e: Error | null) => void): boolean => {
    sent.push(msg)
    cb(null)
    const reply = answer(msg)
    if (reply !== undefined) setImmediate(() => ch.emit('message', { llmts: 'collective', seq: msg.seq, ...reply }))
    return true
  }
  return { channel: ch as unknown as NodeJS.Process, sent }
}

test('sumHost sends and receives float64: 2^24 + 1 and 0.1 come back exact', async () => {
  const { channel, sent } = fakeChannel(r => ({ data: r.data! }))   // a world of one: the sum is the part
  const c = new HostCollective(0, 1, channel)
  assert.deepEqual(await c.sumHost([2 ** 24 + 1, 0.1, -3]), [2 ** 24 + 1, 0.1, -3])
  assert.ok(sent[0]!.data instanceof Float64Array)
  assert.equal(sent[0]!.op, 'sum')
})

test('broadcast takes bytes on rank 0 and null elsewhere', async () => {
  const bytes = new Uint8Array([1, 2, 3])
  const rank0 = new HostCollective(0, 2, fakeChannel(() => ({ data: bytes })).channel)
  const rank1 = new HostCollective(1, 2, fakeChannel(() => ({ data: bytes })).channel)
  assert.deepEqual(await rank0.broadcast(bytes), bytes)
  assert.deepEqual(await rank1.broadcast(null), bytes)
  await assert.rejects(rank0.broadcast(null), /broadcast takes bytes on rank 0 and null elsewhere/)
  await assert.rejects(rank1.broadcast(bytes), /broadcast takes bytes on rank 0 and null elsewhere/)
})

test('a vanished launcher fails every waiting request as a PeerFailure; a launcher error is reported', async () => {
  const { channel } = fakeChannel(() => undefined)   // never answers
  const c = new HostCollective(1, 2, channel)
  const pending = [c.sumHost([1]), c.barrier()]
  channel.emit('disconnect')
  for (const p of pending) await assert.rejects(p, (e: Error) => e instanceof PeerFailure && /launcher closed the channel/.test(e.message))
  const failing = new HostCollective(0, 2, fakeChannel(() => ({ error: 'rank 1 exited with code 2', peer: true })).channel)
  await assert.rejects(failing.sumHost([1]), (e: Error) => e instanceof PeerFailure && e.message === 'collective: rank 1 exited with code 2')
})

test('rankFromEnv: a rank in [0, world), or null when not launched', () => {
  assert.equal(rankFromEnv({}), null)
  assert.deepEqual(rankFromEnv({ LLMTS_RANK: '1', LLMTS_WORLD: '2' }), { rank: 1, world: 2 })
  for (const [r, w] of [['-1', '2'], ['2', '2'], ['0', '0'], ['x', '2'], ['0.5', '2']]) {
    assert.throws(() => rankFromEnv({ LLMTS_RANK: r, LLMTS_WORLD: w }), /is not a rank in \[0, world\)/, `${r}/${w}`)
  }
})
