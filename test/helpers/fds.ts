// Files this process holds open, read from /proc/self/fd (Linux): how the tests count shards left open.

import { existsSync, readdirSync, readlinkSync } from 'node:fs'

/** node:test options that skip a test where /proc/self/fd is absent (not Linux). */
export const needsProcFd = existsSync('/proc/self/fd') ? {} : { skip: 'no /proc/self/fd' }

/** The paths under `root` this process holds open, one per descriptor. */
export function openUnder(root: string): string[] {
  const out: string[] = []
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const p = readlinkSync(`/proc/self/fd/${fd}`)
      if (p.startsWith(root)) out.push(p)
    } catch { /* the directory's own descriptor, closed once read */ }
  }
  return out
}
