// koffi bindings to NCCL (libnccl.so.2, found by libs.ts, loaded on first use: only multi-GPU training needs it):
// a communicator per process and GPU, and an in-place sum all-reduce. Every ncclResult_t is checked and reported
// with the call's name and NCCL's own error string. Each communicator runs on a blocking stream of its own, which
// orders with the legacy default stream the rest of the backend uses, so no extra synchronization is needed.

import koffi from 'koffi'
import type { CudaContext } from './context.js'
import { bind, type Driver, type Handle } from './ffi.js'
import { loadLibrary } from './libs.js'

/** Bytes of an ncclUniqueId: made on rank 0, handed to every other rank by the caller. */
const NCCL_ID_BYTES = 128

koffi.pointer('ncclComm', koffi.opaque())
// typedef struct { char internal[128]; } ncclUniqueId; ncclCommInitRank takes it by value
koffi.struct('ncclUniqueId', { internal: koffi.array('uint8_t', NCCL_ID_BYTES, 'Typed') })

const protos = [
  'int ncclGetVersion(_Out_ int *version)',
  'const char *ncclGetErrorString(int result)',
  'int ncclGetUniqueId(_Out_ uint8_t *id)',
  'int ncclCommInitRank(_Out_ ncclComm *comm, int nranks, ncclUniqueId commId, int rank)',
  'int ncclAllReduce(uint64_t sendbuff, uint64_t recvbuff, size_t count, int datatype, int op, ncclComm comm, CUstream stream)',
  'int ncclCommDestroy(ncclComm comm)',
]

const ncclTypes = { f32: 7, bf16: 9 } as const   // ncclFloat32, ncclBfloat16
const NCCL_SUM = 0
const CU_STREAM_DEFAULT = 0   // a blocking stream: it waits for, and is waited for by, the legacy default stream

let loaded: Nccl | null = null

/** The loaded NCCL library. */
export class Nccl {
  readonly version: number   // ncclGetVersion: major·10000 + minor·100 + patch, e.g. 22703 for 2.27.3

  private constructor(readonly path: string, private readonly raw: ReturnType<typeof bind>) {
    const v = [0]
    this.call('ncclGetVersion', v)
    this.version = v[0]!
  }

  /** NCCL, loaded once per process; an InputError saying how to install it when it is not found. */
  static load(): Nccl {
    if (loaded === null) {
      const { lib, path } = loadLibrary('nccl', p => koffi.load(p))
      loaded = new Nccl(path, bind(lib, path, protos))
    }
    return loaded
  }

  /** Throws on a non-zero ncclResult_t, naming the call and NCCL's error string. */
  call(name: string, ...args: unknown[]): void {
    const rc = this.raw[name]!(...args) as number
    if (rc !== 0) throw new Error(`nccl: ${name} failed: ${this.raw['ncclGetErrorString']!(rc) as string} (ncclResult ${rc})`)
  }

  /** A fresh id for one communicator (on rank 0; every rank passes the same bytes to init). */
  uniqueId(): Uint8Array {
    const id = new Uint8Array(NCCL_ID_BYTES)
    this.call('ncclGetUniqueId', id)
    return id
  }

  /** Joins the communicator `id` as `rank` of `world` on ctx's GPU (ctx current on this thread); blocks until every
   *  rank has joined. */
  init(ctx: CudaContext, id: Uint8Array, world: number, rank: number): NcclComm {
    if (id.length !== NCCL_ID_BYTES) throw new Error(`nccl: ncclCommInitRank: the unique id has ${id.length} bytes, expected ${NCCL_ID_BYTES}`)
    if (!Number.isInteger(world) || !Number.isInteger(rank) || world < 1 || rank < 0 || rank >= world) {
      throw new Error(`nccl: ncclCommInitRank: rank ${rank} of world ${world}, expected 0 <= rank < world`)
    }
    const comm: Handle[] = [null]
    this.call('ncclCommInitRank', comm, world, { internal: id }, rank)
    const stream: Handle[] = [null]
    try { ctx.driver.call('cuStreamCreate', stream, CU_STREAM_DEFAULT) } catch (e) {
      this.call('ncclCommDestroy', comm[0])
      throw e
    }
    return new NcclComm(this, ctx.driver, comm[0], stream[0], world, rank)
  }
}

/** One rank's communicator (made by Nccl.init). */
export class NcclComm {
  private live = true

  constructor(private readonly nccl: Nccl, private readonly driver: Driver, private readonly comm: Handle,
              private readonly stream: Handle, readonly world: number, readonly rank: number) {}

  /** In place sum over ranks of `count` elements at device pointer `ptr`; enqueued on a stream that orders with
   *  the legacy default stream (everything else runs there), so kernels before and after need no extra sync. */
  allReduceSum(ptr: number, count: number, dtype: 'f32' | 'bf16'): void {
    if (!this.live) throw new Error('nccl: ncclAllReduce on a destroyed communicator')
    const type = (ncclTypes as Record<string, number | undefined>)[dtype]
    if (type === undefined) throw new Error(`nccl: ncclAllReduce: dtype ${String(dtype)}, expected f32 or bf16`)
    if (!Number.isSafeInteger(count) || count < 0) throw new Error(`nccl: ncclAllReduce: count ${count}, expected a whole number >= 0`)
    this.nccl.call('ncclAllReduce', ptr, ptr, count, type, NCCL_SUM, this.comm, this.stream)
  }

  /** Frees the communicator and its stream (after the work queued on them); a second call does nothing. */
  destroy(): void {
    if (!this.live) return
    this.live = false
    this.driver.call('cuStreamSynchronize', this.stream)
    this.nccl.call('ncclCommDestroy', this.comm)
    this.driver.call('cuStreamDestroy_v2', this.stream)
  }
}
