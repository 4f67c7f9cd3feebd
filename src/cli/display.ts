// Download and tokenize progress on stderr, for `llmts prepare fineweb` and `llmts download`: cli-progress bars
// on a terminal, otherwise a plain line per bar every 10 s.

import cliProgress from 'cli-progress'
import type { DownloadProgress } from '../io/hub/download.js'
import { formatBytes, formatCount, formatDuration, plural } from '../util/progress.js'
import type { ShardsProgress } from '../data/fineweb/tokenize.js'
import { liveProgress } from './output.js'

/** Download and tokenize progress on stderr. */
export class Display {
  private readonly tty = liveProgress()
  private bars: cliProgress.MultiBar | null = null
  private dl: cliProgress.SingleBar | null = null
  private tok: cliProgress.SingleBar | null = null
  private lastLine = { download: -Infinity, tokenize: -Infinity }
  private unprinted: { download?: string; tokenize?: string } = {}   // the latest line of each bar, when not yet printed

  private multibar(): cliProgress.MultiBar {
    this.bars ??= new cliProgress.MultiBar(
      { stream: process.stderr, hideCursor: true, clearOnComplete: false, format: '{label} {bar} {percentage}% | {text}' },
      cliProgress.Presets.shades_classic)
    return this.bars
  }

  log(line: string): void {
    if (this.bars !== null) this.bars.log(line + '\n')
    else process.stderr.write(line + '\n')
  }

  download(q: DownloadProgress): void {
    // the rate needs two samples 0.2 s apart: until then (or for a transfer shorter than that) it is unknown, not 0
    const rate = q.rateKnown ? `${formatBytes(q.bytesPerSecond)}/s` : '? B/s'
    const text = `${q.files}/${q.totalFiles} files, ${formatBytes(q.bytes)} of ${formatBytes(q.totalBytes)}, ` +
      `${rate}, ETA ${formatDuration(q.etaSeconds)}`
    this.show('download', q.bytes, q.totalBytes, q.seconds, text)
  }

  tokenize(q: ShardsProgress): void {
    const rate = q.tokensPerSecond > 0 ? formatCount(q.tokensPerSecond) : '?'
    const text = `${q.shards} ${plural(q.shards, 'shard')}, ${formatCount(q.tokens)} tokens, ${rate} tokens/s, ` +
      (q.waitingFor !== undefined ? `waiting for ${q.waitingFor}` : `ETA ${formatDuration(q.etaSeconds)}`)
    this.show('tokenize', q.bytes, q.totalBytes, q.seconds, text)
  }

  private show(label: 'download' | 'tokenize', value: number, total: number, seconds: number, text: string): void {
    if (this.tty) {
      const key = label === 'download' ? 'dl' : 'tok'
      this[key] ??= this.multibar().create(total, 0, { label: label.padEnd(8), text })
      this[key]!.update(Math.min(value, total), { text })
    } else {
      const line = `${label}: ${total > 0 ? (100 * value / total).toFixed(0) : 0}% ${text}\n`
      if (seconds - this.lastLine[label] < 10) { this.unprinted[label] = line; return }
      this.lastLine[label] = seconds
      delete this.unprinted[label]
      process.stderr.write(line)
    }
  }

  /** Ends the bars; off a terminal, prints each bar's last state if its line is not out yet (a log would otherwise
   *  end at "1/7 files" or "25%" for a run that finished). */
  stop(): void {
    this.bars?.stop()
    this.bars = null
    for (const line of Object.values(this.unprinted)) process.stderr.write(line)
    this.unprinted = {}
  }
}
