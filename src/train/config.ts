// TrainConfig: every training setting with its default (the report's GPT-2 124M run, i.e. llm.c's), the one
// field table the CLI flags and `--config FILE` JSON are both read through, and validation that turns any
// inconsistent setting into an InputError before a single buffer is allocated.

import type { ModelConfig } from '../config.js'
import { InputError, shown } from '../util/errors.js'
import { MAX_SEED } from '../util/rng.js'
import { lrSchedules, type LrScheduleKind } from './schedule.js'

export type Device = 'cpu' | 'cuda' | 'auto'
/** auto: bf16 on a GPU, fp32 on the CPU (which always computes in fp32); tf32: fp32 tensors with TF32 matmuls. */
export const precisions = ['auto', 'bf16', 'tf32', 'fp32'] as const
export type Precision = typeof precisions[number]

export interface TrainConfig {
  model: string              // preset, model config JSON, Hugging Face directory, run directory or checkpoint; '' with
                             // initFrom: that directory's architecture
  initFrom: string           // '' or a Hugging Face directory / checkpoint whose weights start the run
  data: string               // train shards: a directory, a shard file or a glob
  valData: string            // '' = the `*_val_*` shards beside --data, when there are any
  batchSize: number
  seqLen: number
  totalBatchSize: number
  steps: number
  lr: number
  warmupSteps: number
  minLrFrac: number
  lrSchedule: LrScheduleKind
  cooldownFrac: number       // wsd: the fraction of the steps its final decay takes
  weightDecay: number
  beta1: number
  beta2: number
  eps: number
  gradClip: number
  seed: number
  device: Device
  precision: Precision
  threads: number            // CPU threads (native BLAS and the worker pool); 0 = every core
  nproc: number              // data-parallel processes (ranks); each reads its own micro-batches
  out: string
  valEvery: number
  valSteps: number
  checkpointEvery: number
  keepCheckpoints: number
  keepEvery: number          // step checkpoints at multiples of N are never pruned (llm.c's major checkpoints); 0 = none
  sampleEvery: number
  sampleTokens: number
  onNan: 'stop' | 'skip'     // a non-finite loss or gradient norm: stop (exit 3), or skip that step's update
  skipSpikes: number         // skip the update when the loss or grad-norm z-score exceeds this; 0 = never
  shuffle: 'off' | 'on'      // a seeded permutation of the train shards each epoch and of each shard's windows
  recompute: 'off' | 'on'    // recompute norm outputs and the MLP activation in backward (GptOptions.recompute)
  hellaswagEvery: number     // HellaSwag (0-shot) every N steps and at the end; 0 = never
  hellaswagData: string      // '' = the validation JSONL downloaded once into the cache
  hellaswagLimit: number     // the first N examples; 0 = all 10,042
  hellaswagScoring: 'harness' | 'llmc'
}

export const trainDefaults: TrainConfig = {
  model: 'gpt2-124m',        // what to train
  initFrom: '',              // start from these weights instead of the seeded initialization
  data: '',                  // required: made by `llmts prepare`
  valData: '',               // default: the val shards next to the train shards
  batchSize: 8,              // B: sequences per micro-batch
  seqLen: 1024,              // T: tokens per sequence
  totalBatchSize: 524_288,   // tokens per optimizer step (~0.5M as GPT-3); accumulation = total / (B·T·world)
  steps: 19_073,             // optimizer steps: 19,073 × 524,288 ≈ 10B tokens, one epoch of FineWeb-10B
  lr: 1.2e-3,                // peak learning rate, reached after warmupSteps (3× GPT-3's 6e-4, as llm.c)
  warmupSteps: 715,          // linear warmup (GPT-3: 375M tokens / 524,288)
  minLrFrac: 0.1,            // the decay's floor: 10% of the peak (reached one step past the last)
  lrSchedule: 'cosine',      // after the warmup: cosine decay (the report's, llm.c's default), linear, constant or wsd
  cooldownFrac: 0.2,         // wsd: the peak until the last 20% of the steps, then 1 − √t down to the floor (llm.c's)
  weightDecay: 0.1,          // decoupled, on matrices and embeddings only
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  gradClip: 1.0,             // global-norm clip of the accumulated gradient; 0 disables
  seed: 1337,                // weight initialization (and sampling) seed
  device: 'auto',
  precision: 'auto',         // GPU: bf16 activations and matmuls, fp32 weights and AdamW state (llm.c's mixed precision)
  threads: 0,                // every core ($LLMTS_THREADS when set); with --nproc N, the cores / N per rank
  nproc: 1,                  // N > 1: one rank per GPU (NCCL sums the gradients), or N CPU processes
  out: '',                   // default: runs/<model>-<date>
  valEvery: 250,             // validation loss every N steps (and at the first and last); 0 disables
  valSteps: 20,              // micro-batches per validation (always from the start of the val data)
  checkpointEvery: 1000,     // checkpoint every N steps (and at the end); 0 = only at the end
  keepCheckpoints: 3,        // keep the last K step checkpoints (RUN_DIR/best is kept apart); 0 keeps all
  keepEvery: 0,              // off: every step checkpoint counts towards keepCheckpoints
  sampleEvery: 1000,         // print a sample every N steps; 0 disables
  sampleTokens: 64,          // length of those samples (at most the context length minus one)
  onNan: 'stop',             // the weights are never updated with a NaN; stopping keeps the last good checkpoint
  skipSpikes: 0,             // spikes (z > 5, src/train/divergence.ts) are reported; with Z > 0 also skipped
  shuffle: 'off',            // in order, as llm.c's default; on: permuted from --seed (resumes exactly)
  recompute: 'off',          // on: less activation memory (1.2 GiB at variant-124m B=16 T=1024), a few % slower
  hellaswagEvery: 0,         // off: a full HellaSwag pass is 40,168 forward rows
  hellaswagData: '',
  hellaswagLimit: 0,
  hellaswagScoring: 'harness', // lm-evaluation-harness's acc_norm (per character), as the report
}

type FieldKind = { kind: 'string'; metavar: string } | { kind: 'int'; min: number; max?: number } | { kind: 'number'; min: number; max?: number }
  | { kind: 'enum'; values: readonly string[] }
/** Most ranks one launcher forks (each a Node process of its own): more is a typo; the same bound as --threads. */
const MAX_NPROC = 1024

type TrainField = FieldKind & { flag: string; help: string }

/** One row per setting: its flag name, type and help (the CLI's flag table is built from this). */
export const trainFields: Record<keyof TrainConfig, TrainField> = {
  model: { flag: 'model', kind: 'string', metavar: 'SPEC', help: 'preset, config JSON, HF directory, run directory or checkpoint' },
  initFrom: { flag: 'init-from', kind: 'string', metavar: 'DIR', help: 'start from the weights of an HF directory, run (its best) or checkpoint; without --model, its architecture too' },
  data: { flag: 'data', kind: 'string', metavar: 'SHARDS', help: 'train shards (from llmts prepare): a directory (its *_train_* shards), a shard file or a glob' },
  valData: { flag: 'val-data', kind: 'string', metavar: 'SHARDS', help: 'validation shards (default: the *_val_* shards beside --data)' },
  batchSize: { flag: 'batch-size', kind: 'int', min: 1, help: 'B: sequences per micro-batch' },
  seqLen: { flag: 'seq-len', kind: 'int', min: 1, help: 'T: tokens per sequence' },
  totalBatchSize: { flag: 'total-batch-size', kind: 'int', min: 1, help: 'tokens per optimizer step (gradient accumulation = total / (B·T·nproc))' },
  steps: { flag: 'steps', kind: 'int', min: 1, help: 'optimizer steps' },
  lr: { flag: 'lr', kind: 'number', min: 0, help: 'peak learning rate' },
  warmupSteps: { flag: 'warmup-steps', kind: 'int', min: 0, help: 'linear warmup steps' },
  minLrFrac: { flag: 'min-lr-frac', kind: 'number', min: 0, max: 1,
    help: 'the decay\'s floor as a fraction of the peak (the last step is one step short of it)' },
  lrSchedule: { flag: 'lr-schedule', kind: 'enum', values: lrSchedules,
    help: 'after the warmup: cosine or linear decay to the floor, constant, or wsd (the peak, then a 1 − √t cooldown)' },
  cooldownFrac: { flag: 'cooldown-frac', kind: 'number', min: 0, max: 1, help: 'wsd: the fraction of the steps its cooldown takes' },
  weightDecay: { flag: 'weight-decay', kind: 'number', min: 0, help: 'AdamW decoupled weight decay (matrices and embeddings)' },
  beta1: { flag: 'beta1', kind: 'number', min: 0, max: 0.999999, help: 'AdamW beta1' },
  beta2: { flag: 'beta2', kind: 'number', min: 0, max: 0.999999999, help: 'AdamW beta2' },
  eps: { flag: 'eps', kind: 'number', min: 0, help: 'AdamW epsilon' },
  gradClip: { flag: 'grad-clip', kind: 'number', min: 0, help: 'global gradient-norm clip (0 disables)' },
  seed: { flag: 'seed', kind: 'int', min: 0, max: MAX_SEED, help: 'seed of the weight initialization, the periodic samples and the --shuffle on data order' },
  device: { flag: 'device', kind: 'enum', values: ['cpu', 'cuda', 'auto'], help: 'backend (auto = cuda when an NVIDIA GPU is usable, else cpu)' },
  precision: { flag: 'precision', kind: 'enum', values: precisions,
    help: 'GPU compute: bf16 (auto: bf16 activations and matmuls, fp32 weights), tf32 (fp32 tensors, TF32 matmuls) ' +
      'or fp32; the CPU computes in fp32' },
  threads: { flag: 'threads', kind: 'int', min: 0, help: 'CPU threads (0 = every core, or $LLMTS_THREADS)' },
  nproc: { flag: 'nproc', kind: 'int', min: 1, max: MAX_NPROC, help: 'data-parallel processes: one per GPU (NCCL), or CPU processes (gradients summed)' },
  out: { flag: 'out', kind: 'string', metavar: 'RUN_DIR',
    help: 'run directory (log.jsonl, config.json, checkpoints/, best/; default runs/MODEL-DATE-TIME)' },
  valEvery: { flag: 'val-every', kind: 'int', min: 0, help: 'validation before step 1, every N steps and at the end (0 disables)' },
  valSteps: { flag: 'val-steps', kind: 'int', min: 1, help: 'micro-batches per validation (the same ones whatever --nproc: split over the ranks)' },
  checkpointEvery: { flag: 'checkpoint-every', kind: 'int', min: 0, help: 'checkpoint every N steps (0 = only at the end)' },
  keepCheckpoints: { flag: 'keep-checkpoints', kind: 'int', min: 0, help: 'keep the last N checkpoints (0 keeps all)' },
  keepEvery: { flag: 'keep-every', kind: 'int', min: 0,
    help: 'never delete the step checkpoints at multiples of N (a multiple of --checkpoint-every); --keep-checkpoints counts the others (0: off)' },
  sampleEvery: { flag: 'sample-every', kind: 'int', min: 0, help: 'print a sample every N steps (0 disables)' },
  sampleTokens: { flag: 'sample-tokens', kind: 'int', min: 1, help: 'tokens per periodic sample' },
  onNan: { flag: 'on-nan', kind: 'enum', values: ['stop', 'skip'], help: 'a NaN/infinite loss or grad norm: stop (exit 3) or skip the update' },
  hellaswagEvery: { flag: 'hellaswag-every', kind: 'int', min: 0, help: 'HellaSwag accuracy (0-shot) before step 1, every N steps and at the end (0 disables)' },
  hellaswagData: { flag: 'hellaswag-data', kind: 'string', metavar: 'FILE',
    help: 'HellaSwag validation JSONL (default: downloaded once into the cache)' },
  hellaswagLimit: { flag: 'hellaswag-limit', kind: 'int', min: 0, help: 'score the first N HellaSwag examples (0 = all 10,042)' },
  hellaswagScoring: { flag: 'hellaswag-scoring', kind: 'enum', values: ['harness', 'llmc'],
    help: 'HellaSwag scoring during training (see llmts eval hellaswag)' },
  skipSpikes: { flag: 'skip-spikes', kind: 'number', min: 0, help: 'skip updates whose loss or grad-norm z-score exceeds N (0: never; scored from step 33, against the last 128 steps)' },
  shuffle: { flag: 'shuffle', kind: 'enum', values: ['off', 'on'],
    help: 'on: permute the train shards every epoch and the batches of each shard (seeded by --seed)' },
  recompute: { flag: 'recompute', kind: 'enum', values: ['off', 'on'],
    help: 'on: recompute norm outputs and the MLP activation in backward (less memory, same results)' },
}

const byFlag = new Map(Object.entries(trainFields).map(([k, f]) => [f.flag, k as keyof TrainConfig]))

/** Reads a --config JSON object (keys as flags, e.g. "batch-size", or as TrainConfig, e.g. "batchSize"). */
export function trainConfigFromJson(obj: unknown, where: string): Partial<TrainConfig> {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new InputError(`train: ${where} must be a JSON object`)
  const run = (obj as Record<string, unknown>)['train']
  if (typeof run === 'object' && run !== null) {
    throw new InputError(`train: ${where} looks like a run's config.json (its settings are under "train"): continue that run ` +
      'with --resume --out RUN, or copy its "train" settings into a file of their own')
  }
  const out: Record<string, unknown> = {}, seen = new Map<string, string>()
  for (const [rawKey, value] of Object.entries(obj as Record<string, unknown>)) {
    // a TrainConfig name (batchSize), a flag name (batch-size), or snake_case (batch_size, as --json prints)
    const key = (rawKey in trainFields ? rawKey : byFlag.get(rawKey) ?? byFlag.get(rawKey.replace(/_/g, '-'))) as keyof TrainConfig | undefined
    if (key === undefined) {
      throw new InputError(`train: ${where} has unknown key "${rawKey}" (expected one of ${[...byFlag.keys()].join(', ')})`)
    }
    if (Object.hasOwn(out, key)) throw new InputError(`train: ${where} gives ${key} twice ("${rawKey}" and "${seen.get(key)}"); keep one`)
    seen.set(key, rawKey)
    out[key] = checkValue(trainFields[key], value, `${where}: "${rawKey}"`)
  }
  return out as Partial<TrainConfig>
}

function checkValue(f: TrainField, v: unknown, where: string): unknown {
  const bad = (what: string): never => { throw new InputError(`train: ${where} must be ${what}, got ${shown(v)}`) }
  switch (f.kind) {
    case 'string': if (typeof v !== 'string') bad('a string'); return v
    case 'enum': if (typeof v !== 'string' || !f.values.includes(v)) bad(`one of ${f.values.join(', ')}`); return v
    case 'int':
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < f.min) bad(f.min >= 1 ? 'a positive integer' : 'a non-negative integer')
      if (f.max !== undefined && (v as number) > f.max) bad(`an integer <= ${f.max}`)
      return v
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v) || v < f.min || (f.max !== undefined && v > f.max)) {
        bad(`a number in [${f.min}, ${f.max ?? '∞'}]`)
      }
      return v
  }
}

/** Accumulation beyond this is a typo, not a plan: the paper's 524,288 tokens at B=1, T=64 is 8,192 micro-batches. */
const MAX_GRAD_ACCUM = 65_536

/** Micro-batches per optimizer step; InputError when total batch is not a multiple of B·T·world or needs
 *  more than MAX_GRAD_ACCUM micro-batches. */
export function gradAccumSteps(c: TrainConfig, world = c.nproc): number {
  const perStep = c.batchSize * c.seqLen * world
  if (c.totalBatchSize % perStep !== 0) {
    const suggest = Math.max(1, Math.round(c.totalBatchSize / perStep)) * perStep
    throw new InputError(`train: --total-batch-size ${c.totalBatchSize} is not a multiple of --batch-size × --seq-len × --nproc = ` +
      `${c.batchSize}·${c.seqLen}·${world} = ${perStep} (gradient accumulation must be whole; e.g. ${suggest})`)
  }
  const accum = c.totalBatchSize / perStep
  if (accum > MAX_GRAD_ACCUM) {
    throw new InputError(`train: --total-batch-size ${c.totalBatchSize} needs ${accum.toLocaleString('en-US')} micro-batches of ` +
      `${perStep} tokens per step, more than ${MAX_GRAD_ACCUM.toLocaleString('en-US')} (raise --batch-size or lower --total-batch-size)`)
  }
  return accum
}

/** Checks settings against each other and against the model; call before any allocation. */
export function validateTrainConfig(c: TrainConfig, model: ModelConfig, world = c.nproc): void {
  for (const [key, f] of Object.entries(trainFields)) checkValue(f, c[key as keyof TrainConfig], `--${f.flag}`)
  if (c.data === '') throw new InputError('train: --data is required (train shards from llmts prepare: a directory, a shard file or a glob)')
  if (c.seqLen > model.contextLength) {   // first: the total batch's hint below would suggest a multiple of this T
    throw new InputError(`train: --seq-len ${c.seqLen} exceeds the model's context length ${model.contextLength}`)
  }
  gradAccumSteps(c, world)
  if (!(c.lr > 0)) throw new InputError(`train: --lr must be positive, got ${c.lr}`)
  if (!(c.eps > 0)) throw new InputError(`train: --eps must be positive, got ${c.eps}`)
  if (c.hellaswagEvery > 0 && c.batchSize < 4) {
    throw new InputError(`train: --hellaswag-every needs --batch-size >= 4 (an example's four endings are one batch), got ${c.batchSize}`)
  }
  checkKeepEvery(c)
  if (c.warmupSteps > c.steps) {
    throw new InputError(`train: --warmup-steps ${c.warmupSteps} exceeds --steps ${c.steps} ` +
      `(the peak learning rate would never be reached; e.g. --warmup-steps ${Math.ceil(c.steps / 10)})`)
  }
}

/** --keep-every keeps the checkpoints of its multiples: one that is not a multiple of --checkpoint-every keeps only the
 *  steps that are multiples of both, rarer than it says (llm.c's major checkpoints are always checkpoint steps). */
function checkKeepEvery(c: TrainConfig): void {
  const k = c.keepEvery, n = c.checkpointEvery
  if (k <= 0 || n <= 0 || k % n === 0) return
  const gcd = (a: number, b: number): number => b === 0 ? a : gcd(b, a % b)
  const suggest = Math.max(1, Math.round(k / n)) * n
  throw new InputError(`train: --keep-every ${k} is not a multiple of --checkpoint-every ${n} (checkpoints are written every ${n} ` +
    `steps, so only those at multiples of ${k / gcd(k, n) * n} would be kept; e.g. --keep-every ${suggest})`)
}
