// --resume after damage and crashes, in-process: damaged newest checkpoints are moved aside with a warning and
// the run continues from the newest intact one (ending exactly as the uninterrupted run); with none intact it
// is refused; a run killed before its first checkpoint starts over; a checkpoint caught between swapInto's two
// renames is renamed back; best/ is repaired when a crash fell between a checkpoint and its copy to best/.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmodSync, chownSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { writeShard } from '../../src/data/shards.js'
import { listCheckpoints, readCheckpoint, saveBest } from '../../src/train/checkpoint.js'
import { trainDefaults, type TrainConfig } from '../../src/train/config.js'
import { readLog } from '../../src/train/log.js'
import { repairBest } from '../../src/train/resume.js'
import { trainRun } from '../../src/train/run.js'
import { InputError } from '../../src/util/errors.js'
import { formatBytes } from '../../src/util/progress.js'
import { longValData, makeToyRun } from '../train/helpers.js'
import { isOneLine, main, tempRoot, withoutTiming } from './helpers.js'

const root = tempRoot('resume')
const toy = makeToyRun(root)
const base: TrainConfig = {
  ...trainDefaults, model: toy.modelJson, data: toy.data, batchSize: 4, seqLen: 16, totalBatchSize: 64, steps: 8, lr: 3e-3,
  warmupSteps: 1, valEvery: 2, valSteps: 1, checkpointEvery: 2, keepCheckpoints: 3, sampleEvery: 0, device: 'cpu', seed: 9,
}
const ref = join(root, 'ref')
const refLog = (): unknown => withoutTiming(readLog(join(ref, 'log.jsonl')))
const copyOfRef = (name: string): string => { const d = join(root, name); cpSync(ref, d, { recursive: true }); return d }
const ck = (run: string, step: number): string => join(run, 'checkpoints', `step_${String(step).padStart(6, '0')}`)

test('setup: the uninterrupted reference run', async () => {
  const r = await trainRun({ ...base, out: ref }, { resume: false, overwrite: false })
  assert.equal(r.result.step, 8)
  assert.deepEqual(listCheckpoints(ref).map(c => c.step), [4, 6, 8])
})

test('damaged newest checkpoints are moved aside with a warning; the run resumes from the newest intact one', async () => {
  const run = copyOfRef('damaged')
  writeFileSync(join(ck(run, 8), 'state.json'), readFileSync(join(ck(run, 8), 'state.json')).subarray(0, 100))   // torn JSON
  const model = readFileSync(join(ck(run, 6), 'model.safetensors'))
  model[model.length - 5]! ^= 0x10                                                                                // one flipped bit
  writeFileSync(join(ck(run, 6), 'model.safetensors'), model)
  const notes: string[] = []
  const r = await trainRun({ ...base, out: run }, { resume: true, overwrite: false, note: n => notes.push(n) })
  assert.equal(r.info.startStep, 4)
  assert.match(notes[0]!, /^train: warning: --resume skips a damaged checkpoint \(checkpoint: .*step_000008\/state\.json is not valid JSON .*\); moved to /)
  assert.match(notes[1]!, /step_000006\/model\.safetensors fails its checksum .*moved to /)
  // kept, never pruned: the note says what it costs (1.49 GB at gpt2-124m) and that deleting it is the user's call
  for (const [i, step] of [[0, 8], [1, 6]] as const) {
    const aside = `${ck(run, step)}.damaged`, bytes = readdirSync(aside).reduce((sum, n) => sum + statSync(join(aside, n)).size, 0)
    assert.ok(bytes > 3 * 4 * 21_664, 'weights and both moments of the toy model\'s 21,664 parameters')
    assert.ok(notes[i]!.endsWith(`; moved to ${aside} (${formatBytes(bytes)}, kept for inspection and never pruned: delete it when done)`), notes[i])
  }
  // best/ was step 8's: the steps after 4 are trained again, and best/ holds the best of the run until then
  assert.match(notes[2]!, /^train: note: --resume drops best\/ of step 8 \(val loss [\d.]+\), after the resumed step 4; best\/ is step 4's again \(val loss [\d.]+\)$/)
  assert.equal(notes.length, 3, 'an intact log gets no note')
  assert.ok(existsSync(`${ck(run, 8)}.damaged`) && existsSync(`${ck(run, 6)}.damaged`), 'kept for inspection')
  assert.deepEqual(withoutTiming(readLog(join(run, 'log.jsonl'))), refLog())
  assert.ok(readFileSync(join(ck(run, 8), 'model.safetensors')).equals(readFileSync(join(ck(ref, 8), 'model.safetensors'))))
})

test('a step_N without its state.json, or holding another step\'s checkpoint, is damage: moved aside, not skipped', async () => {
  const run = copyOfRef('mislabelled')
  rmSync(join(ck(run, 8), 'state.json'))                     // was invisible, then overwritten by the retrained step 8
  rmSync(ck(run, 6), { recursive: true })
  cpSync(ck(run, 4), ck(run, 6), { recursive: true })        // step_000006 holds step 4
  const notes: string[] = []
  const r = await trainRun({ ...base, out: run }, { resume: true, overwrite: false, note: n => notes.push(n) })
  assert.equal(r.info.startStep, 4)
  assert.match(notes[0]!, /skips a damaged checkpoint \(.*step_000008 has no state\.json\); moved to .*step_000008\.damaged \(/)
  assert.match(notes[1]!, /skips a damaged checkpoint \(checkpoint: .*step_000006\/state\.json says step 4, the directory name step 6\); moved to .*step_000006\.damaged \(/)
  assert.deepEqual(withoutTiming(readLog(join(run, 'log.jsonl'))), refLog())
})

test('train settings in state.json that do not fit its model are damage: named, moved aside, resumed from before', async () => {
  const run = copyOfRef('misfit'), ranks = copyOfRef('misfit-ranks')
  const edit = (step: number, key: string, value: number, dir = run, part = 'trainConfig'): void => {
    const path = join(ck(dir, step), 'state.json')
    const st = JSON.parse(readFileSync(path, 'utf8'))
    st[part][key] = value
    writeFileSync(path, JSON.stringify(st))
  }
  edit(8, 'contextLength', 8, run, 'modelConfig')   // seqLen is 16 (RoPE: no tensor depends on the context)
  edit(6, 'totalBatchSize', 100)   // B·T = 64
  const notes: string[] = []
  const r = await trainRun({ ...base, out: run }, { resume: true, overwrite: false, note: n => notes.push(n) })
  assert.equal(r.info.startStep, 4)
  assert.match(notes[0]!, /skips a damaged checkpoint \(checkpoint: .*step_000008\/state\.json: its trainConfig does not fit its modelConfig: --seq-len 16 exceeds the model's context length 8 /)
  assert.match(notes[1]!, /step_000006\/state\.json: .*: --total-batch-size 100 is not a multiple of --batch-size × --seq-len × --nproc = 4·16·1 = 64 /)
  assert.deepEqual(withoutTiming(readLog(join(run, 'log.jsonl'))), refLog())
  edit(8, 'nproc', 3, ranks)       // 3 ranks cannot share 64 tokens of 4·16
  notes.length = 0
  assert.equal((await trainRun({ ...base, out: ranks }, { resume: true, overwrite: false, note: n => notes.push(n) })).info.startStep, 6)
  assert.match(notes[0]!, /step_000008\/state\.json: .*: --total-batch-size 64 is not a multiple of --batch-size × --seq-len × --nproc = 4·16·3 = 192 /)
})

test('a log.jsonl deleted or emptied before --resume gets a note; the log goes on from the next step', async () => {
  for (const how of ['deleted', 'emptied', 'cut']) {
    const run = copyOfRef(`log-${how}`)
    const log = join(run, 'log.jsonl')
    if (how === 'deleted') rmSync(log)
    else writeFileSync(log, how === 'emptied' ? '' : readLog(log).filter(l => l.step < 8).map(l => JSON.stringify(l) + '\n').join(''))
    const notes: string[] = []
    const r = await trainRun({ ...base, out: run, steps: 9 }, { resume: true, overwrite: false, note: n => notes.push(n) })
    assert.equal(r.info.startStep, 8)
    assert.deepEqual(notes, [`train: note: ${log} has no line for the resumed step 8 (deleted, emptied or cut short?); ` +
      'new lines start at step 9'], how)
    assert.equal(readLog(log).filter(l => l.step > 7)[0]?.step, 9, how)
  }
})

test('repairBest copies the resumed checkpoint to best/ only when it is the best one', () => {
  const run = copyOfRef('not-best')
  saveBest(run, ck(run, 4))
  const at6 = readCheckpoint(ck(run, 6), { withOptimizer: false })
  const point = (valLoss: number) => ({ kind: 'checkpoint' as const, path: ck(run, 6),
    checkpoint: { ...at6, progress: { ...at6.progress, valLoss, bestValLoss: 1 } } })
  repairBest(run, point(1.5))   // step 6's validation was worse than the best: best/ stays step 4's
  assert.equal(readCheckpoint(join(run, 'best'), { withOptimizer: false }).progress.step, 4)
  repairBest(run, point(1))     // it was the best (a crash came before its copy to best/): repaired
  assert.equal(readCheckpoint(join(run, 'best'), { withOptimizer: false }).progress.step, 6)
})

test('a log.jsonl that is a directory is refused naming it (Node\'s EISDIR names no path)', async () => {
  const run = copyOfRef('log-dir')
  rmSync(join(run, 'log.jsonl'))
  mkdirSync(join(run, 'log.jsonl'))
  await assert.rejects(trainRun({ ...base, out: run }, { resume: true, overwrite: false }),
    (e: Error) => e instanceof InputError && e.message === `log: ${join(run, 'log.jsonl')} is a directory (expected the run's log file)`)
})

test('no intact checkpoint left: --resume is refused, naming what was moved aside', async () => {
  const run = copyOfRef('all-damaged')
  for (const s of [4, 6, 8]) rmSync(join(ck(run, s), 'optimizer.safetensors'))
  await assert.rejects(trainRun({ ...base, out: run }, { resume: true, overwrite: false }),
    (e: Error) => e instanceof InputError &&
      /no intact checkpoint in .*checkpoints \(damaged ones moved to .*step_000008\.damaged, .*\); start over with --overwrite/.test(e.message))
})

test('killed before its first checkpoint: --resume starts the run over from step 0 with its recorded settings', async () => {
  const run = copyOfRef('no-checkpoint')
  rmSync(join(run, 'checkpoints'), { recursive: true })
  rmSync(join(run, 'best'), { recursive: true })
  const notes: string[] = []
  const r = await trainRun({ ...base, out: run }, { resume: true, overwrite: false, note: n => notes.push(n) })
  assert.equal(r.info.startStep, 0)
  assert.ok(notes.some(n => /stopped before its first checkpoint; starting it over from step 0/.test(n)), notes.join('\n'))
  assert.deepEqual(withoutTiming(readLog(join(run, 'log.jsonl'))), refLog())
})

test('a checkpoint caught between the two renames of a replacement is renamed back; best/ is repaired', async () => {
  const run = copyOfRef('mid-swap')
  renameSync(ck(run, 8), join(run, 'checkpoints', '.step_000008.old-4242'))   // step_000008 itself is missing
  renameSync(join(run, 'best'), join(run, '.best.tmp-4242'))                   // and best/ was never written
  saveBest(run, ck(run, 4))                                                   // an older best/ in its place
  const r = await trainRun({ ...base, out: run }, { resume: true, overwrite: false })
  assert.equal(r.info.startStep, 8, 'resumed from the renamed-back step_000008')
  assert.ok(!existsSync(join(run, '.best.tmp-4242')) && !existsSync(join(run, 'checkpoints', '.step_000008.old-4242')))
  const best = readCheckpoint(join(run, 'best'), { withOptimizer: false }).progress
  const want = readCheckpoint(join(ref, 'best'), { withOptimizer: false }).progress
  assert.equal(want.step, 8, 'the reference run\'s best is its last validation')
  assert.deepEqual([best.step, best.valLoss], [want.step, want.valLoss])
})

test('a checkpoint file this user may not read is refused, not moved aside as damaged (no roll-back to an older one)', t => {
  // root reads every file: as root, the run is handed to nobody (65534) with one root-only part, and resumed as nobody
  const root0 = process.getuid?.() === 0, nobody = 65534
  if (root0) {
    // nobody must reach the build: a checkout under a private folder (mktemp -d is 0700) keeps it out
    const probe = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(main)})`], { uid: nobody, gid: nobody })
    if (probe.status !== 0) { t.skip(`user nobody cannot read ${main} (a private parent folder); run as root, the test needs it`); return }
    chmodSync(root, 0o755)
  }
  const parts: [string, (run: string) => string][] = [
    ['state.json', run => join(ck(run, 8), 'state.json')],
    ['model.safetensors', run => join(ck(run, 8), 'model.safetensors')],
    ['a step directory', run => ck(run, 8)],
  ]
  for (const [what, part] of parts) {
    const run = copyOfRef(`unreadable-${what.replace(/ /g, '-')}`), locked = part(run)
    if (root0) {
      for (const p of [run, ...readdirSync(run, { recursive: true, encoding: 'utf8' }).map(n => join(run, n))]) chownSync(p, nobody, nobody)
      chownSync(locked, 0, 0)
    }
    chmodSync(locked, 0)
    const log = readFileSync(join(run, 'log.jsonl'))
    const r = spawnSync(process.execPath, [main, 'train', '--out', run, '--resume', '--steps', '9'],
      { encoding: 'utf8', env: { ...process.env, LLMTS_DEBUG: '' }, ...(root0 ? { uid: nobody, gid: nobody } : {}) })
    assert.equal(r.status, 2, `${what}: ${r.stderr}`)
    assert.ok(isOneLine(r.stderr), r.stderr)
    assert.match(r.stderr, new RegExp(`cannot read ${join(ck(run, 8), '')}.*permission denied \\(EACCES\\); the checkpoint is not damaged`), what)
    assert.deepEqual(readdirSync(join(run, 'checkpoints')).sort(), ['step_000004', 'step_000006', 'step_000008'], `${what}: nothing moved aside`)
    assert.ok(readFileSync(join(run, 'log.jsonl')).equals(log), `${what}: the log is untouched`)
    chmodSync(locked, 0o755)   // the temp root's removal at exit reads it
  }
})

test('train shards that changed under the same --data since the run recorded them get a note on --resume', async () => {
  const run = copyOfRef('reshard'), added = join(toy.data, 'toy_train_000002.bin')
  writeShard(added, Array.from({ length: 3000 }, (_, i) => i % 96))   // e.g. `llmts prepare` wrote more shards there
  try {
    const notes: string[] = []
    const r = await trainRun({ ...base, out: run, steps: 9 }, { resume: true, overwrite: false, note: n => notes.push(n) })
    assert.equal(r.info.startStep, 8)
    assert.deepEqual(notes, [`train: note: --resume: the train shards are not those ${join(run, 'config.json')} recorded (2 then, 3 now; ` +
      `new: ${added}); the saved data position now points into other data`])
  } finally { rmSync(added) }
})

test('a train shard rewritten under its name since the checkpoint gets a warning on --resume, naming it and how it changed', async () => {
  const run = copyOfRef('rewritten'), shard = join(toy.data, 'toy_train_000001.bin'), was = readFileSync(shard)
  const changed = Buffer.from(was)
  changed[changed.length - 2]! ^= 1   // the last token's id, still under the toy's 96: same size, other contents
  const sample = (b: Buffer): string => createHash('sha256').update(b).digest('hex').slice(0, 16)   // the whole file: < 192 KiB
  writeFileSync(shard, changed)
  try {
    const notes: string[] = []
    const r = await trainRun({ ...base, out: run, steps: 9 }, { resume: true, overwrite: false, note: n => notes.push(n) })
    assert.equal(r.info.startStep, 8)
    assert.deepEqual(notes, [`train: warning: --resume: a train shard is not the one ${join(ck(run, 8), 'state.json')} was trained on: ` +
      `toy_train_000001.bin has other contents (same size; sampled sha256 ${sample(changed)}, ${sample(was)} then); the run goes on ` +
      'with the data it is given now, no longer the same stream (put the old shards back to continue it)'])
  } finally { writeFileSync(shard, was) }
})

test('a checkpoint from before the shard fingerprints resumes as before, to the uninterrupted run\'s end, and records them', async () => {
  const run = copyOfRef('unprinted'), state = join(ck(run, 4), 'state.json')
  rmSync(ck(run, 6), { recursive: true })
  rmSync(ck(run, 8), { recursive: true })
  const json = JSON.parse(readFileSync(state, 'utf8')) as { loader: { shards?: unknown } }
  assert.ok(Array.isArray(json.loader.shards), 'checkpoints record the fingerprints')
  delete json.loader.shards
  writeFileSync(state, JSON.stringify(json))
  const notes: string[] = []
  const r = await trainRun({ ...base, out: run }, { resume: true, overwrite: false, note: n => notes.push(n) })
  assert.equal(r.info.startStep, 4)
  assert.deepEqual(notes.filter(n => n.includes('train shard')), [])
  assert.deepEqual(withoutTiming(readLog(join(run, 'log.jsonl'))), refLog())
  const now = JSON.parse(readFileSync(join(ck(run, 8), 'state.json'), 'utf8')) as { loader: { shards?: { name: string }[] } }
  assert.deepEqual(now.loader.shards?.map(p => p.name), ['toy_train_000000.bin', 'toy_train_000001.bin'])
})

test('a resume whose validation reads other tokens says its val losses are not comparable with the earlier ones nor the best', async () => {
  const best = readCheckpoint(ck(ref, 8), { withOptimizer: false }).progress.bestValLoss!
  const other = longValData(root, 'other-val', 4, 4 * 16)
  const cases: [string, Partial<TrainConfig>, string | null][] = [
    ['more batches', { valSteps: 3 }, '--val-steps 1 → 3'],
    ['other shards and a shorter context', { valData: other, seqLen: 8 }, '--seq-len 16 → 8, other validation shards'],
    ['the same shards named by --val-data', { valData: toy.data }, null],   // the *_val_* shards beside --data, as before
    ['another total batch', { totalBatchSize: 128 }, null],                 // training changes, validation does not
  ]
  for (const [what, change, causes] of cases) {
    const run = copyOfRef(`val-${what.replace(/ /g, '-')}`), notes: string[] = []
    await trainRun({ ...base, out: run, steps: 10, ...change }, { resume: true, overwrite: false, note: n => notes.push(n) })
    const said = notes.filter(n => n.includes('validation reads other tokens'))
    assert.deepEqual(said, causes === null ? [] : [`train: note: --resume: validation reads other tokens after the resumed step 8 ` +
      `(${causes}), so its val losses are not comparable with those logged before, nor with the best so far (${best.toFixed(4)}, ` +
      'in best/), which best/ keeps until one of them is lower'], what)
  }
})
