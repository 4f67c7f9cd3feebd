// Fault-injection hooks for the fault-tolerance tests (test/faults), read from environment variables so
// that they also reach a spawned `llmts train`. Unset (always, outside tests) they cost one env lookup.
//   LLMTS_TEST_SLOW_CHECKPOINT_MS=N   sleep N ms at each stage of a checkpoint write, so a kill lands inside it
//   LLMTS_TEST_NAN_GRAD_STEPS=4,9     poison the gradient with a NaN at these steps (counted from 1)

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
