// lastWins: each flag once, its last occurrence, with its value; bool flags and other items kept in place.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { lastWins } from './args.js'

test('lastWins keeps the last occurrence of each flag with its value', () => {
  assert.deepEqual(lastWins(['train', '--steps', '3', '--json', '--lr=1', '--steps', '5', '--lr', '2', '--json']),
    ['train', '--steps', '5', '--lr', '2', '--json'])
  assert.deepEqual(lastWins(['eval', 'loss', '--data', 'a', '--overwrite', '--data', 'b']), ['eval', 'loss', '--overwrite', '--data', 'b'])
  assert.deepEqual(lastWins(['--out', 'x']), ['--out', 'x'])
})
