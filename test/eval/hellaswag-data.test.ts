// HellaSwag pieces with hand-checked answers (Python's outputs for the same calls, quoted): preprocess,
// capitalize, the trailing-space rule of _encode_pair, the harness's few-shot draws (Python's, from
// test/fixtures/pyrandom.json) and --limit, row packing with left truncation, JSONL validation (file:line
// errors), the download cache, and the CLI's errors and output.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { encode } from '../../src/tokenizer.js'
import { ensureHellaswagFile, hellaswagCacheDir, parseHellaswagJsonl, readHellaswagFile } from '../../src/eval/hellaswag-data.js'
import { buildRows, capitalize, drawHarnessShots, encodePair, preprocess, pyStrip } from '../../src/eval/hellaswag-prompt.js'
import { prepareHellaswag } from '../../src/eval/hellaswag.js'
import { meanStderr, packRows } from '../../src/eval/hellaswag.js'
import { InputError } from '../../src/util/errors.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-hellaswag-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
const fixtures = resolve(process.cwd(), 'test/fixtures/hellaswag')
const isInput = (re: RegExp) => (e: Error) => e instanceof InputError && re.test(e.message) && !e.message.includes('\n')

test('preprocess and capitalize follow Python (outputs of python3 for the same inputs)', () => {
  assert.equal(preprocess('  [header] How to x [title] Do y.  [step] Z  '), ' How to x. Do y.  Z')
  assert.equal(preprocess('Cut [a] b [c\nd] e'), 'Cut b [c\nd] e')       // `.` stops at \n
  assert.equal(preprocess('a \r[b\rc] d'), 'a \r d')                     // but not at \r
  assert.equal(preprocess('ends [title]  '), 'ends. ')                   // strip first, so a trailing space can appear
  assert.equal(pyStrip('\x1c a \x85'), 'a')
  assert.equal(capitalize('tHE mAN'), 'The man')
  assert.equal(capitalize(''), '')
  assert.equal(capitalize('éCOLE'), 'École')
  assert.equal(capitalize('🙂HI'), '🙂hi')
  assert.equal(capitalize('ǆx'), 'ǅx')
  assert.equal(capitalize('ßa'), 'Ssa')
})

test('encodePair moves the context\'s trailing spaces into the continuation and splits at the context tokens', () => {
  const { ctx, cont } = encodePair('Brew it. ', ' Heat the milk.', encode)
  assert.deepEqual(ctx, encode('Brew it.'))
  assert.deepEqual(ctx.concat(cont), encode('Brew it.  Heat the milk.'))
  assert.equal(cont[0], encode('  Heat')[0], 'the continuation starts with the moved space')
})

test('few-shot draws: the harness\'s sequence (Python\'s Random(1234).sample(range(39905), 11) per query, first 10)', () => {
  // test/fixtures/pyrandom.json holds /usr/bin/python3's draws for HellaSwag's 39,905 training documents
  const py = JSON.parse(readFileSync(resolve(process.cwd(), 'test/fixtures/pyrandom.json'), 'utf8')) as
    { harness: { n: number; k: number; draws: number[][] }[] }
  const eleven = py.harness.find(h => h.k === 11 && h.n === 39_905)!
  const val = readHellaswagFile(join(fixtures, 'val.jsonl'))
  const fake = Array.from({ length: 39_905 }, (_, i) => ({ ...val[0]!, ind: 100_000 + i }))
  const queries = eleven.draws.map((_, i) => val[i % val.length]!)
  assert.deepEqual(drawHarnessShots(fake, queries, 10, 1234), eleven.draws.map(d => d.slice(0, 10)))
  // the query itself is dropped if drawn (only possible when the training file holds it), then K are kept
  const self = drawHarnessShots(val, val, 4, 1234)
  self.forEach((ids, i) => { assert.equal(ids.length, 4); assert.ok(!ids.includes(i), `query ${i} is not its own shot`) })
  assert.deepEqual(drawHarnessShots(fake, queries, 0, 1234), queries.map(() => []))
  assert.throws(() => drawHarnessShots(val.slice(0, 3), val, 3, 1),
    isInput(/--shots 3 needs at least 4 training examples \(the harness draws K\+1\)/))
  assert.throws(() => buildRows(val[0]!, { scoring: 'llmc', encode, fewshot: [val[1]!] }), isInput(/llmc scoring is zero-shot/))
})

test('--limit N gives the first N queries the same prompts as the full run', async () => {
  const val = readHellaswagFile(join(fixtures, 'val.jsonl'))
  const train = readHellaswagFile(join(fixtures, 'train.jsonl'))
  const opts = { scoring: 'harness', shots: 2, train, encode } as const
  const all = await prepareHellaswag(val, opts)
  assert.deepEqual(await prepareHellaswag(val.slice(0, 3), opts), all.slice(0, 3))
  await assert.rejects(prepareHellaswag(val, { scoring: 'harness', shots: 1, encode }), isInput(/need training examples/))
  await assert.rejects(prepareHellaswag(val, { scoring: 'llmc', shots: 1, train, encode }), isInput(/llmc scoring is zero-shot/))
})

test('packRows: targets only on the ending, left truncation to the window, padding with ignored targets', () => {
  const rows = [{ ctx: [1, 2, 3, 4, 5], cont: [6, 7] }, { ctx: [1], cont: [9] }, { ctx: [8, 8], cont: [3, 4, 5, 6, 7] }]
  const { inputs, targets, T, scored } = packRows(rows, 4)
  assert.equal(T, 4)
  assert.deepEqual([...inputs], [3, 4, 5, 6, /**/ 1, 50256, 50256, 50256, /**/ 3, 4, 5, 6])
  assert.deepEqual([...targets], [-1, -1, 6, 7, /**/ 9, -1, -1, -1, /**/ 4, 5, 6, 7])
  assert.deepEqual(scored, [2, 1, 4])   // the third ending lost its first token to the window
  assert.ok(Math.abs(meanStderr(0.5, 5) - Math.sqrt(0.25 / 4)) < 1e-15)
  assert.ok(Number.isNaN(meanStderr(1, 1)))
})

test('JSONL validation: errors name the file and line', () => {
  const good = readFileSync(join(fixtures, 'val.jsonl'), 'utf8').split('\n')[0]!
  const f = join(root, 'bad.jsonl')
  writeFileSync(f, `${good}\n{"ind": 2, oops\n`)
  assert.throws(() => readHellaswagFile(f), isInput(/bad\.jsonl:2 is not valid JSON/))
  const obj = JSON.parse(good) as Record<string, unknown>
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ...obj, endings: ['a', 'b', 'c'] }, /:1: "endings" must be an array of 4 strings/],
    [{ ...obj, label: undefined }, /:1: "label" must be 0\.\.3, got nothing \(the test split has no labels\)/],
    [{ ...obj, label: 7 }, /"label" must be 0\.\.3, got 7/],
    [{ ...obj, ctx_b: 3 }, /"ctx_b" must be a string, got 3/],
    // a long value is cut (the whole of it made the one line as long as the value)
    [{ ...obj, ctx_a: ['x'.repeat(10_000)] }, /"ctx_a" must be a string, got \["x{75}\.\.\. \(not a HellaSwag JSONL line\?\)$/],
  ]
  for (const [o, re] of cases) assert.throws(() => parseHellaswagJsonl(JSON.stringify(o), 'x.jsonl'), isInput(re))
  // a label of 1e400 parses as Infinity, which JSON.stringify wrote as null: shown as itself
  assert.throws(() => parseHellaswagJsonl(JSON.stringify({ ...obj, label: 0 }).replace('"label":0', '"label":1e400'), 'x.jsonl'),
    isInput(/"label" must be 0\.\.3, got Infinity \(/))
  assert.equal(parseHellaswagJsonl(JSON.stringify({ ...obj, label: '2' }), 'x.jsonl')[0]!.label, 2)
  assert.throws(() => parseHellaswagJsonl('\n\n', 'empty.jsonl'), isInput(/empty\.jsonl has no examples/))
  assert.throws(() => readHellaswagFile(join(root, 'missing.jsonl')), isInput(/cannot read .*missing\.jsonl: no such file \(ENOENT\)$/))
})

test('download: cached once, validated before caching, a clear error offline', async () => {
  assert.equal(hellaswagCacheDir({ LLMTS_CACHE: '/c' }), join('/c', 'hellaswag'))
  const cacheDir = join(root, 'cache')
  const offline = async (): Promise<never> => { throw new TypeError('fetch failed', { cause: { code: 'ENOTFOUND' } }) }
  await assert.rejects(ensureHellaswagFile('val', { cacheDir, fetch: offline }),
    isInput(/cannot download https:.*hellaswag_val\.jsonl \(ENOTFOUND; offline\?\): pass --data FILE\.jsonl/))
  await assert.rejects(ensureHellaswagFile('train', { cacheDir, fetch: offline }), isInput(/pass --train-data FILE\.jsonl/))
  await assert.rejects(ensureHellaswagFile('val', { cacheDir, fetch: offline, fileFlag: '--hellaswag-data' }),
    isInput(/pass --hellaswag-data FILE\.jsonl/))   // llmts train's flag
  const portal = async () => ({ ok: true, status: 200, text: async () => '<html>login</html>' })
  await assert.rejects(ensureHellaswagFile('val', { cacheDir, fetch: portal }), isInput(/:1 is not valid JSON/))
  assert.equal(existsSync(join(cacheDir, 'hellaswag_val.jsonl')), false)
  const body = readFileSync(join(fixtures, 'val.jsonl'), 'utf8')
  let calls = 0
  const online = async () => { calls++; return { ok: true, status: 200, text: async () => body } }
  const path = await ensureHellaswagFile('val', { cacheDir, fetch: online })
  assert.equal(readFileSync(path, 'utf8'), body)
  assert.equal(await ensureHellaswagFile('val', { cacheDir, fetch: online }), path)
  assert.equal(calls, 1)
  // a cache under a file ($LLMTS_CACHE=a-file/c): said before any download, not as "put the file at" that place
  const file = join(root, 'a-file')
  writeFileSync(file, '')
  await assert.rejects(ensureHellaswagFile('val', { cacheDir: join(file, 'c', 'hellaswag'), fetch: online }),
    isInput(/^hellaswag: .*a-file \(in the cache folder .*a-file\/c\/hellaswag\) is not a directory/))
  assert.equal(calls, 1, 'no download into a cache that cannot hold it')
})

test('CLI: JSON result names scoring, shots and the few-shot seed (null at 0-shot) and equals the reference; bad data -> one line, exit 2', () => {
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
  const expected = JSON.parse(readFileSync(join(fixtures, 'expected.json'), 'utf8')) as
    { config: object; weightSeed: number; cases: { name: string; acc: number; accNorm: number }[] }
  const cfg = join(root, 'tiny.json')
  writeFileSync(cfg, JSON.stringify(expected.config))   // no weights: initialized from --seed, as the fixture's weights were
  const run = (...args: string[]) => spawnSync(process.execPath,
    [main, 'eval', 'hellaswag', '--model', cfg, '--seed', String(expected.weightSeed), '--device', 'cpu', ...args], { encoding: 'utf8' })
  const r = run('--data', join(fixtures, 'val.jsonl'), '--scoring', 'llmc', '--json')
  assert.equal(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout) as Record<string, unknown>
  const want = expected.cases.find(c => c.name === 'llmc-0shot')!
  assert.deepEqual([out['scoring'], out['shots'], out['count'], out['acc'], out['acc_norm']], ['llmc', 0, 6, want.acc, want.accNorm])
  assert.equal(out['fewshot_seed'], null, 'zero-shot: no few-shot draw, so no seed (null, not the default)')
  for (const limit of ['0', '100']) {   // 0 is all, as train's --hellaswag-limit; more than there are is all, with a note
    const all = run('--data', join(fixtures, 'val.jsonl'), '--scoring', 'llmc', '--limit', limit, '--json')
    assert.equal(all.status, 0, all.stderr)
    assert.deepEqual(JSON.parse(all.stdout), out, `--limit ${limit}`)
    assert.equal(/--limit 100 is more than the 6 examples there are; scoring them all/.test(all.stderr), limit === '100', all.stderr)
  }
  const few = run('--data', join(fixtures, 'val.jsonl'), '--train-data', join(fixtures, 'train.jsonl'), '--shots', '2', '--limit', '1',
    '--fewshot-seed', '7', '--json')
  assert.equal(few.status, 0, few.stderr)
  const fewOut = JSON.parse(few.stdout) as Record<string, unknown>
  assert.deepEqual([fewOut['scoring'], fewOut['shots'], fewOut['count'], fewOut['fewshot_seed']], ['harness', 2, 1, 7])
  const human = run('--data', join(fixtures, 'val.jsonl'), '--train-data', join(fixtures, 'train.jsonl'), '--shots', '2', '--limit', '2')
  assert.equal(human.status, 0, human.stderr)
  assert.match(human.stdout, /^hellaswag \(harness scoring, 2-shot, 2 examples\): acc_norm [\d.]+% ± [\d.]+, acc [\d.]+% ± [\d.]+/)
  const bad = join(root, 'cli-bad.jsonl')
  writeFileSync(bad, '{"ind": 1}\n')
  for (const args of [['--data', bad], ['--data', join(fixtures, 'val.jsonl'), '--scoring', 'llmc', '--shots', '1'],
    ['--data', join(fixtures, 'val.jsonl'), '--shots', '-1']]) {
    const e = run(...args)
    assert.equal(e.status, 2, `exit code for ${args.join(' ')}: ${e.stderr}`)
    assert.equal(e.stderr.trim().split('\n').length, 1, e.stderr)
  }
  assert.match(run('--data', bad).stderr, /cli-bad\.jsonl:1: "endings" must be an array of 4 strings/)
})
