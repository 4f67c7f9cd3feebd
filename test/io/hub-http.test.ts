// The hub's retry policy (src/io/hub/http.ts) on its own: which statuses are retried, Retry-After as seconds or
// an HTTP-date, the 401/403 hint, and backoffDelay's numbers (backoff·2^(attempt-1), ±25% jitter, capped at
// maxBackoffMs, a longer Retry-After honoured up to the cap), computed by hand with Math.random pinned. The same
// rules against a server are in hub-download.test.ts. Also the base URL: --base-url, else $HF_ENDPOINT, each named
// in its own refusal.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { backoffDelay, checkStatus, parseRetryAfter, RetryableError, type RetryOptions } from '../../src/io/hub/http.js'
import { resolveBaseUrl } from '../../src/io/hub/hub.js'
import { InputError } from '../../src/util/errors.js'

const url = 'https://hub.example/x.parquet'

function thrown(status: number, headers: Record<string, string> = {}): unknown {
  try {
    checkStatus(new Response(null, { status, headers }), url, 'x.parquet', {})
  } catch (e) {
    return e
  }
  return undefined
}

test('checkStatus: 5xx, 408 and 429 are retryable, with Retry-After in seconds; other 4xx are InputErrors', () => {
  for (const s of [500, 502, 503, 408, 429]) assert.ok(thrown(s) instanceof RetryableError, `${s} is retried`)
  const e = thrown(429, { 'retry-after': '2' }) as RetryableError
  assert.equal(e.retryAfterMs, 2000, 'Retry-After: 2 is two seconds (RFC 9110 delay-seconds)')
  assert.equal((thrown(503, { 'retry-after': '1' }) as RetryableError).retryAfterMs, 1000)
  assert.equal((thrown(503) as RetryableError).retryAfterMs, undefined)
  for (const s of [400, 401, 403, 404, 416]) assert.ok(thrown(s) instanceof InputError, `${s} is not retried`)
})

test('checkStatus: 401 and 403 both say to set HF_TOKEN; 404 says what to check instead', () => {
  for (const s of [401, 403]) {
    const e = thrown(s) as Error
    assert.match(e.message, new RegExp(`failed with HTTP ${s} .*\\(access denied: set HF_TOKEN to a Hugging Face token`), `${s}: ${e.message}`)
  }
  const missing = thrown(404) as Error
  assert.match(missing.message, /\(not there: check --base-url/)
  assert.doesNotMatch(missing.message, /HF_TOKEN/)
})

test('backoffDelay: doubles from backoffMs, stays within ±25%, and never exceeds maxBackoffMs', (t) => {
  const opts: RetryOptions = { backoffMs: 1000, maxBackoffMs: 60_000 }
  const random = t.mock.method(Math, 'random', () => 0.5)   // no jitter: the bare schedule
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 40].map(a => backoffDelay(a, opts)),
    [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000])
  random.mock.mockImplementation(() => 0)                     // the lowest jitter: 0.75×
  assert.deepEqual([1, 3].map(a => backoffDelay(a, opts)), [750, 3000])
  random.mock.mockImplementation(() => 0.999_999)             // the highest: just under 1.25×, but not past the cap
  assert.ok(Math.abs(backoffDelay(2, opts) - 2500) < 0.01, String(backoffDelay(2, opts)))
  assert.equal(backoffDelay(7, opts), 60_000, '64 s × 1.25 is capped at maxBackoffMs')
  assert.equal(backoffDelay(40, opts), 60_000)
})

test('backoffDelay: a Retry-After longer than the backoff is waited out, up to maxBackoffMs', (t) => {
  t.mock.method(Math, 'random', () => 0.5)
  const opts: RetryOptions = { backoffMs: 1, maxBackoffMs: 10_000 }
  assert.equal(backoffDelay(1, opts, 2000), 2000)
  assert.equal(backoffDelay(1, opts, 3_600_000), 10_000, 'an hour asked for, the cap waited')
  assert.equal(backoffDelay(1, { backoffMs: 4000, maxBackoffMs: 10_000 }, 2000), 4000, 'the longer of the two')
})

test('parseRetryAfter: delay-seconds or an HTTP-date (RFC 9110), nothing for a past date or garbage', () => {
  const now = Date.UTC(2026, 10, 25, 12, 0, 0)
  assert.equal(parseRetryAfter('120', now), 120_000)
  assert.equal(parseRetryAfter(' 3 ', now), 3000)
  assert.equal(parseRetryAfter('Wed, 25 Nov 2026 12:00:30 GMT', now), 30_000)
  for (const h of [null, '', '0', '-5', 'soon', 'Wed, 25 Nov 2026 11:59:00 GMT']) assert.equal(parseRetryAfter(h, now), undefined, String(h))
})

test('resolveBaseUrl: --base-url, else $HF_ENDPOINT (empty is unset), else the hub; a bad value names where it came from', (t) => {
  const saved = process.env['HF_ENDPOINT']
  t.after(() => { if (saved === undefined) delete process.env['HF_ENDPOINT']; else process.env['HF_ENDPOINT'] = saved })
  delete process.env['HF_ENDPOINT']
  assert.equal(resolveBaseUrl(), 'https://huggingface.co')
  assert.equal(resolveBaseUrl('http://127.0.0.1:8080/'), 'http://127.0.0.1:8080')
  process.env['HF_ENDPOINT'] = ''
  assert.equal(resolveBaseUrl(), 'https://huggingface.co')
  process.env['HF_ENDPOINT'] = 'https://mirror.example/'
  assert.equal(resolveBaseUrl(), 'https://mirror.example')
  assert.equal(resolveBaseUrl('https://hub.example'), 'https://hub.example', 'the flag wins')
  const refused = (f: () => unknown, message: string): void => assert.throws(f, (e: Error) => e instanceof InputError && e.message === message)
  process.env['HF_ENDPOINT'] = 'notaurl'
  refused(() => resolveBaseUrl(undefined, 'download'), 'download: $HF_ENDPOINT="notaurl" is not a URL (expected e.g. https://huggingface.co)')
  refused(() => resolveBaseUrl('ftp://x', 'download'), 'download: --base-url "ftp://x" must be http or https')
  process.env['HF_ENDPOINT'] = 'ftp://x'
  refused(() => resolveBaseUrl(), 'fineweb: $HF_ENDPOINT="ftp://x" must be http or https')
})
