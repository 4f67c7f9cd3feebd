// shown(): a user's value as an error message quotes it: as written (JSON), non-finite numbers by name even when
// nested (JSON would write null), a missing value as "nothing", long values cut at 80 characters. InputError's
// message is one line: the CLI prints it as one. fsReason() says why a read failed in words, with Node's code.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fsReason, InputError, shown } from '../../src/util/errors.js'

test('shown() quotes values as the user wrote them', () => {
  assert.equal(shown(undefined), 'nothing')
  assert.equal(shown(null), 'null')
  assert.equal(shown('x'), '"x"')
  assert.equal(shown(1e400), 'Infinity')
  assert.equal(shown(-Infinity), '-Infinity')
  assert.equal(shown(NaN), 'NaN')
  assert.equal(shown([1, Infinity, -Infinity, NaN]), '[1,Infinity,-Infinity,NaN]')
  assert.equal(shown({ lr: NaN, b: [1e400] }), '{"lr":NaN,"b":[Infinity]}')
  const long = shown('a'.repeat(200))
  assert.equal(long.length, 80)
  assert.ok(long.endsWith('...'))
})

test('InputError folds line breaks and the spaces around them into one space', () => {
  assert.equal(new InputError('a\n  b').message, 'a b')
  assert.equal(new InputError('x: bad JSON\r\n    {"lr": }\n\n  ^ here').message, 'x: bad JSON {"lr": } ^ here')
  assert.equal(new InputError('one line, as given').message, 'one line, as given')
  assert.equal(new InputError('a\nb').name, 'InputError')
})

test('fsReason: a read failure in words with its code; an unknown code alone; no code: the message', () => {
  const reason = (path: string): string => { try { readFileSync(path); return 'read' } catch (e) { return fsReason(e) } }
  assert.equal(reason('/nonexistent-llmts/x.json'), 'no such file (ENOENT)')
  assert.equal(reason('/'), 'a directory, not a file (EISDIR)')
  assert.equal(reason(join(process.execPath, 'x')), 'a part of the path is a file, not a folder (ENOTDIR)')
  assert.equal(fsReason(Object.assign(new Error('x'), { code: 'EMFILE' })), 'EMFILE')
  assert.equal(fsReason(new Error('plain')), 'plain')
  assert.equal(fsReason('a string'), 'a string')
})
