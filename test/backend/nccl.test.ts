// The NCCL binding (src/backend/cuda/nccl.ts) without a GPU: 2 and 3 ranks, each a Node process running the CUDA
// backend on the emulator, whose libnccl.so.2 (cuda-emu/fake-nccl.cpp) exchanges the buffers through files. Rank 0
// writes the unique id to a file the test names (renamed into place: it appears whole); the others wait for it.
// Checked: f32 sums bit-exact in rank order, bf16 sums within bf16 rounding, an offset view, identical bits on every
// rank, the emulator's folder removed at the end; and the errors of a bad id, dtype and range, named by NCCL call.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { buildEmulator, emulatorEnv, emulatorSkipReason } from './cuda-emu/build.js'

const run = promisify(execFile)
const script = fileURLToPath(new URL('./nccl-rank.js', import.meta.url))

interface RankResult {
  version: number; view: { offset: number; length: number }; bf16Storage: boolean
  inputs: { f32: number[]; bf16: number[] }; summed: { f32: number[]; bf16: number[] }; viewed: number[]
}

/** Runs `world` ranks side by side (TMPDIR: the emulator's exchange folders go there); one failing stops the rest. */
async function runRanks(dir: string, tmp: string, world: number): Promise<RankResult[]> {
  const idFile = join(tmp, `id-${world}`), abort = new AbortController()
  const env = { ...emulatorEnv(dir), TMPDIR: tmp, LLMTS_EMU_NCCL_TIMEOUT_S: '120' }
  const rank = async (r: number): Promise<RankResult> => {
    try {
      const { stdout } = await run(process.execPath, [script, 'reduce', idFile, String(world), String(r)],
        { env, signal: abort.signal, maxBuffer: 16 << 20 })
      return JSON.parse(stdout) as RankResult
    } catch (e) {
      abort.abort()
      const err = e as { stderr?: string; message: string }
      throw new Error(`rank ${r} of ${world} failed: ${err.message}\n${(err.stderr ?? '').slice(-2000)}`)
    }
  }
  return Promise.all(Array.from({ length: world }, (_, r) => rank(r)))
}

/** Runs body with the emulator's folder and a fresh temporary folder (removed after); skips where the emulator cannot run. */
async function onEmulator(t: TestContext, body: (dir: string, tmp: string) => Promise<void>): Promise<void> {
  const reason = emulatorSkipReason()
  if (reason !== null) { t.skip(reason); return }
  const dir = buildEmulator(), tmp = mkdtempSync(join(tmpdir(), 'llmts-nccl-test-'))
  try { await body(dir, tmp) } finally { rmSync(tmp, { recursive: true, force: true }) }
}

/** Sums over ranks in rank order, rounded to float32 after every add (what every rank must compute). */
function sumInOrder(parts: number[][]): number[] {
  return parts[0]!.map((_, i) => parts.reduce((acc, p, r) => r === 0 ? p[i]! : Math.fround(acc + p[i]!), 0))
}

/** The first index where got and want differ by more than tol(i) (0: bit for bit), or null. */
function firstMismatch(got: number[], want: number[], tol: (i: number) => number = () => 0): string | null {
  if (got.length !== want.length) return `${got.length} elements, expected ${want.length}`
  const i = got.findIndex((g, k) => !(Math.abs(g - want[k]!) <= tol(k)) && !Object.is(g, want[k]))
  return i < 0 ? null : `element ${i}: got ${got[i]}, expected ${want[i]} (tolerance ${tol(i)})`
}

for (const world of [2, 3]) {
  test(`NCCL all-reduce on the emulator, ${world} ranks: f32 bit-exact in rank order, bf16 within rounding, same bits everywhere`,
    { timeout: 300_000 }, (t) => onEmulator(t, async (dir, tmp) => {
      const started = Date.now(), ranks = await runRanks(dir, tmp, world)
      t.diagnostic(`${world} ranks in ${((Date.now() - started) / 1000).toFixed(1)} s, NCCL version ${ranks[0]!.version}`)
      assert.equal(ranks[0]!.version, 22799, 'the emulator\'s libnccl.so.2 was loaded')
      assert.ok(ranks.every(r => r.bf16Storage), 'the compute-precision buffer is bf16 on the device')
      assert.notDeepEqual(ranks[0]!.inputs.f32, ranks[1]!.inputs.f32, 'the ranks start from different data')
      const f32 = sumInOrder(ranks.map(r => r.inputs.f32))
      // bf16: NCCL may add in another order and round each partial sum to bf16; world half-ulps (2^-8 relative) of Σ|x| cover that
      const bf16 = sumInOrder(ranks.map(r => r.inputs.bf16))
      const abs = sumInOrder(ranks.map(r => r.inputs.bf16.map(Math.abs)))
      const { offset, length } = ranks[0]!.view
      const folded = sumInOrder(Array.from({ length: world }, () => f32.slice(offset, offset + length)))
      const viewed = [...f32.slice(0, offset), ...folded, ...f32.slice(offset + length)]
      for (const [r, got] of ranks.entries()) {
        assert.equal(firstMismatch(got.summed.f32, f32), null, `rank ${r}, f32`)
        assert.equal(firstMismatch(got.summed.bf16, bf16, i => world * 2 ** -8 * abs[i]!), null, `rank ${r}, bf16`)
        assert.equal(firstMismatch(got.viewed, viewed), null, `rank ${r}, f32 view [${offset}, ${offset + length}) summed again`)
        assert.equal(firstMismatch(got.summed.bf16, ranks[0]!.summed.bf16), null, `rank ${r} and rank 0 disagree (bf16)`)
      }
      const left = readdirSync(tmp).filter(f => f.startsWith('llmts-nccl-'))
      assert.deepEqual(left, [], 'the last rank to leave removes the exchange folder')
    }))
}

test('NCCL errors name the call: a bad or short id, a rank outside the world, a wrong dtype, a range past the buffer, a destroyed communicator',
  { timeout: 120_000 }, (t) => onEmulator(t, async (dir, tmp) => {
    const { stdout } = await run(process.execPath, [script, 'errors'], { env: { ...emulatorEnv(dir), TMPDIR: tmp } })
    const { errors: e, identity } = JSON.parse(stdout) as { errors: Record<string, string>; identity: boolean }
    assert.match(e['zeroId']!, /^nccl: ncclCommInitRank failed: invalid argument .*\(ncclResult 4\)$/)
    assert.match(e['shortId']!, /^nccl: ncclCommInitRank: the unique id has 5 bytes, expected 128$/)
    assert.match(e['rank']!, /^nccl: ncclCommInitRank: rank 2 of world 2/)
    assert.match(e['dtype']!, /^nccl: ncclAllReduce: dtype i32, expected f32 or bf16$/)
    assert.match(e['range']!, /^nccl: ncclAllReduce failed: invalid argument/)
    assert.match(e['destroyed']!, /^nccl: ncclAllReduce on a destroyed communicator$/)
    assert.match(e['usedId']!, /^nccl: ncclCommInitRank failed: invalid argument/, 'an id is good for one communicator')
    assert.ok(identity, 'a world of one sums to its own data')
    assert.deepEqual(readdirSync(tmp), [], 'the exchange folder is gone after the communicator')
  }))
