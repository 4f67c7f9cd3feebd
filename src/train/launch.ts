// `llmts train --nproc N`: this process becomes the launcher of N ranks (child processes running the same command
// with LLMTS_RANK/LLMTS_WORLD set), as torchrun or mpirun would be. It serves their host collective
// (src/train/collective.ts), forwards signals to them, and when one rank fails stops the others: a peer blocked in a
// collective would otherwise wait forever.

import { fork, type ChildProcess } from 'node:child_process'
import { constants } from 'node:os'
import { isCollectiveMessage, type LauncherReply, type RankRequest } from './collective.js'

interface LaunchOptions {
  world: number
  script: string               // the CLI's entry file
  args: string[]               // its arguments (e.g. ['train', ...flags])
  /** Where the launcher's own lines go (a failed rank's kept stderr, why the others are stopped); the CLI's stderr. */
  report: (text: string) => void
}

const TAIL_BYTES = 64 << 10    // stderr kept per rank > 0, shown when it fails first
const GRACE_MS = 10_000        // after a rank fails, how long the others get to exit before SIGKILL

/** The exit code of a run stopped by a signal after checkpointing: the shell's 128 + signal number (130 for
 *  SIGINT, 143 for SIGTERM), so `llmts train … && llmts export …` does not go on with a half-trained model. */
export function stoppedExitCode(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal]
}
const STOPPED_CODES = new Set([stoppedExitCode('SIGINT'), stoppedExitCode('SIGTERM')])   // a rank that stopped cleanly

/** Sums and broadcasts of the ranks' requests, matched by sequence number; replies once every rank has asked. */
export class CollectiveHub {
  private readonly pending = new Map<number, (RankRequest | undefined)[]>()
  private failed: string | null = null

  constructor(private readonly world: number, private readonly reply: (rank: number, r: LauncherReply) => void) {}

  receive(rank: number, req: RankRequest): void {
    if (this.failed !== null) { this.reply(rank, { llmts: 'collective', seq: req.seq, error: this.failed, peer: true }); return }
    const parts = this.pending.get(req.seq) ?? new Array<RankRequest | undefined>(this.world).fill(undefined)
    parts[rank] = req
    this.pending.set(req.seq, parts)
    if (parts.some(p => p === undefined)) return
    this.pending.delete(req.seq)
    let out: LauncherReply
    try { out = { llmts: 'collective', seq: req.seq, data: combine(parts as RankRequest[]) } } catch (e) {
      out = { llmts: 'collective', seq: req.seq, error: (e as Error).message }
    }
    for (let r = 0; r < this.world; r++) this.reply(r, out)
  }

  /** Answers every request, waiting or to come, with an error (a rank is gone; its peers must not wait for it). */
  fail(why: string): void {
    this.failed = why
    for (const [seq, parts] of this.pending) {
      parts.forEach((p, r) => { if (p !== undefined) this.reply(r, { llmts: 'collective', seq, error: why, peer: true }) })
    }
    this.pending.clear()
  }
}

/** The reduction of one request from every rank: a sum in rank order (float64), or rank 0's bytes. */
function combine(parts: RankRequest[]): Float64Array | Float32Array | Uint8Array {
  const first = parts[0]!
  parts.forEach((p, r) => {
    const len = p.data?.length ?? -1, kind = p.data?.constructor.name
    if (p.op !== first.op || (p.op === 'sum' && (len !== first.data?.length || kind !== first.data?.constructor.name))) {
      throw new Error(`rank ${r} asked for ${p.op} of ${len} ${kind} values at request ${p.seq}, rank 0 for ${first.op} of ` +
        `${first.data?.length ?? -1} ${first.data?.constructor.name} (the ranks diverged)`)
    }
  })
  if (first.op === 'broadcast') {
    if (!(first.data instanceof Uint8Array)) throw new Error('broadcast: rank 0 sent no bytes')
    return first.data
  }
  const acc = new Float64Array(first.data!.length)
  for (const p of parts) { const d = p.data!; for (let i = 0; i < acc.length; i++) acc[i]! += d[i]! }
  return first.data instanceof Float32Array ? Float32Array.from(acc) : acc
}

/** Starts the ranks and waits for them; resolves to the exit code: 0 when all succeeded, else the first failure's. */
export function launchRanks(o: LaunchOptions): Promise<number> {
  const children: ChildProcess[] = []
  const tails: string[] = new Array<string>(o.world).fill('')
  const alive = new Set<number>()
  let firstFailure: { rank: number; code: number } | null = null
  let stopped = 0   // rank 0's exit code when the ranks stopped on a signal
  const hub = new CollectiveHub(o.world, (rank, r) => {
    if (alive.has(rank)) children[rank]!.send(r, undefined, {}, () => {})   // a rank exiting meanwhile: nothing to tell
  })
  const { forward, forwarded, detach } = forwardSignals(children, alive)

  return new Promise<number>((resolve) => {
    let killTimer: NodeJS.Timeout | null = null
    let waitForRank0: NodeJS.Timeout | null = null
    const finish = (): void => {
      if (alive.size > 0 || waitForRank0 !== null) return
      if (killTimer !== null) clearTimeout(killTimer)
      detach()
      resolve(firstFailure?.code ?? stopped)
    }
    const stopOthers = (rank: number, status: number, why: string, signal: NodeJS.Signals | null): void => {
      firstFailure = { rank, code: status }
      if (rank > 0 && tails[rank] !== '') o.report(tails[rank]!.replace(/^(?=.)/gm, `[rank ${rank}] `))   // rank 0's came as it was written
      // rank 0 killed by a signal from elsewhere (the OOM killer, a SIGKILL) wrote no error: else the run ends in silence
      const unexplained = rank > 0 || (signal !== null && !forwarded.has(signal))
      if (unexplained && alive.size > 0) o.report(`llmts train: rank ${rank} ${why}; stopping the other ranks\n`)
      hub.fail(`rank ${rank} ${why}${signal !== null ? '' : ' (its error is above)'}`)   // waiting ranks fail at once; ranks
      killTimer = setTimeout(() => forward('SIGKILL'), GRACE_MS)   // blocked in NCCL are killed
    }
    const exited = (rank: number, code: number | null, signal: NodeJS.Signals | null): void => {
      alive.delete(rank)
      const status = code ?? 128 + (signal !== null ? constants.signals[signal] : 15)   // as a shell reports it: SIGINT 130
      const why = code !== null ? `exited with code ${code}` : `was killed (${signal})`
      if (code !== null && STOPPED_CODES.has(code)) {   // stopped with its checkpoint, as asked: no failure
        if (rank === 0) stopped = code
      } else if (status !== 0 && firstFailure === null) {
        if (rank === 0) {
          if (waitForRank0 !== null) { clearTimeout(waitForRank0); waitForRank0 = null }
          stopOthers(0, status, why, signal)
        } else if (waitForRank0 === null) {
          // a setting every rank refuses fails them all at once: when rank 0 follows within a second, its error
          // (already on the terminal) is the one; else this rank's is
          waitForRank0 = setTimeout(() => { waitForRank0 = null; stopOthers(rank, status, why, signal); finish() }, alive.has(0) ? 1000 : 0)
        }
      }
      finish()
    }
    for (let rank = 0; rank < o.world; rank++) {
      const child = startRank(o, rank, {
        stderr: d => { tails[rank] = (tails[rank] + d).slice(-TAIL_BYTES) },
        message: m => hub.receive(rank, m),
        close: (code, signal) => exited(rank, code, signal),
      })
      children.push(child)
      alive.add(rank)
    }
  })
}

/** Forwards SIGINT, SIGTERM and SIGHUP to the live ranks, each signal to each rank exactly once: ranks run in their
 *  own process groups, so a terminal's Ctrl-C reaches them only through here. `forwarded` holds the signals sent
 *  (a rank they kill is the user's doing: no failure to explain); `detach` removes the handlers. */
function forwardSignals(children: ChildProcess[], alive: Set<number>):
  { forward: (signal: NodeJS.Signals) => void; forwarded: Set<NodeJS.Signals>; detach: () => void } {
  const forwarded = new Set<NodeJS.Signals>()
  const forward = (signal: NodeJS.Signals): void => { forwarded.add(signal); for (const r of alive) children[r]!.kill(signal) }
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
  for (const s of signals) process.on(s, forward)
  return { forward, forwarded, detach: () => { for (const s of signals) process.off(s, forward) } }
}

/** Forks rank `rank` in its own process group: rank 0's output goes to the terminal as it comes, another rank's
 *  stderr to `on.stderr` (kept for when it fails first). `on.close` comes after its stderr is drained. */
function startRank(o: LaunchOptions, rank: number, on: {
  stderr: (text: string) => void; message: (m: RankRequest) => void; close: (code: number | null, signal: NodeJS.Signals | null) => void
}): ChildProcess {
  const child = fork(o.script, o.args, {
    env: { ...process.env, LLMTS_RANK: String(rank), LLMTS_WORLD: String(o.world) },
    serialization: 'advanced', detached: true,
    stdio: rank === 0 ? ['ignore', 'inherit', 'inherit', 'ipc'] : ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  child.stderr?.on('data', (d: Buffer) => on.stderr(d.toString('utf8')))
  child.on('message', (m: unknown) => { if (isCollectiveMessage(m)) on.message(m as RankRequest) })
  child.on('error', (e) => o.report(`llmts train: rank ${rank}: ${e.message}\n`))
  child.on('close', on.close)
  return child
}
