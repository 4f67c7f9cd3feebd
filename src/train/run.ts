// Sets up one training run from a resolved TrainConfig — the model (fresh, --init-from or the checkpoint being
// resumed), optimizer, loaders, RNG, RUN_DIR/config.json — and hands it to the trainer. Shared by `llmts train`
// and the default run. All validation happens before the first large allocation. --resume: src/train/resume.ts.
// As a data-parallel rank (--nproc), it sets up this rank's share: its GPU, its loader offset, its collective.

import { existsSync, rmSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { basename, join, resolve } from 'node:path'
import type { Backend } from '../backend/backend.js'
import { CpuBackend } from '../backend/cpu/index.js'
import { threadsFromEnv } from '../backend/cpu/kernels.js'
import { GPT2_VOCAB, type ModelConfig } from '../config.js'
import { DataLoader, ReadAhead, shardsWithBatch, type LoaderState, type RestorableSource } from '../data/loader.js'
import { isSplit, listShards, valShardsBeside } from '../data/shards.js'
import { statOrUndefined } from '../data/files.js'
import { loadHellaswag } from '../eval/hellaswag-data.js'
import { prepareHellaswag } from '../eval/hellaswag.js'
import { GPT } from '../model/gpt.js'
import { checkModelFits, requireGpt2Tokenizer, resolveModel, tokenizerNote } from '../model/load.js'
import type { HfTokenizer } from '../io/hf-tokenizer-check.js'
import { ParamLayout } from '../model/params.js'
import { checkOutputDir, makeDirs, writeFileAtomic } from '../util/atomic.js'
import { InputError } from '../util/errors.js'
import { plural } from '../util/progress.js'
import { Rng } from '../util/rng.js'
import { COMMITTED_BEST, removeLeftovers, type Checkpoint } from './checkpoint.js'
import { gradAccumSteps, validateTrainConfig, type TrainConfig } from './config.js'
import type { Collective, HostCollective } from './collective.js'
import { createBackend, describeBackend } from './device.js'
import { AdamW } from './optimizer.js'
import { findResumePoint, noteShardChange, noteShardContents, noteValidationChange, refuseModelDir, repairBest, restoreLoader, type ResumePoint } from './resume.js'
import { runTraining, type HellaswagSchedule, type Reporter, type TrainResult } from './trainer.js'

interface RunOptions {
  resume: boolean              // continue from the newest checkpoint in config.out
  resumeFrom?: ResumePoint     // what --resume continues (found by the caller already); found here if absent
  overwrite: boolean           // start over in a run directory that already has a run
  reporter?: Reporter
  stop?: { requested: boolean }
  note?: (line: string) => void   // one-line notices for the user (validation disabled, ...)
  onStart?: (info: RunInfo) => void   // after setup, before the first step
  /** With --nproc: this rank's channel to the launcher. Ranks > 0 have passed one barrier before calling (rank 0
   *  passes it here once its settings are checked); trainRun adds a second before rank 0 touches RUN_DIR. */
  host?: HostCollective
}

export interface RunInfo {
  runDir: string
  config: TrainConfig
  modelConfig: ModelConfig
  modelSource: string
  parameters: number           // real parameters (padded vocabulary rows excluded)
  gradAccum: number
  device: string               // backend name (cpu, cuda)
  backend: string              // what computes, for humans: kernels and threads, or the GPU
  ranks: string | null         // with --nproc: how many ranks and how they sum gradients
  startStep: number
}

/** Train shards of --data, and the validation shards (--val-data, else the *_val_* shards beside --data: its
 *  directory's, or those of the datasets its files belong to). No shard may be in both. */
export function resolveShards(c: TrainConfig): { train: string[]; val: string[] | null } {
  const isDir = (p: string): boolean => statOrUndefined(p)?.isDirectory() === true
  const train = listShards(c.data, isDir(c.data) ? 'train' : undefined)
  if (train.every(f => isSplit(f, 'val') && !isSplit(f, 'train'))) {
    throw new InputError(`train: --data ${c.data} names only validation shards (*_val_*); give it the train shards ` +
      '(the directory, or its *_train_* files), and the validation ones to --val-data if they are not beside them')
  }
  let val: string[] | null
  if (c.valData !== '') val = listShards(c.valData, isDir(c.valData) ? 'val' : undefined)
  else if (!isDir(c.data)) val = valShardsBeside(train)
  else try { val = listShards(c.data, 'val') } catch { val = null }
  const both = val?.find(f => train.includes(f))
  if (both !== undefined) {
    const fix = c.valData !== '' && isSplit(both, 'train')   // a train shard in --val-data: that flag is the mistake
      ? 'give --val-data the validation shards only, e.g. DIR/*_val_*.bin'
      : 'give --data the train shards only, e.g. DIR/*_train_*.bin or the directory'
    throw new InputError(`train: ${both} is both a train shard (--data ${c.data}) and a validation shard ` +
      `(${c.valData !== '' ? `--val-data ${c.valData}` : 'the *_val_* shards beside --data'}); ${fix}`)
  }
  return { train, val }
}

/** The model config and starting weights for a fresh run (--model, optionally --init-from). */
function resolveStart(c: TrainConfig): Start {
  return resolveModel(c.model === '' ? undefined : c.model, c.initFrom === '' ? {} : { initFrom: c.initFrom })
}

function prepareRunDir(runDir: string, opts: Pick<RunOptions, 'resume' | 'overwrite' | 'note'>): void {
  refuseModelDir(runDir)
  removeLeftovers(runDir, opts.note ?? (() => {}))
  const used = ['log.jsonl', 'checkpoints', 'best'].filter(n => existsSync(join(runDir, n)))
  if (!opts.resume && used.length > 0) {
    if (!opts.overwrite) {
      throw new InputError(`train: ${runDir} already holds a run (${used.join(', ')}); pass --resume to continue it, ` +
        '--overwrite to start over, or another --out')
    }
    for (const n of [...used, 'config.json', COMMITTED_BEST]) rmSync(join(runDir, n), { recursive: true, force: true })
  }
  makeDirs(runDir)
}

type Resumed = Checkpoint & { path: string }
type Start = { config: ModelConfig; params?: Float32Array; source: string; tokenizer: HfTokenizer | null }
type Shards = ReturnType<typeof resolveShards>

/** Builds everything from `c` and trains; returns the run's description and the trainer's result. */
export async function trainRun(c: TrainConfig, opts: RunOptions): Promise<{ info: RunInfo; result: TrainResult }> {
  const runDir = c.out !== '' ? c.out : defaultRunDir(c)
  checkOutputDir('train', '--out', runDir)
  const { point, resumeFrom, was, start } = runStart(c, opts, runDir)
  validateTrainConfig(c, start.config)
  const { rank, world } = rankOf(c, opts.host)
  const collectiveKind = world > 1 ? collectiveChoice() : null
  // the backend before the memory check, so --device auto's check knows a CPU from a GPU
  const threads = c.threads > 0 || world === 1 || threadsFromEnv() ? c.threads : Math.max(1, Math.floor(availableParallelism() / world))
  const backend = await createBackend(c.device, { threads, ordinal: rank, precision: c.precision })
  if (backend instanceof CpuBackend) {
    const shared = sharedCoresNote(world, backend.accel.kernels.threads, availableParallelism())
    if (shared !== null) opts.note?.(shared)
  }
  // float32 params, grads, m, v per CPU rank (on GPUs: rank 0's host copies at checkpoints)
  checkModelFits('train', start.config, backend.name === 'cuda' ? 12 : 16 * world, 'weights and optimizer state')
  const hellaswag = await loadHellaswagSchedule(c, start, opts.note)
  const differs = tokenizerNote('train', start)
  if (differs !== null && rank === 0) opts.note?.(`${differs}; samples are decoded as GPT-2 ids, as the shards are`)
  const shards = withValBatch(c, resumedShards(c, runDir, was), opts.note)
  if (resumeFrom !== null && was !== null && rank === 0) {
    if (was.data === c.data) noteShardChange(runDir, shards.train, opts.note ?? (() => {}))
    noteValidationChange(runDir, was, c, shards.val, resumeFrom.progress, opts.note ?? (() => {}))
  }
  // the loaders check the shards against B, T and the vocabulary: before RUN_DIR is prepared (--overwrite deletes)
  const { train, val } = buildLoaders(c, start.config, shards, { rank, world }, resumeFrom)
  try {   // the loaders hold a shard open each: closed on every way out, a refusal before the first step too
    const { valSteps, valSource } = checkData(c, { train, val }, { shards, resumeFrom, rank, world }, opts.note)
    if (point?.kind === 'restart') opts.note?.(`train: --resume: ${runDir} stopped before its first checkpoint; starting it over from step 0`)
    await prepareRunDirOnce(runDir, rank, point, opts)
    const collective = opts.host !== undefined ? await openCollective(backend, opts.host, collectiveKind ?? 'device') : null
    const pretrained = resumeFrom === null && start.params !== undefined
    const { model, optimizer, rng } = buildModel(backend, c, start, resumeFrom)
    releaseStartArrays(start, resumeFrom, point)

    const info: RunInfo = {
      runDir, config: { ...c, out: runDir }, modelConfig: start.config, modelSource: start.source,
      parameters: new ParamLayout(start.config).countReal(), gradAccum: gradAccumSteps(c), device: backend.name,
      backend: describeBackend(backend), ranks: collective?.describe() ?? null,
      startStep: resumeFrom?.progress.step ?? 0,
    }
    if (rank === 0) writeRunConfig(info, shards)
    opts.onStart?.(info)
    const result = await runTraining({
      model, optimizer, config: info.config, runDir, train, val: valSource, valSteps, rng, startStep: info.startStep,
      bestValLoss: resumeFrom?.progress.bestValLoss ?? null, pretrained,
      // tokens so far: the checkpoint's count (older ones have none: its steps at its own total batch)
      startTokens: resumeFrom === null ? 0
        : resumeFrom.progress.tokens ?? resumeFrom.progress.step * (resumeFrom.trainConfig?.totalBatchSize ?? c.totalBatchSize),
      reporter: opts.reporter, note: opts.note, stop: opts.stop, hellaswag, collective,
      ...(resumeFrom?.progress.guard !== undefined ? { guard: resumeFrom.progress.guard } : {}),
      ...(point?.kind === 'checkpoint' && point.log !== undefined ? { resumedLog: point.log } : {}),
    })
    collective?.close()   // not after a failure: a peer may be gone, and this rank's exit frees everything anyway
    return { info, result }
  } finally {
    train.close()
    val?.close()
  }
}

/** The loaders' data before RUN_DIR is prepared: train shards changed since the checkpoint resumed from (rank 0
 *  says so), no validation shards, their sizes (noteDataSizes), the validation batches read once. Answers the
 *  batches per validation and the validation's source: the loader, serving the batches read here first. */
function checkData(c: TrainConfig, loaders: { train: DataLoader; val: DataLoader | null },
                   at: { shards: Shards; resumeFrom: Resumed | null; rank: number; world: number }, note?: (line: string) => void):
  { valSteps: number; valSource: RestorableSource | null } {
  const { train, val } = loaders
  if (at.resumeFrom !== null && at.rank === 0) {
    noteShardContents(train.shardChanges(at.resumeFrom.progress.loader as LoaderState), at.resumeFrom.path, note ?? (() => {}))
  }
  if (at.shards.val === null && c.valEvery > 0) note?.(`train: no validation shards beside ${c.data} (pass --val-data); validation is off`)
  const valSteps = noteDataSizes(c, loaders, at, note)
  // the batches every validation reads, read now: the loader checks ids as it reads, so a bad one is refused before
  // RUN_DIR is prepared (--overwrite deletes); the first validation uses them (B·T+1 tokens each: 0.3 MB for 20 of 8×1024)
  return { valSteps, valSource: val !== null && c.valEvery > 0 ? new ReadAhead(val, valSteps) : val }
}

/** What the shards' sizes mean for the run, said before it starts: a step longer than a pass over the train shards
 *  (rank 0 says so), validation shards holding fewer batches than --val-steps. Answers the batches per validation:
 *  no more than the val shards hold, so validation never counts a batch twice. */
function noteDataSizes(c: TrainConfig, loaders: { train: DataLoader; val: DataLoader | null }, r: { rank: number; world: number },
                       note?: (line: string) => void): number {
  const epoch = loaders.train.batchesPerPass * c.batchSize * c.seqLen * r.world   // tokens of one pass over the train shards
  if (r.rank === 0 && c.totalBatchSize > epoch) {   // the report's 524,288 default on a small corpus: long, silent steps
    note?.(`train: note: one step (--total-batch-size ${c.totalBatchSize.toLocaleString('en-US')}) is more than the ` +
      `${epoch.toLocaleString('en-US')} tokens of a pass over the train shards, ${gradAccumSteps(c, r.world).toLocaleString('en-US')} ` +
      'micro-batches a step; for a small corpus, a smaller --total-batch-size')
  }
  const valSteps = Math.min(c.valSteps, loaders.val?.batchesPerPass ?? c.valSteps)
  if (valSteps < c.valSteps && c.valEvery > 0) {
    note?.(`train: the validation shards hold ${valSteps} ${plural(valSteps, 'batch', 'batches')} of B·T = ${c.batchSize}·${c.seqLen} tokens` +
      `; each validation reads ${valSteps > 1 ? 'those' : 'that one'} instead of --val-steps ${c.valSteps}`)
  }
  return valSteps
}

/** RUN_DIR is prepared (which may delete a run being started over) by rank 0 alone, and with ranks only once each has
 *  read what it needs there. Rank 0 passes a first barrier once its settings are good (the others waited at it
 *  before trainRun, and may now read theirs, including what --resume continues), then a second once they have. */
async function prepareRunDirOnce(runDir: string, rank: number, point: ResumePoint | null, opts: RunOptions): Promise<void> {
  if (opts.host !== undefined) {
    await opts.host.barrier()
    if (rank === 0) await opts.host.barrier()
  }
  if (rank === 0) prepareRunDir(runDir, point?.kind === 'restart' ? { resume: false, overwrite: true, note: opts.note } : opts)
  if (rank === 0 && point?.kind === 'checkpoint') repairBest(runDir, point, opts.note)
}

/** What the run starts from: on --resume its checkpoint (or, stopped before one, its saved settings), else the
 *  model that --model / --init-from name. A resume keeps the run's own model. */
function runStart(c: TrainConfig, opts: RunOptions, runDir: string):
  { point: ResumePoint | null; resumeFrom: Resumed | null; was: TrainConfig | null; start: Start } {
  const point = opts.resume ? opts.resumeFrom ?? findResumePoint(runDir, opts.note) : null
  const resumeFrom = point?.kind === 'checkpoint' ? { ...point.checkpoint, path: point.path } : null
  const was = (point?.kind === 'restart' ? point.config : resumeFrom?.trainConfig) ?? null
  if (was !== null && (was.model !== c.model || was.initFrom !== c.initFrom)) {
    throw new InputError(`train: --resume continues ${runDir} with its own model ` +
      `(--model ${was.model}${was.initFrom !== '' ? ` --init-from ${was.initFrom}` : ''}); ` +
      'drop --model/--init-from, or start a new run with another --out')
  }
  const start = resumeFrom !== null
    ? { config: resumeFrom.modelConfig, params: resumeFrom.params, source: `checkpoint ${resumeFrom.path}`, tokenizer: null }
    : resolveStart(c)
  return { point, resumeFrom, was, start }
}

/** This rank's train and val loaders; on --resume the train loader continues where the checkpoint left it. */
function buildLoaders(c: TrainConfig, model: ModelConfig, shards: Shards, r: { rank: number; world: number }, resumeFrom: Resumed | null):
  { train: DataLoader; val: DataLoader | null } {
  const loaderOpts = { B: c.batchSize, T: c.seqLen, vocabSize: model.vocabSize, rank: r.rank, worldSize: r.world }
  const train = new DataLoader({ files: shards.train, ...loaderOpts, shuffle: c.shuffle === 'on', seed: c.seed })
  let val: DataLoader | null = null
  try {   // a refusal here closes what is open (the caller gets no loader to close)
    // every rank reads the whole validation stream, as one process does, and evaluates its share of the batches
    // none with --val-every 0: validation never reads the shards (which withValBatch then left unchecked)
    val = shards.val === null || c.valEvery <= 0 ? null : new DataLoader({ files: shards.val, ...loaderOpts, rank: 0, worldSize: 1 })
    if (resumeFrom !== null) restoreTrainLoader(train, c, resumeFrom)
  } catch (e) {
    train.close()
    val?.close()
    throw e
  }
  return { train, val }
}

/** The train loader at the checkpoint's position; a refusal names the settings this --resume changes it depends on. */
function restoreTrainLoader(train: DataLoader, c: TrainConfig, resumeFrom: Resumed): void {
  try { restoreLoader(train, resumeFrom.progress.loader, resumeFrom.path) } catch (e) {
    const changed = loaderChanges(resumeFrom.trainConfig, c)
    if (!(e instanceof InputError) || changed === '') throw e
    throw new InputError(`${e.message}; this --resume changes ${changed}, which the saved data position depends on (keep the run's value)`)
  }
}

/** The model (its weights from the start point, else initialized from --seed), AdamW and the sampling RNG, with the
 *  checkpoint's optimizer moments and RNG state on --resume. */
function buildModel(backend: Backend, c: TrainConfig, start: Start, resumeFrom: Resumed | null): { model: GPT; optimizer: AdamW; rng: Rng } {
  const model = new GPT(backend, start.config, { maxBatch: c.batchSize, maxSeqLen: c.seqLen, recompute: c.recompute === 'on' })
  if (start.params !== undefined) model.setParams(start.params)
  else model.initWeights(c.seed)
  const optimizer = new AdamW(model, { beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay })
  let rng = new Rng(c.seed ^ 0x5a3c_e11d)   // sampling stream, independent of the initialization's
  if (resumeFrom !== null) {
    if (resumeFrom.optimizer !== null) optimizer.setState(resumeFrom.optimizer)
    rng = new Rng(resumeFrom.progress.rng)
  }
  return { model, optimizer, rng }
}

/** The model and optimizer hold their own copies now: drops the arrays the run started from (a resumed checkpoint's
 *  weights and moments, 1.4 GiB at gpt2-124m), which this frame and the CLI's, suspended in the training loop, would
 *  otherwise keep for the whole run. Only the arrays go: the checkpoint's progress is still read. */
function releaseStartArrays(start: Start, resumed: Resumed | null, point: ResumePoint | null): void {
  delete start.params
  for (const ck of [resumed, point?.kind === 'checkpoint' ? point.checkpoint : null]) {
    if (ck !== null) { ck.params = new Float32Array(0); ck.optimizer = null }
  }
}

/** RUN_DIR/config.json: the model, the settings and where they came from, the device and the shards read. */
function writeRunConfig(info: RunInfo, shards: Shards): void {
  writeFileAtomic(join(info.runDir, 'config.json'), JSON.stringify({
    model: info.modelConfig, modelSource: info.modelSource, parameters: info.parameters, train: info.config,
    gradAccum: info.gradAccum, device: info.device, backend: info.backend, ranks: info.ranks, trainShards: shards.train, valShards: shards.val,
  }, null, 2) + '\n')
}

/** The shards; on --resume, a missing data path the run saved is named as such (a relative path is read from the
 *  current directory, which may not be where the run started). */
function resumedShards(c: TrainConfig, runDir: string, saved: TrainConfig | null): Shards {
  try { return resolveShards(c) } catch (e) {
    if (saved === null || !(e instanceof InputError) || (saved.data !== c.data && saved.valData !== c.valData)) throw e
    throw new InputError(`${e.message} (--data ${c.data}${c.valData !== '' ? `, --val-data ${c.valData}` : ''} as ${runDir} saved it, ` +
      'from the current directory; give --data/--val-data to point at the shards)')
  }
}

/** `shards` without the validation shards too small for one batch, with a note naming them (as eval loss does).
 *  With --val-every 0 they are never read: neither checked nor noted. */
function withValBatch(c: TrainConfig, shards: Shards, note?: (line: string) => void): Shards {
  if (shards.val === null || c.valEvery <= 0) return shards
  const where = c.valData !== '' ? `--val-data ${c.valData}` : `the validation shards beside ${c.data}`
  const { files, skipped } = shardsWithBatch(shards.val, { B: c.batchSize, T: c.seqLen }, where)
  if (skipped !== null) note?.(`train: ${skipped}`)
  return { train: shards.train, val: files }
}

/** The settings the data loader's position depends on that `now` changes from `saved`, as "--flag a → b, ...". */
function loaderChanges(saved: TrainConfig | null, now: TrainConfig): string {
  if (saved === null) return ''
  const flags: [keyof TrainConfig, string][] = [['shuffle', 'shuffle'], ['seed', 'seed'], ['nproc', 'nproc'], ['batchSize', 'batch-size'],
    ['seqLen', 'seq-len'], ['data', 'data']]
  return flags.filter(([k]) => saved[k] !== now[k]).map(([k, f]) => `--${f} ${String(saved[k])} → ${String(now[k])}`).join(', ')
}

/** What --nproc N on the CPU does when its ranks' threads outnumber the cores (every rank runs at least one): the
 *  ranks take turns on the cores rather than each having its own. null when every thread has a core. */
export function sharedCoresNote(world: number, threadsPerRank: number, cores: number): string | null {
  if (world === 1 || world * threadsPerRank <= cores) return null
  const fix = threadsPerRank === 1 ? `--nproc ${cores} or fewer gives each rank a core of its own`
    : `--nproc × --threads at most ${cores} gives each thread a core of its own`
  return `train: --nproc ${world} on ${cores} ${plural(cores, 'core')}: ${world} ranks of ${threadsPerRank} ` +
    `${plural(threadsPerRank, 'thread')} share them (${fix})`
}

/** This process's rank; --nproc N > 1 runs only as a rank started by the launcher (src/train/launch.ts). */
function rankOf(c: TrainConfig, host: HostCollective | undefined): { rank: number; world: number } {
  const r = host ?? null
  if (r === null && c.nproc === 1) return { rank: 0, world: 1 }
  if (r === null || r.world !== c.nproc) {
    throw new Error(`train: --nproc ${c.nproc} but this process is ${r === null ? 'not a launched rank' : `rank ${r.rank} of ${r.world}`} ` +
      `(llmts train starts the ranks itself)`)
  }
  return r
}

/** LLMTS_COLLECTIVE: 'device' (default: the backend's own, NCCL on GPUs) or 'host' (through the launcher). */
function collectiveChoice(): 'host' | 'device' {
  const choice = process.env['LLMTS_COLLECTIVE'] ?? ''
  if (choice !== '' && choice !== 'host' && choice !== 'device') {
    throw new InputError(`train: LLMTS_COLLECTIVE=${choice} is not one of host, device`)
  }
  return choice === 'host' ? 'host' : 'device'
}

/** The backend's own collective (NCCL on GPUs) unless `kind` is host or it has none; else the launcher's host collective. */
async function openCollective(backend: Backend, host: HostCollective, kind: 'host' | 'device'): Promise<Collective> {
  const world = host.world
  host.attach(backend)
  const onGpu = (await host.sumHost([backend.name === 'cuda' ? 1 : 0]))[0]!   // --device auto decides per rank
  if (onGpu !== 0 && onGpu !== world) {
    throw new InputError(`train: --nproc ${world}: ${onGpu} ranks found a GPU and ${world - onGpu} did not ` +
      `(one GPU per rank; give --device cpu, or --nproc at most the number of GPUs)`)
  }
  if (kind === 'host' || backend.openCollective === undefined) return host
  return backend.openCollective(host)
}

/** runs/<model>-<date and time>: where a run without --out goes. */
export function defaultRunDir(c: TrainConfig): string {
  const name = c.model !== '' ? c.model : basename(resolve(c.initFrom))
  return join('runs', `${name.replace(/[^\w.-]+/g, '_')}-${timestamp()}`)
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)
}

/** --hellaswag-every: the examples, read (or downloaded once) and tokenized before the first step. */
async function loadHellaswagSchedule(c: TrainConfig, start: Start, note?: (line: string) => void): Promise<HellaswagSchedule | null> {
  if (c.hellaswagEvery === 0) return null
  if (start.config.vocabSize !== GPT2_VOCAB) {
    throw new InputError(`train: --hellaswag-every needs GPT-2's ${GPT2_VOCAB}-token vocabulary; the model has ${start.config.vocabSize}`)
  }
  requireGpt2Tokenizer('train', start, '--hellaswag-every\'s texts')
  const examples = await loadHellaswag('val', {
    ...(c.hellaswagData !== '' ? { file: c.hellaswagData } : {}), ...(c.hellaswagLimit > 0 ? { limit: c.hellaswagLimit } : {}),
    ...(note !== undefined ? { onStatus: note } : {}), fileFlag: '--hellaswag-data',
  })
  const prepared = await prepareHellaswag(examples, { scoring: c.hellaswagScoring, shots: 0 })
  note?.(`train: HellaSwag (${c.hellaswagScoring} scoring, 0-shot) on ${prepared.length} examples every ${c.hellaswagEvery} steps`)
  return { every: c.hellaswagEvery, prepared, scoring: c.hellaswagScoring }
}
