// bench/cuda --profile with PyTorch: llm.ts's GPU time per op (CUDA events) and PyTorch's per kernel
// (torch.profiler, bench/torch_reference.py --profile) summed into the same categories, side by side, so a gap in
// tokens/s can be traced to the part of the step where it is lost. torch_reference.py's CATEGORIES sort PyTorch's
// kernels by name (its own, cuBLAS's and torch.compile's Triton kernels) with bench/profile-categories.json; here
// each llm.ts op has its category.

import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** GPU time per training step of one op, kernel or category. */
export interface OpTime { op: string; calls: number; ms: number }

/** bench/torch_reference.py --profile's `kernel_profile`: per step, by category, and its longest kernels. */
export interface KernelProfile { steps: number; unit: string; categories: OpTime[]; kernels: (OpTime & { category: string })[] }

/** bench/profile-categories.json: [category, pattern] in match order (a name no pattern matches is 'other'). */
export function kernelCategories(): [string, RegExp][] {
  const file = fileURLToPath(new URL('../../bench/profile-categories.json', import.meta.url))
  return (JSON.parse(readFileSync(file, 'utf8')) as { categories: [string, string][] }).categories.map(([c, p]) => [c, new RegExp(p)])
}

/** The category of a PyTorch kernel's name, as bench/torch_reference.py sorts it. */
export function kernelCategory(name: string, rules = kernelCategories()): string {
  const low = name.toLowerCase()
  return rules.find(([, re]) => re.test(low))?.[0] ?? 'other'
}

/** The category of one of llm.ts's profiled ops (src/backend/cuda/profile.ts). */
export function opCategory(op: string): string {
  const rules: [RegExp, string][] = [
    [/^matmul/, 'matmul'], [/^attention(Forward|Inference)$/, 'attention forward'], [/^attentionBackward$/, 'attention backward'],
    [/^(rmsnorm|layernorm|residual)/, 'norm + residual'], [/^(gelu|swiglu)/, 'MLP activation'], [/^rope/, 'RoPE'],
    [/^crossEntropy/, 'classifier loss'], [/^(adamwUpdate|sumSquares|sum)$/, 'optimizer + grad norm'],
    [/^encoder/, 'embedding'], [/^(zero|copy)$/, 'memory (zero, copy)'],
  ]
  return rules.find(([re]) => re.test(op))?.[1] ?? 'other'
}

/** llm.ts's per-op times summed by category. */
export function byCategory(ops: readonly OpTime[]): Map<string, OpTime> {
  const out = new Map<string, OpTime>()
  for (const o of ops) {
    const c = opCategory(o.op), t = out.get(c) ?? { op: c, calls: 0, ms: 0 }
    out.set(c, { op: c, calls: t.calls + o.calls, ms: t.ms + o.ms })
  }
  return out
}

const ms = (t: OpTime | undefined): string => t === undefined ? '–' : t.ms.toFixed(2)

/** The side-by-side table (markdown): each category with time on either side (the longer side's first), both
 *  totals, and the differences. */
export function compareTable(ours: readonly OpTime[], torch: KernelProfile): string {
  const o = byCategory(ours), t = new Map(torch.categories.map(c => [c.op, c]))
  const longer = (c: string): number => Math.max(o.get(c)?.ms ?? 0, t.get(c)?.ms ?? 0)
  const names = [...new Set([...o.keys(), ...t.keys()])].sort((a, b) => longer(b) - longer(a))
  const diff = (a: number, b: number): string => `${a - b >= 0 ? '+' : ''}${(a - b).toFixed(2)}`
  const rows = names.map(c => `| ${c} | ${ms(o.get(c))} | ${ms(t.get(c))} | ${diff(o.get(c)?.ms ?? 0, t.get(c)?.ms ?? 0)} |`)
  const sum = (m: Map<string, OpTime>): number => [...m.values()].reduce((s, x) => s + x.ms, 0)
  return ['| category | llm.ts ms/step | PyTorch ms/step | llm.ts − PyTorch |', '|---|---:|---:|---:|', ...rows,
    `| total | ${sum(o).toFixed(2)} | ${sum(t).toFixed(2)} | ${diff(sum(o), sum(t))} |`].join('\n')
}

/** PyTorch's longest kernels (names cut to 100 characters), with the category each was counted in. */
export function kernelTable(torch: KernelProfile): string {
  const cut = (s: string): string => (s.length > 100 ? `${s.slice(0, 99)}…` : s).replaceAll('|', '\\|')
  return ['| PyTorch kernel | category | calls/step | ms/step |', '|---|---|---:|---:|',
    ...torch.kernels.map(k => `| ${cut(k.op)} | ${k.category} | ${k.calls.toFixed(0)} | ${k.ms.toFixed(2)} |`)].join('\n')
}
