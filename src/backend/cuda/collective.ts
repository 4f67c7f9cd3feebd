// The CUDA backend's collective for data-parallel ranks: tensors are summed in device memory by NCCL (one
// communicator per process and GPU, its id made on rank 0 and carried to the others by the host collective);
// small host values and broadcasts still go through the host collective, which NCCL would not make faster.

import type { Collective, Tensor } from '../backend.js'
import type { CudaContext } from './context.js'
import { asDevice } from './memory.js'
import { Nccl, type NcclComm } from './nccl.js'

export class NcclCollective implements Collective {
  private constructor(private readonly comm: NcclComm, private readonly host: Collective, private readonly nccl: Nccl) {}

  get rank(): number { return this.host.rank }
  get world(): number { return this.host.world }

  /** Loads NCCL, makes the communicator id on rank 0, sends it over `host` and joins the communicator. */
  static async open(ctx: CudaContext, host: Collective): Promise<NcclCollective> {
    const nccl = Nccl.load()
    const id = await host.broadcast(host.rank === 0 ? nccl.uniqueId() : null)
    return new NcclCollective(nccl.init(ctx, id, host.world, host.rank), host, nccl)
  }

  async allReduceSum(t_: Tensor): Promise<void> {
    const t = asDevice(t_, 'allReduceSum', 't')   // pending lazy zeros are written first: NCCL reads the memory
    if (t.dtype === 'i32') throw new Error('cuda backend: allReduceSum: t is an int32 tensor')
    this.comm.allReduceSum(t.ptr, t.length, t.dtype)
    t.alloc.version++   // a bf16 mirror of it is stale now
  }

  sumHost(values: readonly number[]): Promise<number[]> { return this.host.sumHost(values) }

  broadcast(bytes: Uint8Array | null): Promise<Uint8Array> { return this.host.broadcast(bytes) }

  close(): void { this.comm.destroy() }

  describe(): string {
    const v = this.nccl.version
    return `${this.world} ranks, gradients summed by NCCL ${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100} (${this.nccl.path})`
  }
}
