// Our HellaSwag scores per example, for comparing with lm-evaluation-harness (reference/hellaswag_harness_check.py):
// node scripts/hellaswag-scores.mjs --model DIR --data VAL.jsonl [--train-data TRAIN.jsonl] [--shots K] --out FILE
// Writes {acc, acc_norm, count, shots, examples: [{scores, normScores, label}]} (harness scoring, float32 CPU).
import { writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'

const { values: a } = parseArgs({ options: {
  dist: { type: 'string', default: 'dist' }, model: { type: 'string' }, data: { type: 'string' },
  'train-data': { type: 'string' }, shots: { type: 'string', default: '0' }, out: { type: 'string' },
} })
if (a.model === undefined || a.data === undefined || a.out === undefined) {
  console.error('usage: node scripts/hellaswag-scores.mjs --model DIR --data VAL.jsonl [--train-data TRAIN.jsonl] [--shots K] --out FILE')
  process.exit(2)
}
const load = p => import(pathToFileURL(resolve(a.dist, p)).href)
const { CpuBackend } = await load('src/backend/cpu/index.js')
const { readHellaswagFile } = await load('src/eval/hellaswag-data.js')
const { scoreHellaswag } = await load('src/eval/hellaswag.js')
const { GPT } = await load('src/model/gpt.js')
const { resolveModel } = await load('src/model/load.js')

const { config, params } = resolveModel(a.model)
const model = new GPT(new CpuBackend(), config, { maxBatch: 4, maxSeqLen: config.contextLength })
model.setParams(params)
const shots = Number(a.shots)
const train = a['train-data'] !== undefined ? readHellaswagFile(a['train-data']) : undefined
const r = await scoreHellaswag(model, readHellaswagFile(a.data), { scoring: 'harness', shots, ...(train ? { train } : {}), keepExamples: true })
writeFileSync(a.out, JSON.stringify({
  acc: r.acc, acc_norm: r.accNorm, count: r.count, shots,
  examples: r.examples.map(e => ({ scores: e.scores, normScores: e.normScores, label: e.label })),
}))
console.error(`hellaswag-scores: ${r.count} examples, ${shots}-shot: acc ${r.acc}, acc_norm ${r.accNorm} -> ${a.out}`)
