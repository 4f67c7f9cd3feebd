// HellaSwag scoring: the four endings of an example are packed as (B=4, T) rows with targets -1 outside the
// ending, and the per-position losses give each ending's log-likelihood. The rows' shared prefix (the context)
// runs once through the key/value cache and only the four remainders run as a batch: ~ctx + 4·ending rows of work
// instead of a forward's 4·(ctx + ending), with the classifier on the remainders only; several examples go through
// one pass (decodePacked), since at 0-shot sizes an example's ~135 rows are few for a matmul that reads every
// weight (batchExamples; one pass instead of two an example, too). acc picks the highest summed
// log-likelihood; acc_norm divides by the ending's length (harness: characters; llmc: tokens, i.e. the lowest
// mean loss). Rows longer than the context window lose tokens from the left, as in the harness.

import { EOT_TOKEN } from '../config.js'
import type { GPT, KVCache, PackedGroup } from '../model/gpt.js'
import { InputError } from '../util/errors.js'
import type { HellaswagExample } from './hellaswag-data.js'
import { buildRows, DEFAULT_FEWSHOT_SEED, drawHarnessShots, type HellaswagScoring, type ScoreRow } from './hellaswag-prompt.js'

interface PrepareOptions {
  scoring: HellaswagScoring
  shots: number                               // 0 = zero-shot; > 0 needs `train` (harness scoring only)
  train?: HellaswagExample[]                  // few-shot source: the training split
  seed?: number                               // few-shot sampling seed (default 1234)
  /** GPT-2 BPE by default (src/tokenizer.ts). */
  encode?: (text: string) => number[]
}

interface ScoreOptions {
  scoring: HellaswagScoring
  shots: number
  /** Longest row in tokens (default and maximum: the GPT's maxSeqLen, capped by its context length). */
  window?: number
  /** After each example: examples done, total, and how many of them acc and acc_norm got right. */
  onProgress?: (done: number, total: number, correct: { acc: number; accNorm: number }) => void
  /** 'packed' (the default): batchExamples examples a pass, each context once, through key/value rows of their own.
   *  'shared-prefix': the same one example at a time, in two passes (context, then endings): the unbatched path.
   *  'forward': each example as one (4, T) training forward, in the model's own buffers (the trainer: no second set
   *  of buffers). All three give the same scores. */
  method?: 'packed' | 'shared-prefix' | 'forward'
  /** 'packed': examples a pass (default DEFAULT_BATCH_EXAMPLES), fewer where their rows exceed the pass's budget. */
  batchExamples?: number
  /** 'packed': the pass's budget of key/value rows (default PACKED_ROWS), 4·T an example. */
  passRows?: number
  /** Keep per-example scores in the result (tests, debugging). */
  keepExamples?: boolean
  /** An example with a non-finite log-likelihood (diverged or broken weights): 'throw' (the default), or count it
   *  'wrong', for the trainer, which logs a diverged model's HellaSwag as it logs its validation loss. */
  nonFinite?: 'throw' | 'wrong'
}

type HellaswagOptions = PrepareOptions & ScoreOptions

/** An example's four token rows (one per ending) and its gold label. */
export interface PreparedExample { rows: ScoreRow[]; label: number }

interface ExampleScore {
  label: number
  scores: number[]        // per ending: summed log-likelihood of the scored tokens
  normScores: number[]    // per ending: scores / length (harness: characters; llmc: scored tokens)
  pred: number            // argmax scores (first on ties, like numpy/torch); -1 for non-finite scores counted wrong
  predNorm: number        // argmax normScores
}

export interface HellaswagResult {
  scoring: HellaswagScoring
  shots: number
  count: number
  acc: number
  accStderr: number       // sample standard error of the mean, as the harness reports (NaN for count 1)
  accNorm: number
  accNormStderr: number
  examples?: ExampleScore[]
}

/** Scores `examples` with `model`: prepare, then score. Few-shot draws follow the list's order, as the harness's. */
export async function scoreHellaswag(model: GPT, examples: HellaswagExample[], opts: HellaswagOptions): Promise<HellaswagResult> {
  return scorePrepared(model, await prepareHellaswag(examples, opts), opts)
}

/**
 * Tokenizes every example's prompt and endings (the endings of one example share their context array).
 * `examples` must be the evaluation file's first N documents in file order for the harness's few-shot prompts.
 */
export async function prepareHellaswag(examples: HellaswagExample[], opts: PrepareOptions): Promise<PreparedExample[]> {
  const encode = opts.encode ?? (await import('../tokenizer.js')).encode
  if (opts.shots > 0 && opts.scoring === 'llmc') throw new InputError(
    'hellaswag: llmc scoring is zero-shot as in llm.c (use --scoring harness for --shots > 0)')
  if (opts.shots > 0 && (opts.train === undefined || opts.train.length === 0)) throw new InputError(
    'hellaswag: few-shot prompts need training examples (--train-data)')
  const train = opts.train ?? []
  const draws = drawHarnessShots(train, examples, opts.shots, opts.seed ?? DEFAULT_FEWSHOT_SEED)
  return examples.map((ex, i) => ({ rows: buildRows(ex, { scoring: opts.scoring, encode, fewshot: draws[i]!.map(j => train[j]!) }),
    label: ex.label }))
}

/** The longest model input among prepared rows (sequence length minus one), to size a model for them. */
export function longestInput(prepared: PreparedExample[]): number {
  let max = 1
  for (const p of prepared) for (const r of p.rows) max = Math.max(max, r.ctx.length + r.cont.length - 1)
  return max
}

/** Examples scored in one pass by default (method 'packed'). gpt2-124m at 0-shot sizes, one CPU thread: 1.17x the
 *  unbatched path at 1 a pass, 1.3x at 4 to 8 (compute-bound there; bench/RESULTS.md); a GPU gains more per pass. */
export const DEFAULT_BATCH_EXAMPLES = 8
/** A packed pass's budget of key/value rows, 4·T an example (every ending's whole row); its rows (the context once,
 *  the endings four times) are fewer. gpt2-124m's pool at 2048: 226 MiB of keys and values, 107 MiB of scratch.
 *  An example longer than the budget still runs, alone, as the unbatched path's cache of 4·T rows would. */
export const PACKED_ROWS = 2048

/** Runs the model over prepared examples (opts.method says how). */
export function scorePrepared(model: GPT, prepared: PreparedExample[], opts: ScoreOptions): HellaswagResult {
  const method = opts.method ?? 'packed', cached = method !== 'forward'
  // the cache has buffers of its own; a forward uses the model's, sized for (maxBatch, maxSeqLen)
  const maxLen = cached ? model.config.contextLength : Math.min(model.config.contextLength, model.opts.maxSeqLen)
  const window = opts.window ?? Math.min(model.config.contextLength, model.opts.maxSeqLen)
  if (window > maxLen) throw new InputError(`hellaswag: window ${window} exceeds the model's longest sequence ${maxLen}`)
  if (!cached && model.opts.maxBatch < 4) throw new Error(
    `hellaswag: the model was built for batches of ${model.opts.maxBatch}; scoring needs 4 (one row per ending)`)
  if (prepared.length === 0) throw new InputError('hellaswag: no examples to score')
  const batch = method === 'packed' ? opts.batchExamples ?? DEFAULT_BATCH_EXAMPLES : 1
  if (!(Number.isSafeInteger(batch) && batch >= 1)) throw new InputError(`hellaswag: batch of ${batch} examples, expected a positive integer`)
  if (method === 'forward') return scoreAll(prepared, opts, one(rows => forwardLosses(model, rows, window)))
  const longest = 4 * Math.min(window, longestInput(prepared))   // rows of the longest example
  if (method === 'shared-prefix') {
    const cache = model.createCache(4, longest / 4)
    try { return scoreAll(prepared, opts, one(rows => cachedLosses(model, cache, rows, window))) } finally { model.releaseCache(cache) }
  }
  const total = prepared.reduce((n, p) => n + 4 * Math.min(window, longestInput([p])), 0)
  const rows = Math.max(longest, Math.min(total, opts.passRows ?? PACKED_ROWS)), pool = model.createPool(rows, rows)
  try {
    return scoreAll(prepared, opts, group => packedLosses(model, pool, group, window), { batch, rows, window })
  } finally {
    model.releaseCache(pool)
  }
}

/** A one-example-at-a-time path as a GroupLosses. */
const one = (f: (rows: ScoreRow[]) => RowLosses): GroupLosses => group => group.map(f)

interface RowLosses { losses: Float32Array; packed: ReturnType<typeof packRows> }
/** Per example of a group (each its rows), the losses of its packed rows. */
type GroupLosses = (group: ScoreRow[][]) => RowLosses[]
/** How examples are grouped for one pass: at most `batch`, within `rows` key/value rows (rows cut to `window`). */
interface Grouping { batch: number; rows: number; window: number }

function scoreAll(prepared: PreparedExample[], opts: ScoreOptions, groupLosses: GroupLosses, grouping?: Grouping): HellaswagResult {
  const scored: ExampleScore[] = []
  let acc = 0, accNorm = 0
  for (let i0 = 0; i0 < prepared.length;) {
    const n = grouping === undefined ? 1 : groupSize(prepared, i0, grouping)
    const losses = groupLosses(prepared.slice(i0, i0 + n).map(p => p.rows))
    for (let i = i0; i < i0 + n; i++) {
      const { rows, label } = prepared[i]!
      const s = scoreRows(rows, label, losses[i - i0]!)
      // every comparison with NaN is false: an argmax over NaN scores would pick an ending, and count it, at random
      if (!s.scores.every(Number.isFinite)) {
        if (opts.nonFinite !== 'wrong') {
          throw new InputError(`hellaswag: example ${i}: the model's log-likelihoods of its endings are ${s.scores.join(', ')} ` +
            `(its weights are diverged or broken; expected finite numbers)`)
        }
        s.pred = s.predNorm = -1
      }
      acc += s.pred === label ? 1 : 0
      accNorm += s.predNorm === label ? 1 : 0
      if (opts.keepExamples) scored.push(s)
      opts.onProgress?.(i + 1, prepared.length, { acc, accNorm })
    }
    i0 += n
  }
  const n = prepared.length
  return {
    scoring: opts.scoring, shots: opts.shots, count: n,
    acc: acc / n, accStderr: meanStderr(acc / n, n),
    accNorm: accNorm / n, accNormStderr: meanStderr(accNorm / n, n),
    ...(opts.keepExamples ? { examples: scored } : {}),
  }
}

/** How many examples from i0 one packed pass takes: up to g.batch while their 4·T key/value rows fit (at least one). */
function groupSize(prepared: PreparedExample[], i0: number, g: Grouping): number {
  let n = 0, rows = 0
  while (i0 + n < prepared.length && n < g.batch) {
    const more = 4 * Math.min(g.window, longestInput([prepared[i0 + n]!]))
    if (n > 0 && rows + more > g.rows) break
    rows += more
    n++
  }
  return n
}

/** The harness's mean_stderr of 0/1 outcomes: sample stddev (n-1) / sqrt(n) = sqrt(p(1-p)/(n-1)). */
export function meanStderr(p: number, n: number): number {
  return n > 1 ? Math.sqrt(p * (1 - p) / (n - 1)) : NaN
}

/** Packs rows into (B, T) inputs/targets: row i predicts its cont tokens; everything else is -1. */
export function packRows(rows: ScoreRow[], window: number): { inputs: Int32Array; targets: Int32Array; T: number; scored: number[] } {
  // per row: the full sequence ctx ++ cont; inputs are seq[:-1], targets seq[1:], keeping the last `window`
  const seqs = rows.map(r => r.ctx.concat(r.cont))
  const lens = seqs.map(s => Math.min(s.length - 1, window))
  const T = Math.max(...lens)
  const B = rows.length
  const inputs = new Int32Array(B * T).fill(EOT_TOKEN)
  const targets = new Int32Array(B * T).fill(-1)
  const scored: number[] = []
  for (let b = 0; b < B; b++) {
    const seq = seqs[b]!, L = lens[b]!
    if (rows[b]!.cont.length === 0) throw new Error('hellaswag: an ending produced no tokens to score')
    const start = seq.length - 1 - L                  // left truncation
    for (let t = 0; t < L; t++) inputs[b * T + t] = seq[start + t]!
    const first = Math.max(0, L - rows[b]!.cont.length)
    for (let t = first; t < L; t++) targets[b * T + t] = seq[start + t + 1]!
    scored.push(L - first)
  }
  return { inputs, targets, T, scored }
}

function argmax(v: number[]): number {
  let best = 0
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i
  return best
}

/** The rows' per-position losses (B, T) from one forward (0 where targets are -1). */
function forwardLosses(model: GPT, rows: ScoreRow[], window: number): RowLosses {
  const packed = packRows(rows, window)
  model.forward(packed.inputs, packed.targets, rows.length, packed.T)
  return { losses: model.lastLosses(), packed }
}

/** The packed rows' longest common prefix without scored targets (at least one position is left: the last one
 *  is scored in every row), and the rest of every row, (B, T - P). */
function splitPrefix(packed: ReturnType<typeof packRows>, B: number): PackedGroup {
  const { inputs, targets, T } = packed
  const shared = (P: number): boolean => {
    for (let b = 0; b < B; b++) if (inputs[b * T + P] !== inputs[P] || targets[b * T + P]! >= 0) return false
    return true
  }
  let P = 0
  while (P < T - 1 && shared(P)) P++
  const rest = (x: Int32Array): Int32Array => Int32Array.from({ length: B * (T - P) }, (_, i) =>
    x[Math.floor(i / (T - P)) * T + P + i % (T - P)]!)
  return { prefix: inputs.subarray(0, P), tokens: rest(inputs), targets: rest(targets), B, T: T - P }
}

/** The losses of the rows' rest (B, T - P) placed back in (B, T), 0 over the prefix. */
function withPrefix(tail: Float32Array, g: PackedGroup, T: number): Float32Array {
  const losses = new Float32Array(g.B * T), P = T - g.T
  for (let b = 0; b < g.B; b++) losses.set(tail.subarray(b * g.T, (b + 1) * g.T), b * T + P)
  return losses
}

/** forwardLosses' losses through the cache: the shared prefix once (sequence 0, shared), then the rest of every
 *  row as one (B, T - P) batch; 0 where targets are -1. The unbatched path: two passes an example. */
function cachedLosses(model: GPT, cache: KVCache, rows: ScoreRow[], window: number): RowLosses {
  const packed = packRows(rows, window), g = splitPrefix(packed, rows.length)
  cache.length = 0
  if (g.prefix.length > 0) model.decodeShared(cache, g.prefix, g.prefix.length)
  return { losses: withPrefix(model.decodeLosses(cache, g.tokens, g.targets, g.B, g.T), g, packed.T), packed }
}

/** cachedLosses for a group of examples in one pass (decodePacked): every context and ending of the group goes
 *  through each matmul together, so the weights are read once a group instead of twice an example. */
function packedLosses(model: GPT, pool: KVCache, group: ScoreRow[][], window: number): RowLosses[] {
  const packed = group.map(rows => packRows(rows, window)), groups = packed.map((p, i) => splitPrefix(p, group[i]!.length))
  const tails = model.decodePacked(pool, groups)
  return packed.map((p, i) => ({ losses: withPrefix(tails[i]!, groups[i]!, p.T), packed: p }))
}

/** Per ending the summed log-likelihood of its scored tokens, from the losses of its packed rows. */
function scoreRows(rows: ScoreRow[], label: number, { losses, packed }: RowLosses): ExampleScore {
  const { targets, T, scored } = packed
  const scores = rows.map((_, b) => {
    let sum = 0
    for (let t = 0; t < T; t++) if (targets[b * T + t]! >= 0) sum += losses[b * T + t]!
    return -sum
  })
  const normScores = scores.map((s, b) => s / (rows[b]!.normChars ?? scored[b]!))
  return { label, scores, normScores, pred: argmax(scores), predNorm: argmax(normScores) }
}
