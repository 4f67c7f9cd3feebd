// The one cache root of llm.ts: prepared built-in corpora, FineWeb's Parquet files, HellaSwag's validation file and
// compiled CUDA kernels all live under it, each in its own folder. Like Hugging Face's and PyTorch's caches it is
// per user, not per checkout, so a second clone reuses gigabytes of downloads.

import { homedir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'

/** $LLMTS_CACHE (a relative path is taken from the working directory), else $XDG_CACHE_HOME/llmts, else ~/.cache/llmts. */
export function cacheRoot(env: Record<string, string | undefined> = process.env, home = homedir()): string {
  const own = env['LLMTS_CACHE']
  if (own !== undefined && own !== '') return resolve(own)
  const xdg = env['XDG_CACHE_HOME']   // the XDG spec: a relative value is invalid and ignored
  if (xdg !== undefined && xdg !== '' && isAbsolute(xdg)) return join(xdg, 'llmts')
  return join(home, '.cache', 'llmts')
}
