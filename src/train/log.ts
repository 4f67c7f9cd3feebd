// RUN_DIR/log.jsonl: one JSON object per line — {"step","loss","lr","grad_norm","tokens","tokens_per_s","ms"} (and
// "mfu" where the device's peak is known) per optimizer step (step counted from 1), {"step","val_loss"} per
// validation and {"step","hellaswag_acc_norm","hellaswag_acc","hellaswag_count","hellaswag_scoring","hellaswag_shots"}
// per HellaSwag evaluation. On resume from a checkpoint at step k the lines after k are dropped (rewritten
// atomically), so the log never holds a step twice.

import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs'
import { spaceError, writeFileAtomic } from '../util/atomic.js'
import { InputError, shown } from '../util/errors.js'

// tokens: trained through this step, over the whole run (a resume that changes the batch size keeps counting right)
// mfu: model FLOPs utilization (0..1) over the devices' spec peak, where the backend knows it (src/model/flops.ts)
export interface StepRecord {
  step: number; loss: number; lr: number; grad_norm: number; tokens: number; tokens_per_s: number; ms: number; mfu?: number
}
export type LogRecord = { step: number } & Record<string, number | string>

/** A numeric field of a log line, or undefined when the line has none (or a string there). */
export function metric(r: LogRecord, key: string): number | undefined {
  const v = r[key]
  return typeof v === 'number' ? v : undefined
}

/** The lines that have numeric `key`, as (step, value) pairs. */
export function series(log: readonly LogRecord[], key: string): { step: number; value: number }[] {
  const out: { step: number; value: number }[] = []
  for (const r of log) { const v = metric(r, key); if (v !== undefined) out.push({ step: r.step, value: v }) }
  return out
}

/** The lines of the branch that survived each rewind, in order: a line for an earlier step than the last kept one, or
 *  a step line for a step already stepped, starts a new branch from that step, and the earlier branch's lines from
 *  that step on are dropped (as TensorBoard purges the steps a restarted run redoes). RunLog drops the resumed-over
 *  lines itself, so only logs joined by hand or written by other trainers step back. */
export function survivingLines(log: readonly LogRecord[]): LogRecord[] {
  const out: LogRecord[] = []
  let stepped = -1   // the step of the last step line kept
  for (const r of log) {
    if (r.step < (out.at(-1)?.step ?? -1) || ('loss' in r && r.step <= stepped)) {
      while (out.length > 0 && out.at(-1)!.step >= r.step) out.pop()
      stepped = -1
      for (let i = out.length - 1; i >= 0 && stepped < 0; i--) if ('loss' in out[i]!) stepped = out[i]!.step
    }
    out.push(r)
    if ('loss' in r) stepped = r.step
  }
  return out
}

/** Fields that depend on the machine's speed; everything else in the log is deterministic. */
export const timingFields: readonly string[] = ['tokens_per_s', 'ms', 'mfu']

/** Parses a log.jsonl; a torn last line (a crash mid-write) is ignored, any other bad line (not JSON, not an object,
 *  no non-negative integer "step") is an InputError naming the file and line. */
export function readLog(path: string): LogRecord[] {
  return readLogWithTorn(path).records
}

/** readLog's records, and the torn last line it skipped (trimmed; undefined when there is none), for a reader that
 *  must tell a log still being written from a file that is no log at all. */
export function readLogWithTorn(path: string): { records: LogRecord[]; torn: string | undefined } {
  let text: string
  try { text = readFileSync(path, 'utf8') } catch (e) {   // EISDIR's message names no path
    const code = (e as NodeJS.ErrnoException).code
    if (code !== 'EISDIR') throw e
    throw new InputError(`log: ${path} is a directory (expected the run's log file)`)
  }
  const lines = text.split('\n')
  const out: LogRecord[] = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === '') continue
    let rec: unknown
    try { rec = JSON.parse(line) } catch {
      if (i === lines.length - 1) return { records: out, torn: line }
      throw new InputError(`log: ${path}:${i + 1} is not valid JSON`)
    }
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) throw new InputError(`log: ${path}:${i + 1} is not a JSON object`)
    const step = (rec as Record<string, unknown>)['step']
    if (typeof step !== 'number' || !Number.isInteger(step) || step < 0) {
      throw new InputError(`log: ${path}:${i + 1} has "step": ${shown(step)}, expected a non-negative integer`)
    }
    out.push(rec as LogRecord)
  }
  return { records: out, torn: undefined }
}

export class RunLog {
  private fd: number

  /** Opens `path` for appending: fresh (truncated) when keepThrough is null, else keeping steps <= keepThrough of
   *  `read` (its records as a caller read them already: --resume's, so a 100,000-step log is parsed once) or of the file. */
  constructor(readonly path: string, opts: { keepThrough: number | null; read?: readonly LogRecord[] }) {
    const kept = opts.keepThrough === null ? []
      : (opts.read ?? (existsSync(path) ? readLog(path) : [])).filter(r => r.step <= opts.keepThrough!)
    writeFileAtomic(path, kept.map(r => JSON.stringify(r) + '\n').join(''))
    this.fd = openSync(path, 'a')
  }

  append(rec: LogRecord): void {
    const buf = Buffer.from(JSON.stringify(rec) + '\n', 'utf8')
    try {
      for (let off = 0; off < buf.byteLength;) off += writeSync(this.fd, buf, off)   // a short write is continued
    } catch (e) { throw spaceError(e, this.path) }
  }

  /** Flushes the appended lines to the disk (before a checkpoint, so no logged step can be lost behind it). */
  sync(): void {
    try { fsyncSync(this.fd) } catch (e) { throw spaceError(e, this.path) }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd)
    this.fd = -1
  }
}
