// HellaSwag prompts and token rows for the two scorings. harness (lm-evaluation-harness): preprocessed context and
// ending tokenized together and split at the context's token length, K-shot prompts drawn exactly as the harness
// draws them (a port of Python's random). llmc (llm.c / build-nanogpt): ctx and " " + ending tokenized separately,
// zero-shot. Python string semantics (strip, capitalize, `.`) are kept, so the tokens are the reference's.

import { PyRandom } from '../util/pyrandom.js'
import { InputError } from '../util/errors.js'
import type { HellaswagExample } from './hellaswag-data.js'

export type HellaswagScoring = 'harness' | 'llmc'
export const hellaswagScorings: readonly HellaswagScoring[] = ['harness', 'llmc']

/** The harness's few-shot seed: simple_evaluate's fewshot_random_seed default, i.e. random.Random(1234). */
export const DEFAULT_FEWSHOT_SEED = 1234

/** One ending to score: ctx tokens then cont tokens; only cont tokens are scored. */
export interface ScoreRow {
  ctx: number[]
  cont: number[]
  /** harness: acc_norm divides by the ending's length in code points; absent (llmc): by its scored tokens. */
  normChars?: number
}

interface RowOptions {
  scoring: HellaswagScoring
  encode: (text: string) => number[]
  /** The solved training examples shown before the query (drawHarnessShots picks them); none for llmc. */
  fewshot?: readonly HellaswagExample[]
}

/** Python's str.isspace characters, for a strip() that matches Python's. */
const PY_SPACE = '\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a' +
  '\u2028\u2029\u202f\u205f\u3000'

export function pyStrip(s: string): string {
  let a = 0, b = s.length
  while (a < b && PY_SPACE.includes(s[a]!)) a++
  while (b > a && PY_SPACE.includes(s[b - 1]!)) b--
  return s.slice(a, b)
}

function pyRstripLength(s: string): number {
  let b = s.length
  while (b > 0 && PY_SPACE.includes(s[b - 1]!)) b--
  return b
}

/** Title case of one character where it differs from upper case: Latin digraphs (DŽ/Dž/dž -> Dž, ...). */
const TITLE: Record<string, string> = {
  '\u01c4': '\u01c5', '\u01c5': '\u01c5', '\u01c6': '\u01c5', '\u01c7': '\u01c8', '\u01c8': '\u01c8', '\u01c9': '\u01c8',
  '\u01ca': '\u01cb', '\u01cb': '\u01cb', '\u01cc': '\u01cb', '\u01f1': '\u01f2', '\u01f2': '\u01f2', '\u01f3': '\u01f2',
}

/** Python's str.capitalize: the first code point title-cased ("ß" -> "Ss"), the rest lower-cased. */
export function capitalize(s: string): string {
  const first = s.codePointAt(0)
  if (first === undefined) return s
  const n = first > 0xffff ? 2 : 1
  const head = s.slice(0, n)
  const upper = TITLE[head] ?? head.toUpperCase()
  const cps = [...upper]
  const title = cps.length > 1 ? cps[0]! + cps.slice(1).join('').toLowerCase() : upper
  return title + s.slice(n).toLowerCase()
}

/** The harness's preprocess: strip, " [title]" -> ". ", drop [...] groups (within a line), "  " -> " ". */
export function preprocess(text: string): string {
  let t = pyStrip(text)
  t = t.replaceAll(' [title]', '. ')
  t = t.replace(/\[[^\n]*?\]/g, '')   // Python's re `.`: anything but \n (JS's `.` also refuses \r, U+2028/9)
  return t.replaceAll('  ', ' ')
}

/** The harness's query: preprocess(activity_label + ": " + ctx_a + " " + capitalize(ctx_b)). */
function harnessQuery(ex: HellaswagExample): string {
  return preprocess(`${ex.activityLabel}: ${ex.ctxA} ${capitalize(ex.ctxB)}`)
}

function harnessChoices(ex: HellaswagExample): string[] {
  return ex.endings.map(preprocess)
}

/**
 * The harness's few-shot draws for `queries` in document order (lm_eval/api/samplers.py, ContextSampler):
 * one random.Random(seed) for the whole task, advanced query by query; each query draws
 * rnd.sample(train, K + 1) (the hellaswag task sets no fewshot_split and no test_split, and the sampler draws
 * one extra when the two are equal), drops the query itself if drawn, and keeps the first K. So query i's shots
 * depend on the draws of queries 0..i-1, and the first N queries get the harness's prompts whatever N is.
 * Returns, per query, the indices into `train`.
 */
export function drawHarnessShots(train: readonly HellaswagExample[], queries: readonly HellaswagExample[], shots: number, seed: number): number[][] {
  if (shots === 0) return queries.map(() => [])
  if (shots + 1 > train.length) {
    throw new InputError(`hellaswag: --shots ${shots} needs at least ${shots + 1} training examples (the harness draws K+1), ` +
      `the training data has ${train.length}`)
  }
  const rnd = new PyRandom(seed)
  return queries.map(q => rnd.sampleIndices(train.length, shots + 1).filter(i => !sameExample(train[i]!, q)).slice(0, shots))
}

/** The harness compares documents as dicts; real train and validation documents never compare equal. */
function sameExample(a: HellaswagExample, b: HellaswagExample): boolean {
  return a.ind === b.ind && a.ctx === b.ctx && a.label === b.label && a.activityLabel === b.activityLabel &&
    a.endings.every((e, i) => e === b.endings[i])
}

/** The harness context: the solved shots ("query gold-ending"), "\n\n"-joined, then "\n\n" and the query. */
export function harnessContext(ex: HellaswagExample, fewshot: readonly HellaswagExample[] = []): string {
  const query = harnessQuery(ex)
  if (fewshot.length === 0) return query
  const solved = fewshot.map(t => `${harnessQuery(t)} ${harnessChoices(t)[t.label]!}`)
  return `${solved.join('\n\n')}\n\n${query}`
}

/** The harness's _encode_pair: trailing spaces of the context move to the continuation; split at len(ctx tokens). */
export function encodePair(context: string, continuation: string, encode: (t: string) => number[]): { ctx: number[]; cont: number[] } {
  return encodeContinuations(context, [continuation], encode)[0]!
}

/** encodePair for several continuations of one context; the rows share one ctx array. */
function encodeContinuations(context: string, continuations: string[], encode: (t: string) => number[]): { ctx: number[]; cont: number[] }[] {
  const keep = pyRstripLength(context)
  const ctxText = context.slice(0, keep)
  const ctx = encode(ctxText)
  return continuations.map(c => ({ ctx, cont: encode(ctxText + context.slice(keep) + c).slice(ctx.length) }))
}

/** The four rows (one per ending) of a query; `fewshot` holds its solved examples (harness scoring only).
 *  harness: context "label: ctx_a Ctx_b" preprocessed, continuation " " + preprocessed ending; shots from the
 *  training split, one generator over the queries in order (drawHarnessShots). llmc: tokens of ctx, then of
 *  " " + ending. */
export function buildRows(ex: HellaswagExample, opts: RowOptions): ScoreRow[] {
  const fewshot = opts.fewshot ?? []
  if (opts.scoring === 'llmc') {
    if (fewshot.length !== 0) throw new InputError('hellaswag: llmc scoring is zero-shot as in llm.c (use --scoring harness for --shots > 0)')
    const ctx = opts.encode(ex.ctx)
    return ex.endings.map(e => ({ ctx, cont: opts.encode(` ${e}`) }))
  }
  const choices = harnessChoices(ex)
  const pairs = encodeContinuations(harnessContext(ex, fewshot), choices.map(c => ` ${c}`), opts.encode)
  return pairs.map((pair, i) => ({ ...pair, normChars: [...choices[i]!].length }))
}
