// Medians of repeated benchmark runs: what bench/cuda --repeat reports for each side of a comparison. The median,
// not the mean or the best: one run slowed by a neighbour or a clock dip moves it least. A failed run (one with an
// error) is listed by its round and left out, so one crash among N keeps the other N-1.

/** The middle value of `xs` (the mean of the two middle ones for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** One run as bench/cuda records it (failed: error set, the numbers NaN). */
export interface Measurement { tokens_per_s: number; peak_bytes: number; error?: string }

export interface Summary {
  runs: number                                  // runs made, failed ones included
  ok: number                                    // runs without an error: what the median is of
  median: number; min: number; max: number      // tokens/s of the ok runs (NaN when there are none)
  peakBytes: number                             // the largest peak memory of the ok runs
  failures: { round: number; error: string }[]  // round: 1-based, in run order
}

/** The median, range and largest peak of `runs` (in round order) without their failed ones. */
export function summarize(runs: readonly Measurement[]): Summary {
  const ok = runs.filter(r => r.error === undefined), tps = ok.map(r => r.tokens_per_s)
  const failures = runs.flatMap((r, i) => r.error === undefined ? [] : [{ round: i + 1, error: r.error }])
  return { runs: runs.length, ok: ok.length, median: median(tps), min: ok.length > 0 ? Math.min(...tps) : NaN,
    max: ok.length > 0 ? Math.max(...tps) : NaN, peakBytes: ok.length > 0 ? Math.max(...ok.map(r => r.peak_bytes)) : NaN, failures }
}
