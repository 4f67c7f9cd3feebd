// Worker thread for prepare: receives batches of text pieces, returns their GPT-2 tokens as one Uint16Array
// (transferred, not copied). A piece that starts a document gets the end-of-text token in front, as llm.c's
// FineWeb script does. The same function runs on the main thread when --workers is 0.

import { parentPort, workerData } from 'node:worker_threads'
import { EOT, encode } from '../tokenizer.js'

export interface TokenizeRequest {
  id: number
  texts: string[]            // pieces, in order
  newDoc: boolean[]          // (texts.length) true: prefix EOT
  allowSpecial: boolean
}

export type TokenizeReply =
  | { id: number; tokens: Uint16Array }
  | { id: number; error: string }

/** Tokens of a batch: for each piece, [EOT if newDoc] ++ encode(text). */
export function tokenizeBatch(req: TokenizeRequest): Uint16Array {
  let out = new Uint16Array(Math.max(1024, req.texts.reduce((n, t) => n + (t.length >> 2) + 1, 0)))
  let n = 0
  for (let i = 0; i < req.texts.length; i++) {
    const ids = encode(req.texts[i]!, { allowSpecial: req.allowSpecial })
    const need = n + ids.length + 1
    if (need > out.length) {
      const grown = new Uint16Array(Math.max(need, out.length * 2))
      grown.set(out.subarray(0, n))
      out = grown
    }
    if (req.newDoc[i]) out[n++] = EOT
    for (let j = 0; j < ids.length; j++) out[n++] = ids[j]!
  }
  // Copy the used part into its own buffer so only that is transferred back.
  return out.slice(0, n)
}

// Only when started by WorkerPool (this module is also imported on the main thread for --workers 0).
if (parentPort !== null && (workerData as { llmtsTokenizeWorker?: boolean } | undefined)?.llmtsTokenizeWorker === true) {
  const port = parentPort
  port.on('message', (req: TokenizeRequest) => {
    try {
      const tokens = tokenizeBatch(req)
      port.postMessage({ id: req.id, tokens } satisfies TokenizeReply, [tokens.buffer as ArrayBuffer])
    } catch (e) {
      port.postMessage({ id: req.id, error: (e as Error).stack ?? String(e) } satisfies TokenizeReply)
    }
  })
}
