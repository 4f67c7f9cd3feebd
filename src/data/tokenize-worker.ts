// Worker thread for prepare: runs TokenizeTasks (tokenize-task.ts) and posts each result back with its ids
// transferred, not copied. Tasks may overlap (one reads its Parquet pages while another tokenizes); replies
// carry the request id. An InputError (a bad Parquet file) is flagged so the main thread rethrows it as one.

import { parentPort, workerData } from 'node:worker_threads'
import { InputError } from '../util/errors.js'
import { runTokenizeTask, type InvalidRows, type TokenizeTask } from './tokenize-task.js'

export interface TokenizeRequest {
  id: number
  task: TokenizeTask
  allowSpecial: boolean
}

export type TokenizeReply =
  | { id: number; tokens: Uint16Array; documents: number; invalidUtf8?: InvalidRows }
  | { id: number; error: string; inputError: boolean }

// Only when started by TokenizerPool (tokenize-task.ts runs on the main thread for --workers 0).
if (parentPort !== null && (workerData as { llmtsTokenizeWorker?: boolean } | undefined)?.llmtsTokenizeWorker === true) {
  const port = parentPort
  port.on('message', (req: TokenizeRequest) => {
    runTokenizeTask(req.task, { allowSpecial: req.allowSpecial }).then(
      r => port.postMessage({ id: req.id, ...r } satisfies TokenizeReply, [r.tokens.buffer as ArrayBuffer]),
      (e: unknown) => {
        const inputError = e instanceof InputError
        const error = inputError ? e.message : (e as Error).stack ?? String(e)
        port.postMessage({ id: req.id, error, inputError } satisfies TokenizeReply)
      })
  })
}
