// Data-parallel ranks talk through a Collective: sums of tensors (the gradients) and of host numbers (losses,
// counts, the stop flag), and rank 0's bytes to everyone. The host collective below routes everything through
// the launcher (src/train/launch.ts) over each rank's IPC channel: the launcher waits for every rank's part,
// sums in rank order in float64 and answers each rank with the same values, so every rank holds the same bits.
// It works for any backend (tensors go through download/upload); on GPUs the backend supplies NCCL instead.

import type { Backend, Collective, Tensor } from '../backend/backend.js'
import { PeerFailure } from '../util/errors.js'

export type { Collective }


/** The rank of this process and the number of ranks, from the launcher's environment (null: not launched). */
export function rankFromEnv(env: NodeJS.ProcessEnv = process.env): { rank: number; world: number } | null {
  const r = env['LLMTS_RANK'], w = env['LLMTS_WORLD']
  if (r === undefined || w === undefined) return null
  const rank = Number(r), world = Number(w)
  if (!(Number.isSafeInteger(rank) && Number.isSafeInteger(world) && world >= 1 && rank >= 0 && rank < world)) {
    throw new Error(`collective: LLMTS_RANK=${r} LLMTS_WORLD=${w} is not a rank in [0, world)`)
  }
  return { rank, world }
}

// ---- the launcher protocol (one message type each way; seq orders a rank's requests) --------------------------

type CollectiveOp = 'sum' | 'broadcast'
export interface RankRequest { llmts: 'collective'; seq: number; op: CollectiveOp; data: Float64Array | Float32Array | Uint8Array | null }
export interface LauncherReply {
  llmts: 'collective'; seq: number; data?: Float64Array | Float32Array | Uint8Array
  error?: string
  peer?: boolean   // the error is another rank's failure
}

/** A message of this protocol (either way). */
export function isCollectiveMessage(m: unknown): boolean {
  return typeof m === 'object' && m !== null && (m as { llmts?: unknown }).llmts === 'collective'
}

/** The rank side of the host collective: requests go to the launcher with process.send, answers come back in order. */
export class HostCollective implements Collective {
  private seq = 0
  private readonly waiting = new Map<number, { resolve: (r: LauncherReply) => void; reject: (e: Error) => void }>()

  private backend: Backend | null = null

  constructor(readonly rank: number, readonly world: number, private readonly channel: NodeJS.Process = process) {
    if (channel.send === undefined) throw new Error('collective: this rank has no IPC channel to its launcher')
    channel.on('message', (m: unknown) => {
      if (!isCollectiveMessage(m)) return
      const r = m as LauncherReply
      const w = this.waiting.get(r.seq)
      if (w === undefined) return
      this.waiting.delete(r.seq)
      if (r.error !== undefined) w.reject(r.peer === true ? new PeerFailure(`collective: ${r.error}`) : new Error(`collective: ${r.error}`))
      else w.resolve(r)
    })
    // the launcher gone means the other ranks are too: nothing left to wait for
    channel.on('disconnect', () => {
      for (const w of this.waiting.values()) w.reject(new PeerFailure('collective: the launcher closed the channel (another rank failed?)'))
      this.waiting.clear()
    })
    channel.channel?.unref()   // the channel alone does not keep a finished rank alive
  }

  /** The backend whose tensors allReduceSum moves (set once it exists). */
  attach(backend: Backend): void { this.backend = backend }

  /** Returns once every rank has called it. */
  async barrier(): Promise<void> { await this.sumHost([]) }

  close(): void {}

  describe(): string { return `${this.world} ranks, gradients summed through the launcher (host memory)` }

  private request(op: CollectiveOp, data: RankRequest['data']): Promise<LauncherReply> {
    const seq = this.seq++
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject })
      this.channel.channel?.ref()
      const msg: RankRequest = { llmts: 'collective', seq, op, data }
      this.channel.send!(msg, undefined, {}, (e: Error | null) => {
        if (e !== null) { this.waiting.delete(seq); reject(new PeerFailure(`collective: cannot reach the launcher (gone?): ${e.message}`)) }
      })
    }).finally(() => { if (this.waiting.size === 0) this.channel.channel?.unref() }) as Promise<LauncherReply>
  }

  async allReduceSum(t: Tensor): Promise<void> {
    if (this.backend === null) throw new Error('collective: allReduceSum needs a backend')
    const r = await this.request('sum', this.backend.download(t))
    this.backend.upload(t, r.data as Float32Array)
  }

  async sumHost(values: readonly number[]): Promise<number[]> {
    return [...(await this.request('sum', Float64Array.from(values))).data as Float64Array]
  }

  async broadcast(bytes: Uint8Array | null): Promise<Uint8Array> {
    if ((this.rank === 0) !== (bytes !== null)) throw new Error('collective: broadcast takes bytes on rank 0 and null elsewhere')
    return (await this.request('broadcast', bytes)).data as Uint8Array
  }
}
