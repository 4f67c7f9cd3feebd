// Wall-clock timing shared by the CPU benchmarks.

/** The best (lowest) milliseconds of `reps` runs of `fn`: the run least disturbed by a busy machine. */
export function bestMs(reps: number, fn: () => void): number {
  let ms = Infinity
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now()
    fn()
    ms = Math.min(ms, performance.now() - t0)
  }
  return ms
}
