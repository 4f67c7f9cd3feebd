// Text generation: temperature, top-k and top-p (nucleus) sampling from a seeded RNG, decoded with the model's
// key/value cache so each new token costs one position's forward whatever the length so far. The uncached
// variant (a full forward over the whole sequence per token) exists to test the cache against.

import type { GPT } from '../model/gpt.js'
import type { Rng } from '../util/rng.js'

interface SampleOptions {
  maxTokens: number     // tokens to generate after the prompt
  temperature: number   // 0 = greedy (argmax)
  topK: number          // keep the k most likely tokens; 0 = all
  topP: number          // keep the smallest set whose probability reaches p; 1 = all
  /** Stop when this token is drawn (it is not returned): the end of the document, as Hugging Face's generate()
   *  stops at eos_token_id. Absent: always opts.maxTokens tokens (llm.c's and nanoGPT's samples). */
  stopAt?: number
}

export const sampleDefaults: SampleOptions = { maxTokens: 256, temperature: 0.8, topK: 200, topP: 1 }

/** One token id from logits: (V) real vocabulary. Probabilities are computed in float64. */
export function pickToken(logits: Float32Array, opts: SampleOptions, rng: Rng): number {
  const V = logits.length
  if (opts.temperature === 0 || opts.topK === 1) return argmax(logits)
  const n = opts.topK > 0 && opts.topK < V ? opts.topK : V
  // filtered: the n largest values, descending (a native numeric sort: a comparator sort of V ids cost ~50 ms a token)
  const filtered = n < V || opts.topP < 1
  const values = filtered ? logits.slice().sort().reverse().subarray(0, n) : logits
  let max = -Infinity
  for (let j = 0; j < n; j++) max = Math.max(max, values[j]!)
  const probs = new Float64Array(n)
  let total = 0
  for (let j = 0; j < n; j++) { probs[j] = Math.exp((values[j]! - max) / opts.temperature); total += probs[j]! }
  let keep = n
  if (opts.topP < 1) {  // values are sorted, so the nucleus is a prefix
    let cum = 0
    for (keep = 0; keep < n && cum < opts.topP * total; keep++) cum += probs[keep]!
    total = cum
  }
  const ids = filtered ? largestIds(logits, values[keep - 1]!, keep) : null
  let u = rng.uniform() * total
  for (let j = 0; j < keep; j++) {
    u -= probs[j]!
    if (u < 0) return ids === null ? j : ids[j]!
  }
  return ids === null ? keep - 1 : ids[keep - 1]!
}

/** The ids of the `count` largest logits, the smallest of which is `cut`, by descending logit, ties by id (what a
 *  stable sort of all ids gives): those above the cut, then the cut's own in id order, sorted. */
function largestIds(logits: Float32Array, cut: number, count: number): number[] {
  const ids: number[] = []
  for (let i = 0; i < logits.length; i++) if (logits[i]! > cut) ids.push(i)
  for (let i = 0; i < logits.length && ids.length < count; i++) if (logits[i] === cut) ids.push(i)
  return ids.sort((a, b) => logits[b]! - logits[a]! || a - b)
}

function argmax(x: Float32Array): number {
  let best = 0
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i
  return best
}

/** Generates up to opts.maxTokens tokens after `prompt` (1..context tokens) with the KV cache; fewer when
 *  opts.stopAt is drawn. */
export function generate(model: GPT, prompt: Int32Array, opts: SampleOptions, rng: Rng,
                         onToken?: (token: number) => void): Int32Array {
  const n = Math.min(opts.maxTokens, model.config.contextLength - prompt.length)
  const out = new Int32Array(Math.max(0, n))
  if (n <= 0) return out
  const cache = model.createCache(1, prompt.length + n)
  let logits = model.decode(cache, prompt, 1, prompt.length)
  for (let i = 0; i < n; i++) {
    out[i] = pickToken(logits, opts, rng)
    if (out[i] === opts.stopAt) return out.slice(0, i)
    onToken?.(out[i]!)
    if (i + 1 < n) logits = model.decode(cache, out.subarray(i, i + 1), 1, 1)
  }
  return out
}

/** The same as generate() without a cache: a full forward over prompt + generated tokens for every token. */
export function generateUncached(model: GPT, prompt: Int32Array, opts: SampleOptions, rng: Rng): Int32Array {
  const n = Math.max(0, Math.min(opts.maxTokens, model.config.contextLength - prompt.length))
  const seq = new Int32Array(prompt.length + n)
  seq.set(prompt)
  const V = model.config.vocabSize
  for (let i = 0; i < n; i++) {
    const T = prompt.length + i
    model.forward(seq.subarray(0, T), null, 1, T)
    const logits = model.lastLogits().slice((T - 1) * V, T * V)
    seq[T] = pickToken(logits, opts, rng)
    if (seq[T] === opts.stopAt) return seq.slice(prompt.length, T)
  }
  return seq.slice(prompt.length)
}
