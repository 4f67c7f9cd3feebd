// Test tooling: one rank of nccl.test.ts, a process of its own on the CUDA emulator. Prints JSON on stdout.
//   node nccl-rank.js reduce ID_FILE WORLD RANK   rank 0 makes the unique id and renames it into ID_FILE (so it
//     appears whole), the others wait for it; then three all-reduces: f32, bf16, f32 on a view at an offset
//   node nccl-rank.js errors                        one rank alone: the errors of bad ids, dtypes and ranges

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Tensor } from '../../src/backend/backend.js'
import { CudaBackend } from '../../src/backend/cuda/index.js'
import { asDevice } from '../../src/backend/cuda/memory.js'
import { Nccl, type NcclComm } from '../../src/backend/cuda/nccl.js'

const N = 1027                    // elements per buffer: odd, so no size is a multiple of a vector width
const VIEW = { offset: 5, length: 500 }

/** Values of every magnitude from 1e-3 to 1e3, different on every rank: the order of the sum shows in the bits. */
function values(rank: number, salt: number): Float32Array {
  return Float32Array.from({ length: N }, (_, i) => Math.sin(i * 0.37 + rank * 1.91 + salt) * 10 ** ((i % 7) - 3))
}

function reduce(comm: NcclComm, t: Tensor): void {
  const d = asDevice(t, 'nccl-rank', 't')
  comm.allReduceSum(d.ptr, d.length, d.dtype as 'f32' | 'bf16')
}

async function readId(file: string): Promise<Uint8Array> {
  for (let waited = 0; !existsSync(file); waited += 5) {
    if (waited > 120_000) throw new Error(`nccl-rank: no id in ${file} after 120 s (did rank 0 fail?)`)
    await sleep(5)
  }
  return new Uint8Array(readFileSync(file))
}

async function reduceRun(idFile: string, world: number, rank: number): Promise<object> {
  const be = new CudaBackend(), nccl = Nccl.load()
  if (rank === 0) {
    writeFileSync(`${idFile}.tmp`, nccl.uniqueId())
    renameSync(`${idFile}.tmp`, idFile)
  }
  const comm = nccl.init(be.ctx, await readId(idFile), world, rank)
  const f32 = be.alloc(N), bf16 = be.alloc(N, { precision: 'compute' })
  be.upload(f32, values(rank, 0))
  be.upload(bf16, values(rank, 100))
  const inputs = { f32: Array.from(be.download(f32)), bf16: Array.from(be.download(bf16)) }
  reduce(comm, f32)
  reduce(comm, bf16)
  const summed = { f32: Array.from(be.download(f32)), bf16: Array.from(be.download(bf16)) }
  reduce(comm, be.view(f32, VIEW.offset, VIEW.length))
  const viewed = Array.from(be.download(f32))
  comm.destroy()
  return { version: nccl.version, view: VIEW, bf16Storage: asDevice(bf16, 'nccl-rank', 'bf16').dtype === 'bf16', inputs, summed, viewed }
}

function errorOf(f: () => void): string {
  try { f() } catch (e) { return (e as Error).message }
  return 'no error'
}

function errorsRun(): object {
  const be = new CudaBackend(), nccl = Nccl.load()
  const t = be.alloc(N), ptr = asDevice(t, 'nccl-rank', 't').ptr
  be.upload(t, values(0, 0))
  const id = nccl.uniqueId()
  const errors = {
    zeroId: errorOf(() => nccl.init(be.ctx, new Uint8Array(128), 1, 0)),
    shortId: errorOf(() => nccl.init(be.ctx, id.subarray(0, 5), 1, 0)),
    rank: errorOf(() => nccl.init(be.ctx, id, 2, 2)),
  } as Record<string, string>
  const comm = nccl.init(be.ctx, id, 1, 0)
  errors['dtype'] = errorOf(() => comm.allReduceSum(ptr, N, 'i32' as 'f32'))
  errors['range'] = errorOf(() => comm.allReduceSum(ptr, N + 1000, 'f32'))
  comm.allReduceSum(ptr, N, 'f32')
  const identity = be.download(t).every((v, i) => v === values(0, 0)[i])
  comm.destroy()
  errors['destroyed'] = errorOf(() => comm.allReduceSum(ptr, N, 'f32'))
  errors['usedId'] = errorOf(() => nccl.init(be.ctx, id, 1, 0))
  return { errors, identity }
}

const [mode, idFile, world, rank] = process.argv.slice(2)
const result = mode === 'errors' ? errorsRun() : await reduceRun(idFile!, Number(world), Number(rank))
console.log(JSON.stringify(result))
