// Checkpoints: exact round trip of weights, AdamW moments and progress; the checksum catches a corrupted file;
// a failed write leaves no step_* directory; keep-last-K pruning and --keep-every; RUN_DIR/best; run-directory resolution;
// damage that passes the checksums (rewritten files) caught by the content checks; 7-digit step names.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { configFromJson } from '../../src/config.js'
import type { WriteTensor } from '../../src/io/safetensors.js'
import { readSafetensors, writeSafetensors } from '../helpers/safetensors.js'
import { ParamLayout } from '../../src/model/params.js'
import {
  checkpointName, listCheckpoints, moveAsideDamaged, pruneCheckpoints, readCheckpoint, saveBest, writeCheckpoint,
} from '../../src/train/checkpoint.js'
import { loadCheckpointModel, resolveCheckpointDir } from '../../src/train/checkpoint-dirs.js'
import { DamagedCheckpointError, readStateFile } from '../../src/train/checkpoint-state.js'
import { findResumePoint } from '../../src/train/resume.js'
import { InputError } from '../../src/util/errors.js'
import { checkpointConfig, randomCheckpoint } from './helpers.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-ckpt-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

const config = checkpointConfig, total = new ParamLayout(config).total

test('round trip is bit-exact for weights, moments and progress', () => {
  const dir = join(root, 'rt', 'checkpoints', checkpointName(7))
  const ck = randomCheckpoint(7)
  writeCheckpoint(dir, ck)
  assert.deepEqual(readdirSync(dir).sort(), ['model.safetensors', 'optimizer.safetensors', 'state.json'])
  const back = readCheckpoint(dir, { withOptimizer: true })
  assert.deepEqual(back.params, ck.params)
  assert.deepEqual(back.optimizer, ck.optimizer)
  assert.deepEqual(back.progress, ck.progress)
  assert.deepEqual(back.modelConfig, config)
  assert.deepEqual(back.trainConfig, ck.trainConfig)
  assert.equal(checkpointName(7), 'step_000007')
})

test('a corrupted tensor file fails its checksum with a one-line InputError', () => {
  const dir = join(root, 'corrupt')
  writeCheckpoint(dir, randomCheckpoint(1))
  const path = join(dir, 'optimizer.safetensors')
  const buf = readFileSync(path)
  buf[buf.length - 3]! ^= 0x40
  writeFileSync(path, buf)
  readCheckpoint(dir, { withOptimizer: false })   // the model file is intact
  assert.throws(() => readCheckpoint(dir, { withOptimizer: true }),
    (e: Error) => e instanceof InputError && /optimizer\.safetensors fails its checksum/.test(e.message) && !e.message.includes('\n'))
})

test('a header damaged too is named by the checksum, before what the header says (streamed read)', () => {
  const dir = join(root, 'corrupt-header')
  writeCheckpoint(dir, randomCheckpoint(1))
  const path = join(dir, 'model.safetensors')
  const buf = readFileSync(path)
  buf[5] = 0x7f   // the header length: now past the end of the file
  writeFileSync(path, buf)
  assert.throws(() => readCheckpoint(dir, { withOptimizer: false }),
    (e: Error) => e instanceof DamagedCheckpointError && /model\.safetensors fails its checksum \(\d+ bytes, sha256 [0-9a-f]{12}…/.test(e.message))
})

test('a state.json whose model config is smaller than the weights is refused, not silently truncated', () => {
  const two = configFromJson({ ...config, layers: 2 }, 'test'), n = new ParamLayout(two).total
  const dir = join(root, 'cfg-mismatch')
  writeCheckpoint(dir, { ...randomCheckpoint(1), modelConfig: two, params: new Float32Array(n).fill(0.5), optimizer: null })
  const statePath = join(dir, 'state.json'), state = JSON.parse(readFileSync(statePath, 'utf8')) as { modelConfig: { layers: number } }
  state.modelConfig.layers = 1   // the tensor files keep their checksums: only the config disagrees
  writeFileSync(statePath, JSON.stringify(state))
  assert.throws(() => readCheckpoint(dir, { withOptimizer: false }),
    (e: Error) => e instanceof InputError && /tensor\(s\) the config in state\.json does not describe \(h\.1\./.test(e.message))
  // one tensor too many: untied weights under a state.json that says tied would drop lmHead and decode with wte
  const untied = configFromJson({ ...config, tiedEmbeddings: false }, 'test'), one = join(root, 'cfg-tied')
  writeCheckpoint(one, { ...randomCheckpoint(1), modelConfig: untied, params: new Float32Array(new ParamLayout(untied).total), optimizer: null })
  const tied = JSON.parse(readFileSync(join(one, 'state.json'), 'utf8')) as { modelConfig: { tiedEmbeddings: boolean } }
  tied.modelConfig.tiedEmbeddings = true
  writeFileSync(join(one, 'state.json'), JSON.stringify(tied))
  assert.throws(() => readCheckpoint(one, { withOptimizer: false }),
    (e: Error) => e instanceof InputError && /has 1 tensor\(s\) the config in state\.json does not describe \(lmHead\)/.test(e.message))
})

test('a state.json whose model config is larger than model.safetensors could hold is refused before allocating it', () => {
  const dir = join(root, 'cfg-huge')
  writeCheckpoint(dir, { ...randomCheckpoint(1), optimizer: null })
  const statePath = join(dir, 'state.json'), state = JSON.parse(readFileSync(statePath, 'utf8')) as { modelConfig: { mlpHidden: number } }
  // 2^31 hidden units: billions of parameters, an array past what a Float32Array can be (found by the checkpoint fuzz)
  for (const mlpHidden of [2 ** 31, state.modelConfig.mlpHidden + 8]) {
    writeFileSync(statePath, JSON.stringify({ ...state, modelConfig: { ...state.modelConfig, mlpHidden } }))
    const total = new ParamLayout(configFromJson({ ...config, mlpHidden }, 'test')).total
    const size = statSync(join(dir, 'model.safetensors')).size
    assert.ok(4 * total > size, 'precondition: more parameters than the file holds')
    assert.throws(() => readCheckpoint(dir, { withOptimizer: false }), (e: Error) => e instanceof DamagedCheckpointError &&
      e.message.includes(`its modelConfig has ${total.toLocaleString('en-US')} parameters, more than ${join(dir, 'model.safetensors')} ` +
        `can hold (${size.toLocaleString('en-US')} bytes; 4 a parameter)`), `mlpHidden ${mlpHidden}`)
  }
})

test('a write that fails midway leaves no step directory and no temp directory', () => {
  const run = join(root, 'fail')
  const ck = randomCheckpoint(2)
  ck.optimizer = { ...ck.optimizer!, m: new Float32Array(5) }   // the optimizer file write throws after the model file
  assert.throws(() => writeCheckpoint(join(run, 'checkpoints', checkpointName(2)), ck))
  assert.deepEqual(readdirSync(join(run, 'checkpoints')), [])
  assert.deepEqual(listCheckpoints(run), [])
})

test('replacing a checkpoint, leftovers of a crash, keep-last-K', () => {
  const run = join(root, 'keep')
  for (const s of [1, 2, 3, 4, 5]) writeCheckpoint(join(run, 'checkpoints', checkpointName(s)), randomCheckpoint(s))
  writeCheckpoint(join(run, 'checkpoints', checkpointName(5)), randomCheckpoint(5, 99))
  assert.deepEqual(readCheckpoint(join(run, 'checkpoints', 'step_000005'), { withOptimizer: false }).params, randomCheckpoint(5, 99).params)
  mkdirSync(join(run, 'checkpoints', '.step_000006.tmp-12345'))          // a crash during a write
  mkdirSync(join(run, 'checkpoints', 'step_000007'))                      // not a checkpoint (no state.json)
  assert.deepEqual(listCheckpoints(run).map(c => c.step), [1, 2, 3, 4, 5])
  pruneCheckpoints(run, { last: 2, every: 0 }, assert.fail)
  assert.deepEqual(listCheckpoints(run).map(c => c.step), [4, 5])
  assert.ok(!existsSync(join(run, 'checkpoints', '.step_000006.tmp-12345')), 'the stale temp directory is removed')
  pruneCheckpoints(run, { last: 0, every: 0 }, assert.fail)
  assert.deepEqual(listCheckpoints(run).map(c => c.step), [4, 5], 'keep 0 keeps all')
})

test('--keep-every: checkpoints at its multiples are never pruned, --keep-checkpoints counts the others', () => {
  const run = join(root, 'keep-every'), keep = { last: 2, every: 6 }
  const steps = (): number[] => listCheckpoints(run).map(c => c.step)
  // --checkpoint-every 2 --steps 15: what remains after each save and its prune (the newest 2 not multiples of 6)
  const expected: [number, number[]][] = [
    [2, [2]], [4, [2, 4]], [6, [2, 4, 6]], [8, [4, 6, 8]], [10, [6, 8, 10]], [12, [6, 8, 10, 12]], [14, [6, 10, 12, 14]],
    [15, [6, 12, 14, 15]],   // the end of the run: a minor one
  ]
  for (const [step, left] of expected) {
    writeCheckpoint(join(run, 'checkpoints', checkpointName(step)), randomCheckpoint(step))
    if (step === 8) saveBest(run, join(run, 'checkpoints', checkpointName(step)))   // hard links of a minor one
    pruneCheckpoints(run, keep, assert.fail)
    assert.deepEqual(steps(), left, `after step ${step}`)
  }
  assert.deepEqual(loadCheckpointModel(run).params, randomCheckpoint(8).params, 'best/ outlives the pruned step 8')
  // --keep-checkpoints 1 with a major one newest (18): the newest minor one (16) stays too
  for (const step of [16, 18]) writeCheckpoint(join(run, 'checkpoints', checkpointName(step)), randomCheckpoint(step))
  pruneCheckpoints(run, { last: 1, every: 6 }, assert.fail)
  assert.deepEqual(steps(), [6, 12, 16, 18])
  pruneCheckpoints(run, { last: 0, every: 6 }, assert.fail)
  assert.deepEqual(steps(), [6, 12, 16, 18], '--keep-checkpoints 0 keeps all')
  pruneCheckpoints(run, { last: 1, every: 0 }, assert.fail)
  assert.deepEqual(steps(), [18], 'without --keep-every, the newest 1 of all')
})

test('a state.json or config.json of a version before --keep-every reads as --keep-every 0', () => {
  const run = join(root, 'before-keep-every'), dir = join(run, 'checkpoints', checkpointName(4))
  writeCheckpoint(dir, randomCheckpoint(4))
  const path = join(dir, 'state.json'), state = JSON.parse(readFileSync(path, 'utf8')) as { trainConfig: Record<string, unknown> }
  assert.equal(state.trainConfig['keepEvery'], 0, 'precondition: today\'s state.json has the key')
  delete state.trainConfig['keepEvery']
  writeFileSync(path, JSON.stringify(state))
  assert.deepEqual(readCheckpoint(dir, { withOptimizer: false }).trainConfig, randomCheckpoint(4).trainConfig)
  // a run killed before its first checkpoint: --resume starts over with config.json's settings
  rmSync(join(run, 'checkpoints'), { recursive: true })
  writeFileSync(join(run, 'config.json'), JSON.stringify({ train: { ...state.trainConfig, keepCheckpoints: 2 } }))
  const point = findResumePoint(run)
  assert.ok(point.kind === 'restart')
  assert.deepEqual([point.config.keepEvery, point.config.keepCheckpoints], [0, 2])
})

test('best is a complete copy; a run directory resolves to best, else to its newest checkpoint', () => {
  const run = join(root, 'best')
  writeCheckpoint(join(run, 'checkpoints', checkpointName(3)), randomCheckpoint(3))
  writeCheckpoint(join(run, 'checkpoints', checkpointName(6)), randomCheckpoint(6))
  assert.equal(resolveCheckpointDir(run), join(run, 'checkpoints', 'step_000006'))
  saveBest(run, join(run, 'checkpoints', 'step_000003'))
  saveBest(run, join(run, 'checkpoints', 'step_000003'))   // replacing works too
  assert.equal(resolveCheckpointDir(run), join(run, 'best'))
  pruneCheckpoints(run, { last: 1, every: 0 }, assert.fail)                      // step 3 goes; best must survive it
  const m = loadCheckpointModel(run)
  assert.deepEqual(m.params, randomCheckpoint(3).params)
  assert.equal(m.source, join(run, 'best'))
  assert.throws(() => resolveCheckpointDir(join(root, 'nope')), /does not exist/)
  // a best/ with a part missing is refused, naming it: the newest checkpoint (step 6) is not the best (step 3)
  for (const file of ['model.safetensors', 'state.json']) {
    const damaged = join(root, `best-without-${file}`)
    cpSync(run, damaged, { recursive: true })
    rmSync(join(damaged, 'best', file))
    assert.throws(() => loadCheckpointModel(damaged), (e: Error) => e instanceof InputError &&
      e.message === `checkpoint: ${join(damaged, 'best')} has no ${file} (damaged); give the checkpoint to use, ` +
        `e.g. the newest, ${join(damaged, 'checkpoints', 'step_000006')}`)
  }
})

test('a state.json without "format" is a damaged checkpoint (skipped by --resume); another format is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llmts-state-'))
  try {
    const path = join(dir, 'state.json')
    writeFileSync(path, '{}')
    assert.throws(() => readStateFile(path),
      (e: Error) => e instanceof DamagedCheckpointError && /no "format" key \(damaged checkpoint state\)/.test(e.message))
    writeFileSync(path, '{"format": "something-else"}')
    assert.throws(() => readStateFile(path), (e: Error) => e instanceof InputError && !(e instanceof DamagedCheckpointError) &&
      /is not an llm\.ts checkpoint state \(format "something-else"\)/.test(e.message))
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

/** Rewrites dir/file with `edit` applied to its tensors and records the new file's hash in state.json: damage that
 *  passes the checksum, so only the content checks can catch it. */
function rewriteConsistently(dir: string, file: string, edit: (ts: WriteTensor[]) => WriteTensor[]): void {
  const f = readSafetensors(join(dir, file))
  writeSafetensors(join(dir, file), edit([...f.tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.bytes }))))
  const bytes = readFileSync(join(dir, file))
  editState(dir, st => { st.files[file] = { sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length } })
}

function editState(dir: string, edit: (st: { files: Record<string, unknown> } & Record<string, unknown>) => void): void {
  const path = join(dir, 'state.json'), st = JSON.parse(readFileSync(path, 'utf8'))
  edit(st)
  writeFileSync(path, JSON.stringify(st))
}

test('damage that passes the checksums: a transposed tensor, short moments, out-of-range RNG words, mistyped counts, an infinite loss, another version', () => {
  const fresh = (name: string): string => {
    const dir = join(root, 'consistent', name)
    writeCheckpoint(dir, randomCheckpoint(3))
    return dir
  }
  const damaged = (dir: string, re: RegExp): void => assert.throws(() => readCheckpoint(dir, { withOptimizer: true }),
    (e: Error) => e instanceof DamagedCheckpointError && re.test(e.message), re.source)

  const transposed = fresh('transposed')   // same bytes, shape [C, V] instead of [V, C]
  rewriteConsistently(transposed, 'model.safetensors', ts => ts.map(t => t.name === 'wte' ? { ...t, shape: [...t.shape].reverse() } : t))
  damaged(transposed, /wte is F32 \[32,128\], the config needs F32 \[128,32\]/)

  const short = fresh('short')
  rewriteConsistently(short, 'optimizer.safetensors', ts => ts.map(t => t.name === 'v' ? { ...t, shape: [4], data: new Float32Array(4) } : t))
  damaged(short, new RegExp(`"v" must be F32 with ${total} values`))

  for (const rng of [[1, 2, 3, 2 ** 32], [1, 2, 3, -1], [1, 2, 3, 1.5], [1, 2, 3]]) {
    const dir = fresh('rng')
    editState(dir, st => { st['rng'] = rng })
    damaged(dir, /"rng" must be 4 uint32 words/)
  }
  for (const guard of [{ loss: [1, 'x'], gradNorm: [] }, { loss: [1] }, { loss: [null], gradNorm: [2] }, [1, 2]]) {
    const dir = fresh('guard')
    editState(dir, st => { st['guard'] = guard })
    damaged(dir, /"guard" must hold two arrays of finite numbers/)
  }
  // fields a resume uses as numbers: a string step would make the optimizer's t "31", a string count "5001…"
  for (const [field, value, re] of [['optimizerStep', '3', /"optimizerStep" must be a non-negative integer or null/],
    ['optimizerStep', -1, /"optimizerStep"/], ['tokens', 1.5, /"tokens" must be a non-negative integer/], ['tokens', '9', /"tokens"/]] as const) {
    const dir = fresh('fields')
    editState(dir, st => { st[field] = value })
    damaged(dir, re)
  }
  const huge = fresh('infinite')   // JSON has no Infinity, but 1e999 parses to it
  editState(huge, st => { st['valLoss'] = 7 })
  writeFileSync(join(huge, 'state.json'), readFileSync(join(huge, 'state.json'), 'utf8').replace('"valLoss":7', '"valLoss":1e999'))
  damaged(huge, /"valLoss" and "bestValLoss" must be numbers or null/)
  for (const version of [2, 0, undefined]) {
    const dir = fresh('version')
    editState(dir, st => { st['version'] = version })
    assert.throws(() => readCheckpoint(dir, { withOptimizer: true }), (e: Error) => e instanceof InputError &&
      !(e instanceof DamagedCheckpointError) && /has version .*; this llm\.ts reads version 1/.test(e.message), String(version))
  }
})

test('a damaged checkpoint moved aside twice keeps both copies (step_N.damaged, step_N.damaged-2)', () => {
  const run = join(root, 'aside'), dir = join(run, 'checkpoints', checkpointName(5))
  for (const want of ['step_000005.damaged', 'step_000005.damaged-2']) {
    writeCheckpoint(dir, randomCheckpoint(5))
    assert.equal(moveAsideDamaged(dir), join(run, 'checkpoints', want))
  }
  assert.deepEqual(readdirSync(join(run, 'checkpoints')).sort(), ['step_000005.damaged', 'step_000005.damaged-2'])
  assert.deepEqual(listCheckpoints(run), [])
})

test('checkpoints order by step past 999,999 (7-digit names)', () => {
  const run = join(root, 'many-steps')
  for (const step of [999_999, 1_000_000, 20]) writeCheckpoint(join(run, 'checkpoints', checkpointName(step)), randomCheckpoint(step))
  assert.equal(checkpointName(1_000_000), 'step_1000000')
  assert.deepEqual(listCheckpoints(run).map(c => c.step), [20, 999_999, 1_000_000])
  assert.equal(resolveCheckpointDir(run), join(run, 'checkpoints', 'step_1000000'))
  pruneCheckpoints(run, { last: 1, every: 0 }, assert.fail)
  assert.deepEqual(listCheckpoints(run).map(c => c.step), [1_000_000])
})
