// Test tooling: run code with some environment variables set (or removed, with undefined) and put back after.

/** `fn`'s result with `vars` in process.env while it runs; the previous values (or their absence) restored after. */
export function withEnv<R>(vars: Record<string, string | undefined>, fn: () => R): R {
  const saved = Object.entries(vars).map(([name]) => [name, process.env[name]] as const)
  const put = (name: string, value: string | undefined): void => {
    if (value === undefined) delete process.env[name]
    else process.env[name] = value
  }
  try {
    for (const [name, value] of Object.entries(vars)) put(name, value)
    return fn()
  } finally {
    for (const [name, value] of saved) put(name, value)
  }
}
