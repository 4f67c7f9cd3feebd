// Rate and ETA over a sliding window (so a stall or a speed-up shows within seconds, not averaged over hours),
// and the human formats progress lines print: bytes, counts, durations.

export class RateMeter {
  private samples: { t: number; v: number }[] = []

  constructor(private readonly windowMs = 20_000, private readonly now: () => number = () => performance.now()) {}

  /** Records the running total `value` (monotone) now. */
  add(value: number): void {
    const t = this.now()
    this.samples.push({ t, v: value })
    while (this.samples.length > 2 && t - this.samples[1]!.t > this.windowMs) this.samples.shift()
  }

  /** Whether two samples 0.2 s apart exist (until then rate() is 0 for want of data, not a stall). */
  get known(): boolean {
    const a = this.samples[0], b = this.samples[this.samples.length - 1]
    return a !== undefined && b !== undefined && b.t - a.t >= 200
  }

  /** Units per second over the window; 0 until two samples 0.2 s apart exist. */
  rate(): number {
    const a = this.samples[0]
    const b = this.samples[this.samples.length - 1]
    if (a === undefined || b === undefined || b.t - a.t < 200) return 0
    return (b.v - a.v) / ((b.t - a.t) / 1000)
  }

  /** Seconds until `remaining` more units at the current rate; undefined while the rate is unknown. */
  eta(remaining: number): number | undefined {
    const r = this.rate()
    return r > 0 ? Math.max(0, remaining / r) : undefined
  }
}

/** When a plain progress line (stderr off a terminal) is due: at the first and last units of work and every ~10 s
 *  between, as train's and prepare's (a line per 10% would be 18 minutes apart in a 3-hour HellaSwag run). */
export class PlainLines {
  private last = -Infinity

  constructor(private readonly everyMs = 10_000, private readonly now: () => number = () => performance.now()) {}

  due(done: number, total: number): boolean {
    const t = this.now()
    if (done !== 1 && done !== total && t - this.last < this.everyMs) return false
    this.last = t
    return true
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB']
  let i = 0
  let x = n
  while (x >= 1000 && i < units.length - 1) { x /= 1000; i++ }
  return i === 0 ? `${Math.round(x)} B` : `${x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2)} ${units[i]}`
}

export function formatCount(x: number): string {
  return x >= 1e9 ? `${(x / 1e9).toFixed(2)}G` : x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : String(Math.round(x))
}

export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '?'
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`
}

/** The noun for a count: plural(1, 'batch', 'batches') is 'batch', plural(2, 'step') is 'steps'. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return n === 1 ? one : many
}

