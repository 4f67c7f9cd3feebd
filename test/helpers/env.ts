// Test tooling: run code with some environment variables set (or removed, with undefined) and put back after.

/**
 * `fn`'s result with `vars` in process.env while it runs; the previous values (or their absence) restored after.
 * When `fn` returns a promise, they are restored once it settles, so an async `fn` may read them after an await.
 */
export function withEnv<R>(vars: Record<string, string | undefined>, fn: () => R): R {
  const saved = Object.entries(vars).map(([name]) => [name, process.env[name]] as const)
  const put = (name: string, value: string | undefined): void => {
    if (value === undefined) delete process.env[name]
    else process.env[name] = value
  }
  const restore = (): void => { for (const [name, value] of saved) put(name, value) }
  let result: R
  try {
    for (const [name, value] of Object.entries(vars)) put(name, value)
    result = fn()
  } catch (e) {
    restore()
    throw e
  }
  if (result instanceof Promise) return result.finally(restore) as R
  restore()
  return result
}
