// Fault-injection hooks for the fault-tolerance tests (test/faults), read from environment variables so
// that they also reach a spawned `llmts train`. Unset (always, outside tests) they cost one env lookup.
//   LLMTS_TEST_SLOW_CHECKPOINT_MS=N   sleep N ms at each stage of a checkpoint write, so a kill lands inside it
//   LLMTS_TEST_NAN_GRAD_STEPS=4,9     poison the gradient with a NaN at these steps (counted from 1)
//   LLMTS_TEST_CRASH=RANK:STEP        the data-parallel rank RANK throws at the start of step STEP (from 1);
//   LLMTS_TEST_CRASH=RANK:STEP:SIGNAL or kills itself with SIGNAL there (the OOM killer's SIGKILL leaves no error)
//   LLMTS_TEST_SAVER_FAULT=1          the background save's thread throws outside a save (a bug there)
//   LLMTS_TEST_SAVER_FAULT=exit       or ends with process.exit(7) as a save starts (no JS handler of its own runs)
//   LLMTS_TEST_SAVER_FAULT=stale      or answers each save first with a stale error answer (the save before's number)
//   LLMTS_TEST_WATCHDOG_FAULT=start   the save thread's watchdog ends with process.exit(9) before its first heartbeat;
//   LLMTS_TEST_WATCHDOG_FAULT=ready   or once the save thread is ready (ending the save thread with it);
//   LLMTS_TEST_WATCHDOG_FAULT=throw   or throws then. Read in checkpoint-watchdog.ts itself, which imports nothing.

/** Sleeps (blocking) at a stage of a checkpoint write when LLMTS_TEST_SLOW_CHECKPOINT_MS is set. */
export function slowCheckpointStage(): void {
  const ms = Number(process.env['LLMTS_TEST_SLOW_CHECKPOINT_MS'] ?? 0)
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/** Whether the gradient of `step` (from 1) is to be poisoned with a NaN (LLMTS_TEST_NAN_GRAD_STEPS). */
export function poisonGradAt(step: number): boolean {
  const list = process.env['LLMTS_TEST_NAN_GRAD_STEPS']
  return list !== undefined && list.split(',').map(Number).includes(step)
}

/** Throws when LLMTS_TEST_CRASH names this rank and step (a rank failing while its peers wait in a collective). */
export function crashAt(rank: number, step: number): void {
  const v = process.env['LLMTS_TEST_CRASH']
  if (v === undefined || !`${v}:`.startsWith(`${rank}:${step}:`)) return
  const signal = v.split(':')[2]
  if (signal !== undefined) process.kill(process.pid, signal as NodeJS.Signals)
  else throw new Error(`test hook: rank ${rank} crashes at step ${step} (LLMTS_TEST_CRASH)`)
}

/** Throws on the background save's thread, outside a save's error handling, when LLMTS_TEST_SAVER_FAULT is 1;
 *  ends that thread alone (a worker's process.exit) when it is 'exit'. */
export function saverThreadFault(): void {
  const v = process.env['LLMTS_TEST_SAVER_FAULT']
  if (v === '1') throw new Error('test hook: the save thread fails (LLMTS_TEST_SAVER_FAULT)')
  if (v === 'exit') process.exit(7)
}

/** When LLMTS_TEST_SAVER_FAULT is 'stale': `post` sends a stale answer (an error, numbered as the save before) ahead
 *  of the save's own, then the save thread pauses 300 ms, so that the waiting main thread reads the stale one alone. */
export function saverStaleAnswer(post: (error: { kind: 'Error'; message: string }) => void): void {
  if (process.env['LLMTS_TEST_SAVER_FAULT'] !== 'stale') return
  post({ kind: 'Error', message: 'test hook: a stale answer (LLMTS_TEST_SAVER_FAULT=stale)' })
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300)
}
