// HTTP for the hub, on Node's built-in fetch (undici; follows redirects, drops Authorization on a cross-origin
// redirect to the CDN). One retry policy for everything: connection errors, timeouts, 5xx, 408 and 429 are
// retried with exponential backoff and jitter (bounded count); 401/403/404 and other 4xx fail at once with a
// one-line InputError that says what to check.

import { InputError } from '../../util/errors.js'

export interface RetryOptions {
  token?: string            // HF_TOKEN: sent as "Authorization: Bearer ..."
  maxRetries?: number       // failed attempts in a row (without progress) before giving up
  backoffMs?: number        // first wait; doubles per failure up to maxBackoffMs
  maxBackoffMs?: number
  idleTimeoutMs?: number    // no response or no body bytes for this long: abort the attempt and retry
  signal?: AbortSignal      // cancels everything (Ctrl-C)
  onRetry?: (info: { url: string; attempt: number; reason: string; waitMs: number }) => void
  label?: string            // the module messages name (default "fineweb")
  missingHint?: string      // what to check on a 404 (default: FineWeb's --base-url and manifest)
}

export const httpDefaults = {
  maxRetries: 10,           // 10 failures in a row: about 8.5 minutes of waiting at the default backoff
  backoffMs: 1000,
  maxBackoffMs: 60_000,
  idleTimeoutMs: 60_000,
} satisfies RetryOptions

/** A failure worth another attempt (connection, timeout, 5xx); anything else is thrown as InputError. */
export class RetryableError extends Error {
  constructor(message: string, readonly retryAfterMs?: number) { super(message) }
}

const USER_AGENT = 'llmts (llm.c in TypeScript; hub downloader)'

export function requestHeaders(opts: RetryOptions, extra: Record<string, string> = {}): Record<string, string> {
  return { 'user-agent': USER_AGENT, ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...extra }
}

export function labelOf(opts: RetryOptions): string {
  return opts.label ?? 'fineweb'
}

/** Throws for a response that is not 2xx: RetryableError for 5xx/408/429, InputError otherwise. */
export function checkStatus(res: Response, url: string, what: string, opts: RetryOptions): void {
  if (res.ok) return
  const s = `${res.status}${res.statusText ? ' ' + res.statusText : ''}`
  if (res.status >= 500 || res.status === 408 || res.status === 429) {
    throw new RetryableError(`HTTP ${s}`, parseRetryAfter(res.headers.get('retry-after')))
  }
  const missing = opts.missingHint ?? 'check --base-url, and delete the manifest in the cache if the dataset changed'
  const hint = res.status === 401 && /^(Repo|Revision|Entry)NotFound$/.test(res.headers.get('x-error-code') ?? '')
    ? `not there, or private: ${missing}; for a private or gated repository set HF_TOKEN`   // the hub's answer to an anonymous typo
    : res.status === 401 || res.status === 403
      ? 'access denied: set HF_TOKEN to a Hugging Face token that may read this repository (a gated one: accept its terms on the hub first)'
      : res.status === 404 || res.status === 410 ? `not there: ${missing}` : 'the server refused the request'
  throw new InputError(`${labelOf(opts)}: GET ${url} (${what}) failed with HTTP ${s} (${hint})`)
}

/** A Retry-After header in milliseconds: delay-seconds or an HTTP-date (RFC 9110 §10.2.3); undefined when absent,
 *  unreadable or not in the future. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined
  const ms = /^\s*\d+\s*$/.test(header) ? Number(header) * 1000 : Date.parse(header) - now
  return Number.isFinite(ms) && ms > 0 ? ms : undefined
}

/** Milliseconds to wait before attempt `attempt` (1-based): backoff·2^(attempt-1), capped, ±25% jitter. */
export function backoffDelay(attempt: number, opts: RetryOptions, retryAfterMs?: number): number {
  const base = opts.backoffMs ?? httpDefaults.backoffMs
  const cap = opts.maxBackoffMs ?? httpDefaults.maxBackoffMs
  const exp = Math.min(cap, base * 2 ** Math.min(attempt - 1, 30))
  const wait = exp * (0.75 + 0.5 * Math.random())
  return Math.min(cap, Math.max(wait, retryAfterMs ?? 0))
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return }
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    const onAbort = (): void => { clearTimeout(t); reject(signal!.reason) }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Why a fetch or body read threw, in a few words (undici hides the socket error in `cause`). */
function describeNetworkError(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } }
  const cause = err.cause?.code ?? err.cause?.message
  return cause ? `${err.message} (${cause})` : err.message
}

/** undici reports connection failures as TypeError('fetch failed') and a cut body as TypeError('terminated'). */
function isNetworkError(e: unknown): boolean {
  return e instanceof TypeError && ('cause' in e || /fetch failed|terminated|socket|other side closed/i.test(e.message))
}

/** An AbortController that fires after `ms` without a touch(); also follows an outer signal. */
export class IdleTimer {
  readonly controller = new AbortController()
  private timer: NodeJS.Timeout | undefined
  private readonly onOuter = (): void => this.controller.abort(this.outer!.reason)

  constructor(private readonly ms: number, private readonly outer?: AbortSignal) {
    if (outer?.aborted) this.controller.abort(outer.reason)
    else outer?.addEventListener('abort', this.onOuter, { once: true })
    this.touch()
  }

  touch(): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.controller.abort(new RetryableError(`no data for ${this.ms / 1000} s`)), this.ms)
  }

  dispose(): void {
    clearTimeout(this.timer)
    this.outer?.removeEventListener('abort', this.onOuter)
  }
}

/**
 * Runs `attempt` until it succeeds. A RetryableError or a network error is retried after a backoff; the count
 * resets when `attempt` reports progress. Anything else (InputError, abort) is rethrown at once.
 */
export async function withRetries<T>(url: string, what: string, opts: RetryOptions, attempt: (progressed: () => void) => Promise<T>): Promise<T> {
  const max = opts.maxRetries ?? httpDefaults.maxRetries
  let failures = 0
  for (;;) {
    let progressed = false
    try {
      return await attempt(() => { progressed = true })
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason
      if (!(e instanceof RetryableError) && !isNetworkError(e)) throw e
      failures = progressed ? 1 : failures + 1
      const reason = e instanceof RetryableError ? e.message : describeNetworkError(e)
      if (failures > max) {
        throw new InputError(`${labelOf(opts)}: GET ${url} (${what}) failed ${failures} times in a row, last: ${reason} ` +
          `(network down or server failing; re-run to resume)`)
      }
      const waitMs = backoffDelay(failures, opts, e instanceof RetryableError ? e.retryAfterMs : undefined)
      opts.onRetry?.({ url, attempt: failures, reason, waitMs })
      await sleep(waitMs, opts.signal)
    }
  }
}

/** GET with retries for small responses (the listing); the body is read inside the attempt. */
export async function fetchWithRetry(url: string, opts: RetryOptions & { what: string }): Promise<{ json(): Promise<unknown>; headers: Headers }> {
  return withRetries(url, opts.what, opts, async () => {
    const idle = new IdleTimer(opts.idleTimeoutMs ?? httpDefaults.idleTimeoutMs, opts.signal)
    try {
      const res = await fetch(url, { headers: requestHeaders(opts, { accept: 'application/json' }), signal: idle.controller.signal })
      checkStatus(res, url, opts.what, opts)
      const text = await res.text()
      return { headers: res.headers, json: async () => JSON.parse(text) as unknown }
    } catch (e) {
      throw idle.controller.signal.aborted && !opts.signal?.aborted ? idle.controller.signal.reason : e
    } finally {
      idle.dispose()
    }
  })
}
