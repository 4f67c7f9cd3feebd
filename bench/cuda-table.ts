// bench/cuda's report: the markdown table (one row per llm.ts entry and per PyTorch model:B), the llm.ts/PyTorch
// lines under it, per-op profiles, progress lines and the --json object. With --repeat 1 the rows and lines are the
// single runs' (the format of every earlier bench/RESULTS.md entry); with N > 1 they are medians, each row listing
// its N runs' tokens/s, and the ratio is one of medians.

import { presetConfig } from '../src/config.js'
import { trainingFlopsPerToken } from '../src/model/flops.js'
import type { EntryRuns, Result } from './cuda-compare.js'
import { compareTable, kernelTable } from './cuda-profile.js'
import { summarize, type Summary } from './stats.js'

/** What the rows need beside the runs: T, the bf16 peak the MFU is over, and --repeat. */
export interface TableContext { T: number; peakTflops: number; repeat: number }

/** Training FLOPs per token: 6·N + 12·L·C·T (the MFU numerator, as `llmts train` counts it). */
export function flopsPerToken(model: string, T: number): number {
  return trainingFlopsPerToken(presetConfig(model), T)
}

export function tableHead(repeat: number): string[] {
  return repeat === 1 ? ['| model | B | impl | tokens/s | ms/step | MFU | peak GiB |', '|---|---:|---|---:|---:|---:|---:|']
    : ['| model | B | impl | tokens/s (median) | runs | ms/step | MFU | peak GiB (max) |', '|---|---:|---|---:|---|---:|---:|---:|']
}

const name = (e: EntryRuns): string => e.entry.model + e.entry.label
const mfu = (tokensPerS: number, model: string, ctx: TableContext): string =>
  (tokensPerS * flopsPerToken(model, ctx.T) / (ctx.peakTflops * 1e12) * 100).toFixed(1)

function singleRow(label: string, r: Result, model: string, ctx: TableContext): string {
  if (r.error !== undefined) return `| ${label} | ${r.B} | ${r.impl} | failed: ${r.error.slice(0, 80)} | | | |`
  return `| ${label} | ${r.B} | ${r.impl} | ${r.tokens_per_s.toFixed(0)} | ${r.ms_per_step.toFixed(1)} | ${mfu(r.tokens_per_s, model, ctx)}% | ` +
    `${(r.peak_bytes / 2 ** 30).toFixed(2)} |`
}

/** A row of N runs: the median tokens/s (ms/step and MFU at it), every run's tokens/s in round order, the largest peak. */
function medianRow(label: string, B: number, impl: Result['impl'], runs: Result[], model: string, ctx: TableContext): string {
  const s = summarize(runs), each = runs.map(r => r.error === undefined ? r.tokens_per_s.toFixed(0) : 'failed').join(' ')
  if (s.ok === 0) return `| ${label} | ${B} | ${impl} | failed: ${s.failures[0]!.error.slice(0, 80)} | ${each} | | | |`
  return `| ${label} | ${B} | ${impl} | ${s.median.toFixed(0)} | ${each} | ${(B * ctx.T / s.median * 1000).toFixed(1)} | ` +
    `${mfu(s.median, model, ctx)}% | ${(s.peakBytes / 2 ** 30).toFixed(2)} |`
}

/** The entry's llm.ts row, and its PyTorch row when it made the PyTorch runs. */
export function entryRows(e: EntryRuns, ctx: TableContext): string[] {
  const { model, B } = e.entry
  const row = (label: string, impl: Result['impl'], runs: Result[]): string =>
    ctx.repeat === 1 ? singleRow(label, runs[0]!, model, ctx) : medianRow(label, B, impl, runs, model, ctx)
  return [row(name(e), 'llm.ts', e.ours), ...(e.torch !== null && e.torchFirst ? [row(model, 'pytorch', e.torch)] : [])]
}

/** The lines under the table for an entry (without their '- '): llm.ts/PyTorch, and with N > 1 each failed run. */
export function entryNotes(e: EntryRuns, repeat: number): string[] {
  const { B } = e.entry
  if (repeat === 1) {
    const [ours, torch] = [e.ours[0]!, e.torch?.[0]]
    if (torch === undefined || ours.error !== undefined || torch.error !== undefined) return []
    return [`${name(e)} B=${B}: llm.ts/PyTorch = ${(ours.tokens_per_s / torch.tokens_per_s).toFixed(2)}× tokens/s, ` +
      `${(ours.peak_bytes / torch.peak_bytes).toFixed(2)}× peak memory (losses ${ours.loss_last.toFixed(3)} vs ${torch.loss_last.toFixed(3)})`]
  }
  const o = summarize(e.ours), t = e.torch === null ? null : summarize(e.torch)
  const failed = (impl: string, s: Summary): string[] =>
    s.failures.map(f => `${name(e)} B=${B}: ${impl} run ${f.round} of ${s.runs} failed: ${f.error}`)
  const notes = [...failed('llm.ts', o), ...(t !== null && e.torchFirst ? failed('PyTorch', t) : [])]
  if (t === null || o.ok === 0 || t.ok === 0) return notes
  const of = (s: Summary): string => `${s.min.toFixed(0)}–${s.max.toFixed(0)}`
  const loss = (runs: Result[]): string => runs.find(r => r.error === undefined)!.loss_last.toFixed(3)
  return [`${name(e)} B=${B}: llm.ts/PyTorch = ${(o.median / t.median).toFixed(2)}× tokens/s ` +
    `(median of ${o.ok === t.ok ? o.ok : `${o.ok} llm.ts and ${t.ok} PyTorch runs`}; ours ${of(o)}, PyTorch ${of(t)}), ` +
    `${(o.peakBytes / t.peakBytes).toFixed(2)}× peak memory (losses ${loss(e.ours)} vs ${loss(e.torch!)})`, ...notes]
}

/** The GPU time per op of the entry's llm.ts run (--profile, which takes --repeat 1), or null; with a PyTorch profile
 *  of the same model:B, both by category side by side, and (under the entry that made the PyTorch run) its kernels. */
export function entryProfile(e: EntryRuns): string | null {
  const p = e.ours[0]!.profile
  if (p === undefined) return null
  const what = `${name(e)} B=${e.entry.B}`
  const ours = `GPU time per training step by op, ${what} (CUDA events; sums can exceed ms/step because events serialize):\n\n` +
    '| op | calls/step | ms/step |\n|---|---:|---:|\n' + p.map(o => `| ${o.op} | ${o.calls.toFixed(0)} | ${o.ms.toFixed(2)} |`).join('\n')
  const torch = e.torch?.[0]?.kernel_profile
  if (torch === undefined) return ours
  const side = `GPU time per training step by category, ${what}: llm.ts (CUDA events per op) and PyTorch ` +
    `(torch.profiler, ${torch.steps} steps after the timed ones, kernels sorted by name):\n\n${compareTable(p, torch)}`
  return [ours, side, ...(e.torchFirst ? [`PyTorch's longest kernels, ${e.entry.model} B=${e.entry.B}:\n\n${kernelTable(torch)}`] : [])].join('\n\n')
}

/** The table, the lines under it and the profiles (what is printed and appended after the header). */
export function formatTable(entries: EntryRuns[], ctx: TableContext): string {
  const rows = entries.flatMap(e => entryRows(e, ctx)), notes = entries.flatMap(e => entryNotes(e, ctx.repeat))
  const profiles = entries.flatMap(e => entryProfile(e) ?? [])
  return [[...tableHead(ctx.repeat), ...rows].join('\n'), '', ...notes.map(n => `- ${n}`), '', ...profiles].join('\n')
}

const tps = (r: Result | null | undefined): string => (r?.tokens_per_s ?? NaN).toFixed(0)

/** stderr after an entry: its speeds and rows (with N > 1 the medians, and the lines under the table). */
export function entryProgress(e: EntryRuns, ctx: TableContext): string {
  const rows = entryRows(e, ctx), ours = e.ours[0]!
  if (ctx.repeat === 1) {
    return `bench: ${e.entry.run}: llm.ts ${tps(ours)} tokens/s${e.torch === null ? '' : `, PyTorch ${tps(e.torch[0])}`}` +
      `${ours.error === undefined ? '' : ` (error: ${ours.error})`}\n  ${rows.join('\n  ')}`
  }
  const median = (runs: Result[]): string => summarize(runs).median.toFixed(0)
  return `bench: ${e.entry.run}: median llm.ts ${median(e.ours)} tokens/s${e.torch === null ? '' : `, PyTorch ${median(e.torch)}`}` +
    `\n  ${[...rows, ...entryNotes(e, ctx.repeat)].join('\n  ')}`
}

/** stderr after each round of an entry when N > 1. */
export function roundProgress(run: string, round: number, repeat: number, ours: Result, torch: Result | null): string {
  const error = [ours, torch].flatMap(r => r?.error === undefined ? [] : [`${r.impl} error: ${r.error}`]).join('; ')
  return `bench: ${run} round ${round + 1}/${repeat}: llm.ts ${tps(ours)} tokens/s${torch === null ? '' : `, PyTorch ${tps(torch)}`}` +
    `${error === '' ? '' : ` (${error})`}`
}

/** --json: the setting, and per entry both sides' summaries, the ratio of medians and every run as measured. */
export function reportJson(entries: EntryRuns[], setting: Record<string, unknown>): object {
  return { ...setting, entries: entries.map(e => {
    const o = summarize(e.ours), t = e.torch === null ? null : summarize(e.torch)
    return { run: e.entry.run, model: e.entry.model, B: e.entry.B, variant: e.entry.variant, ours: o, pytorch: t,
      ratio: t === null || o.ok === 0 || t.ok === 0 ? null : o.median / t.median, pytorch_shared: !e.torchFirst && t !== null,
      ours_runs: e.ours, pytorch_runs: e.torch }
  }) }
}
