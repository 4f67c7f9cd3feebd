// UTF-8 checks shared by `llmts tokenize` (which refuses a file that is not UTF-8) and prepare's text readers
// (which read bad bytes as U+FFFD and say where the first one is): both name a byte offset in the whole input,
// while reading it in chunks that may cut a character.

/** The length of `b` without a character cut short at its end (its bytes belong to the next chunk). */
export function characterEnd(b: Uint8Array): number {
  for (let k = 1; k <= Math.min(3, b.length); k++) {
    const byte = b[b.length - k]!
    if (byte < 0x80) return b.length
    if (byte < 0xc0) continue   // a continuation byte: look further back for its lead
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2
    return length > k ? b.length - k : b.length
  }
  return b.length
}

/** Offset of the first byte that does not decode as UTF-8 (data holds one), or of the lead byte of the first
 *  sequence cut short. The longest prefix that decodes as the start of a stream (a prefix cut inside a character
 *  does) ends at the offending byte; when it ends inside a character, that character's lead byte is the culprit. */
export function firstInvalidUtf8(data: Uint8Array): number {
  const decodes = (n: number): boolean => {
    try { new TextDecoder('utf-8', { fatal: true }).decode(data.subarray(0, n), { stream: true }); return true } catch { return false }
  }
  let lo = 0, hi = data.length
  while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (decodes(mid)) lo = mid; else hi = mid }
  let lead = lo - 1
  while (lead >= 0 && lead > lo - 4 && (data[lead]! & 0xc0) === 0x80) lead--   // back over continuation bytes
  const b = lead >= 0 ? data[lead]! : 0
  const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1
  return lo - lead < length ? lead : lo
}
