// firstDuplicateKey(): against documents built as lists of (key, value) pairs, so which keys repeat (and on which
// lines) is known from the construction, not from the scan; plus hand-written traps (brackets, quotes and
// commas inside strings, escaped keys that decode to the same name, equal keys in different objects).

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { firstDuplicateKey, refuseDuplicateKey } from '../../src/util/json.js'
import { InputError } from '../../src/util/errors.js'
import { Rng } from '../../src/util/rng.js'

type Doc = { pairs: [string, Doc][] } | { items: Doc[] } | { leaf: unknown }

const keyPool = ['a', 'b', 'lr', 'steps', 'k"q', 'x{y}', 'c,d', 'é', '\\']
const leafPool: unknown[] = [1, -2.5e-3, 'text', 'with "quotes" and , { [ ]', '', true, null, '\n\t', '\u2028']

/** A random document; one object in about `dupRate` gets a repeated key. */
function randomDoc(rng: Rng, depth: number, dupRate: number): Doc {
  const r = rng.uniform()
  if (depth === 0 || r < 0.3) return { leaf: leafPool[rng.int(leafPool.length)] }
  if (r < 0.5) return { items: Array.from({ length: rng.int(4) }, () => randomDoc(rng, depth - 1, dupRate)) }
  const keys = [...keyPool].sort(() => rng.uniform() - 0.5).slice(0, 1 + rng.int(4))
  if (rng.uniform() < dupRate) keys.splice(rng.int(keys.length + 1), 0, keys[rng.int(keys.length)]!)
  return { pairs: keys.map(k => [k, randomDoc(rng, depth - 1, dupRate)]) }
}

/** Pretty-printed JSON, one key per line, and the truth: the first repeated key in text order and its two lines. */
function write(doc: Doc): { text: string; dup: { key: string; lines: [number, number] } | null } {
  const lines: string[] = []
  let dup: { key: string; lines: [number, number] } | null = null
  const emit = (d: Doc, indent: string, prefix: string, suffix: string): void => {
    if ('leaf' in d) { lines.push(indent + prefix + JSON.stringify(d.leaf) + suffix); return }
    const [open, close, kids] = 'items' in d ? ['[', ']', d.items.map(x => ['', x] as [string, Doc])] : ['{', '}', d.pairs]
    lines.push(indent + prefix + open)
    const seen = new Map<string, number>()
    kids.forEach(([k, kid], i) => {
      const comma = i < kids.length - 1 ? ',' : ''
      if ('pairs' in d) {
        const first = seen.get(k)
        if (first !== undefined && dup === null) dup = { key: k, lines: [first, lines.length + 1] }
        if (first === undefined) seen.set(k, lines.length + 1)
      }
      emit(kid, indent + '  ', 'pairs' in d ? `${JSON.stringify(k)}: ` : '', comma)
    })
    lines.push(indent + close + suffix)
  }
  emit(doc, '', '', '')
  return { text: lines.join('\n'), dup }
}

test('generated documents: the first repeated key and both its lines, or none', () => {
  const rng = new Rng(7)
  let withDup = 0
  for (let n = 0; n < 500; n++) {
    const { text, dup } = write(randomDoc(rng, 4, 0.15))
    JSON.parse(text)   // the documents are valid JSON
    assert.deepEqual(firstDuplicateKey(text), dup, text)
    assert.deepEqual(firstDuplicateKey(text.replace(/\n\s*/g, '')), dup === null ? null : { key: dup.key, lines: [1, 1] })
    if (dup !== null) withDup++
  }
  assert.ok(withDup > 50 && withDup < 450, `both kinds occur (${withDup} of 500 have a repeated key)`)
})

test('traps: strings that look like structure, escaped keys, the same key in sibling and nested objects', () => {
  assert.equal(firstDuplicateKey('{"a": "}, \\"a\\": 1, {", "b": 2}'), null)
  assert.equal(firstDuplicateKey('{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}], "c": {"b": 1}}'), null)
  assert.equal(firstDuplicateKey('[{"x": 1}, {"x": 2}]'), null)
  assert.deepEqual(firstDuplicateKey('{"a": 1,\n"\\u0061": 2}'), { key: 'a', lines: [1, 2] })
  assert.deepEqual(firstDuplicateKey('{"o": {"k": 1}, "p": [1, {"q": 0, "q": 1}]}'), { key: 'q', lines: [1, 1] })
  assert.deepEqual(firstDuplicateKey('{"\\\\": 1, "\\\\": 2}'), { key: '\\', lines: [1, 1] })
  assert.equal(firstDuplicateKey('"{\\"a\\":1,\\"a\\":2}"'), null, 'a string holding JSON is a string')
})

test('refuseDuplicateKey: one-line InputError naming the key and both lines', () => {
  assert.throws(() => refuseDuplicateKey('{\n  "lr": 0.1,\n  "steps": 3,\n  "lr": 0.2\n}', 'train: --config c.json'),
    (e: Error) => e instanceof InputError &&
      e.message === 'train: --config c.json: key "lr" appears twice in one object (lines 2 and 4); expected each key once')
  refuseDuplicateKey('{"lr": 0.1}', 'x')
})
