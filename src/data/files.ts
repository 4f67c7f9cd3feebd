// Turning user path specs into sorted file lists: a file, a directory (recursive, hidden entries skipped,
// filtered by extension) or a glob with *, ?, [...] and ** (Node 20 has no fs.glob). Missing paths and
// specs that match nothing are InputErrors that name the spec.

import { readdirSync, realpathSync, statSync, type Stats } from 'node:fs'
import { join, resolve, sep } from 'node:path'
import { InputError } from '../util/errors.js'

export function hasGlob(spec: string): boolean {
  return /[*?[]/.test(spec)
}

/** stat() or undefined when the path does not exist. */
export function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined
    throw new InputError(`files: cannot read ${path}: ${(e as Error).message}`)
  }
}

/** Files under `dir` (recursive unless `recursive` is false), sorted, hidden names skipped. */
export function listDirectory(dir: string, opts: { recursive?: boolean } = {}): string[] {
  const out: string[] = []
  const walk = (d: string): void => {
    const entries = readdirSync(d, { withFileTypes: true }).sort((a, b) => compare(a.name, b.name))
    for (const e of entries) {
      if (e.name.startsWith('.')) continue
      const p = join(d, e.name)
      if (e.isDirectory()) { if (opts.recursive !== false) walk(p) } else if (e.isFile() || statOrUndefined(p)?.isFile()) out.push(p)
    }
  }
  walk(dir)
  return out
}

/** Files matching a glob pattern, sorted. Only the components from the first wildcard on are matched. */
export function globFiles(pattern: string): string[] {
  const parts = pattern.split(/[\\/]+/)
  const first = parts.findIndex(hasGlob)
  if (first < 0) return statOrUndefined(pattern)?.isFile() ? [pattern] : []
  const root = parts.slice(0, first).join(sep) || (pattern.startsWith('/') ? '/' : '.')
  const out: string[] = []
  const walk = (dir: string, rest: string[]): void => {
    if (rest.length === 0) return
    const [head, ...tail] = rest as [string, ...string[]]
    let entries
    try { entries = readdirSync(dir, { withFileTypes: true }) } catch { return }
    if (head === '**') {
      walk(dir, tail)
      for (const e of entries) if (e.isDirectory() && !e.name.startsWith('.')) walk(join(dir, e.name), rest)
      return
    }
    const re = globToRegExp(head)
    for (const e of entries) {
      if (!re.test(e.name) || (e.name.startsWith('.') && !head.startsWith('.'))) continue
      const p = join(dir, e.name)
      if (tail.length === 0) { if (e.isFile() || statOrUndefined(p)?.isFile()) out.push(p) } else if (e.isDirectory()) walk(p, tail)
    }
  }
  walk(root, parts.slice(first))
  return [...new Set(out)].sort(compare)
}

function globToRegExp(glob: string): RegExp {
  let re = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1)
      if (end < 0) { re += '\\['; continue }
      const body = glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')
      re += `[${body}]`
      i = end
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

/** Code-unit order (locale-independent, so file order is the same on every machine). */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * Expands file, directory and glob specs into one ordered, de-duplicated file list. Directory contents are
 * kept when `accept(path)` is true; explicitly named files are always kept. `what` names the command.
 */
export function expandPaths(specs: readonly string[], opts: { what: string; accept: (path: string) => boolean; acceptHint: string }): string[] {
  const out: string[] = []
  for (const spec of specs) {
    if (hasGlob(spec) && statOrUndefined(spec) === undefined) {
      const files = globFiles(spec)
      if (files.length === 0) throw new InputError(`${opts.what}: no files match ${spec}`)
      out.push(...files)
      continue
    }
    const st = statOrUndefined(spec)
    if (st === undefined) throw new InputError(`${opts.what}: no such file or directory: ${spec}`)
    if (st.isDirectory()) {
      const files = listDirectory(spec).filter(opts.accept)
      if (files.length === 0) throw new InputError(`${opts.what}: directory ${spec} has no usable files (expected ${opts.acceptHint})`)
      out.push(...files)
    } else out.push(spec)
  }
  // one file named twice (a, ./a, a symlink to it, a folder and a file in it) is read once, where first named
  const seen = new Set<string>()
  return out.filter(p => {
    const key = realpathOrSelf(p)
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

function realpathOrSelf(path: string): string {
  try { return realpathSync(path) } catch { return resolve(path) }
}
