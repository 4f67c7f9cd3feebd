// Whether a lock's holder still runs. A pid alone does not say: once its process is gone, the pid may be given to
// another (any program), which kept the lock held for good. On Linux a process is also named by its start time
// (/proc/PID/stat field 22, clock ticks since boot) and the boot id (a reboot restarts those clocks), which no other
// process shares; where /proc does not tell (macOS, a pid hidden by hidepid), a signal 0 to the pid is all there is.

import { readFileSync } from 'node:fs'

/** What, besides its pid, names a process on this machine. */
export interface ProcStart { start: number; boot: string }

/** The start of the process `pid`, or undefined where /proc does not tell (no /proc, the pid gone or hidden). */
export function procStart(pid: number): ProcStart | undefined {
  const boot = bootId(), start = startTicks(pid)
  return boot !== undefined && start !== undefined ? { start, boot } : undefined
}

/** Whether the process `pid` runs, and is the one that started at `at` when that is known (a lock written by an
 *  earlier version, or where there is no /proc, has no start: its pid alone decides). */
export function isRunning(pid: number, at?: Partial<ProcStart>): boolean {
  const here = bootId()
  if (at?.start !== undefined && at.boot !== undefined && here !== undefined) {
    if (at.boot !== here) return false   // it ran before this machine last booted
    const start = startTicks(pid)
    if (start !== undefined) return start === at.start
  }
  try { process.kill(pid, 0); return true } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM' }
}

function startTicks(pid: number): number | undefined {
  let stat: string
  try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8') } catch { return undefined }
  // the fields after the command name (which may hold spaces and parentheses) start at field 3
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const start = Number(fields[22 - 3])
  return Number.isSafeInteger(start) ? start : undefined
}

let boot: string | null | undefined   // null: this machine has none
function bootId(): string | undefined {
  if (boot === undefined) {
    try { boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null } catch { boot = null }
  }
  return boot ?? undefined
}
