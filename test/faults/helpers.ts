// Shared pieces of the fault-tolerance tests: the compiled CLI's path (next to this file's outDir, so the
// tests run from dist/ or any other build folder), a temp root removed at exit, spawning `llmts` with
// collected output, and the log comparison that ignores timing fields.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { timingFields, type LogRecord } from '../../src/train/log.js'
import { lastWins } from '../helpers/args.js'

export const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))

/** A fresh temp directory, removed when the test process exits. */
export function tempRoot(prefix: string): string {
  const root = mkdtempSync(join(tmpdir(), `llmts-faults-${prefix}-`))
  process.on('exit', () => rmSync(root, { recursive: true, force: true }))
  return root
}

export interface Result { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

const quietEnv = (env: Record<string, string>): NodeJS.ProcessEnv => ({ ...process.env, LLMTS_DEBUG: '', ...env })

/** Runs `llmts ARGS` to completion (bounded by timeoutMs). */
export function llmts(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Result {
  const r = spawnSync(process.execPath, [main, ...lastWins(args)], { encoding: 'utf8', env: quietEnv(opts.env ?? {}), timeout: opts.timeoutMs ?? 60_000 })
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }
}

/** Runs `bash -c SCRIPT` where "$LLMTS" is `node main.js` (for ulimit); bounded by timeoutMs. */
export function bash(script: string, opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Result {
  const env = { ...quietEnv(opts.env ?? {}), LLMTS_NODE: process.execPath, LLMTS_MAIN: main }
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', env, timeout: opts.timeoutMs ?? 60_000 })
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }
}

/** A running `llmts ARGS` whose stderr is collected; `onStderr` sees the text so far after each chunk. */
export function start(args: string[], opts: { env?: Record<string, string>; onStderr?: (text: string, child: ChildProcess) => void } = {}):
  { child: ChildProcess; done: Promise<Result> } {
  const child = spawn(process.execPath, [main, ...lastWins(args)], { env: quietEnv(opts.env ?? {}), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = '', stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; opts.onStderr?.(stderr, child) })
  const done = new Promise<Result>(resolve => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })))
  return { child, done }
}

export function withoutTiming(log: LogRecord[]): LogRecord[] {
  return log.map(r => Object.fromEntries(Object.entries(r).filter(([k]) => !timingFields.includes(k))) as LogRecord)
}

/** The one line an error must be: exactly one non-empty line, no stack frame. */
export function isOneLine(stderr: string): boolean {
  const lines = stderr.trim().split('\n')
  return lines.length === 1 && lines[0] !== '' && !/\n\s+at /.test(stderr) && !/internal error/.test(stderr)
}

/** Root ignores file permissions, so a test of EACCES run as root hands its run directory to user nobody (65534) and
 *  spawns `llmts` as nobody. Answers the spawn options (none when not root), or why the test must skip: nobody cannot
 *  read the build (a checkout under a private folder; mktemp -d is 0700). `root` is opened to nobody. */
export function asNobody(root: string): { spawn: { uid?: number; gid?: number }; give(dir: string): void } | string {
  if (process.getuid?.() !== 0) return { spawn: {}, give: () => {} }
  const nobody = 65534
  const probe = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(main)})`], { uid: nobody, gid: nobody })
  if (probe.status !== 0) return `user nobody cannot read ${main} (a private parent folder); run as root, the test needs it`
  chmodSync(root, 0o755)
  const give = (dir: string): void => {
    for (const p of [dir, ...readdirSync(dir, { recursive: true, encoding: 'utf8' }).map(n => join(dir, n))]) chownSync(p, nobody, nobody)
  }
  return { spawn: { uid: nobody, gid: nobody }, give }
}
