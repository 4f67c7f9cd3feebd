// JSON keys. Duplicate keys in an object: JSON.parse keeps the last of two equal keys without a word; in a config
// file a user wrote, the first one is then silently ignored. This scan over text JSON.parse has accepted finds them.
// And the two spellings of a key: camelCase (TypeScript) and snake_case (--json output, log.jsonl, HF files).

import { InputError } from './errors.js'

interface DuplicateKey {
  key: string
  /** 1-based lines of the first and the second occurrence. */
  lines: [number, number]
}

/** The first key that appears twice in one object of `text`, or null. `text` must be valid JSON: the scan
 *  tracks only brackets, commas and strings (valid JSON has no raw line break inside a string). */
export function firstDuplicateKey(text: string): DuplicateKey | null {
  const objects: (Map<string, number> | null)[] = []   // the open brackets: an object's keys, or null for an array
  let line = 1
  let atKey = false                                    // the next string is an object key
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '\n') line++
    else if (c === '{') { objects.push(new Map()); atKey = true }
    else if (c === '[') objects.push(null)
    else if (c === '}' || c === ']') objects.pop()
    else if (c === ',') atKey = objects.at(-1) instanceof Map
    else if (c === '"') {
      let end = i + 1
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1
      if (atKey) {
        const keys = objects.at(-1)!
        const key = JSON.parse(text.slice(i, end + 1)) as string   // escapes decoded: "a" and "\u0061" are one key
        const first = keys.get(key)
        if (first !== undefined) return { key, lines: [first, line] }
        keys.set(key, line)
        atKey = false
      }
      i = end
    }
  }
  return null
}

/** An InputError when a key appears twice in one object of `text` (valid JSON), naming it and both lines. */
export function refuseDuplicateKey(text: string, where: string): void {
  const dup = firstDuplicateKey(text)
  if (dup !== null) {
    throw new InputError(`${where}: key "${dup.key}" appears twice in one object (lines ${dup.lines[0]} and ${dup.lines[1]}); ` +
      'expected each key once')
  }
}

/** camelCase -> snake_case (runDir -> run_dir, nonFinite -> non_finite); other keys unchanged. */
export function snakeCase(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase()
}

/** snake_case -> camelCase (kv_heads -> kvHeads); other keys unchanged. */
export function camelCase(key: string): string {
  return key.replace(/_([a-z])/g, (_m, ch: string) => ch.toUpperCase())
}
