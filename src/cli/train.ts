// `llmts train`: settings from defaults < --config FILE < flags (with --resume, the checkpoint's settings replace
// the defaults), then the run. Ctrl-C or SIGTERM stops after the current micro-batch with a checkpoint of the last
// whole step (a second Ctrl-C aborts at once). Exit codes: 0 done, 2 bad input or a full disk, 3 diverged
// (--on-nan stop), 130 or 143 stopped by SIGINT or SIGTERM (checkpointed). With --nproc N this process launches N
// ranks (src/train/launch.ts), each running this command.

import { readFileSync, statSync } from 'node:fs'
import { GPT2_VOCAB } from '../config.js'
import { decode } from '../tokenizer.js'
import { gradAccumSteps, trainConfigFromJson, trainDefaults, trainFields, type TrainConfig } from '../train/config.js'
import { DivergenceError } from '../train/divergence.js'
import { cooldownStart, learningRate } from '../train/schedule.js'
import { findResumePoint, resumedSettings, type ResumePoint } from '../train/resume.js'
import { HostCollective, rankFromEnv } from '../train/collective.js'
import { launchRanks, stoppedExitCode } from '../train/launch.js'
import { defaultRunDir, trainRun, type RunInfo } from '../train/run.js'
import type { Reporter, StepReport, TrainResult } from '../train/trainer.js'
import { OutOfSpaceError } from '../util/atomic.js'
import { fsReason, InputError } from '../util/errors.js'
import { refuseDuplicateKey } from '../util/json.js'
import { lockOutput, type Lock } from '../util/lock.js'
import { formatDuration } from '../util/progress.js'
import { formatHelp, jsonFlag, parseArgs, refuseArguments, type FlagSpec, type FlagTable } from './args.js'
import type { Command } from './command.js'
import { summaries } from './commands.js'
import type { DefaultRunFlags } from './default-run.js'
import { fitLine, liveProgress, printJson, stderrNotes } from './output.js'

function buildFlags(): FlagTable {
  const t: FlagTable = {}
  for (const [key, f] of Object.entries(trainFields)) {
    const d = trainDefaults[key as keyof TrainConfig]
    const shown = d === '' ? undefined : d
    let spec: FlagSpec
    if (f.kind === 'enum') spec = { type: 'enum', help: f.help, values: f.values, default: shown as string | undefined }
    else if (f.kind === 'int' || f.kind === 'number') spec = { type: f.kind, help: f.help, default: shown as number, min: f.min,
      ...(f.max !== undefined ? { max: f.max } : {}) }
    else spec = { type: 'string', help: f.help, default: shown as string | undefined, metavar: f.metavar }
    t[f.flag] = spec
  }
  t['config'] = { type: 'string', help: 'JSON file of settings (keys as the flags, e.g. "batch-size"); flags override it', metavar: 'FILE' }
  t['resume'] = { type: 'bool', help: 'continue the run in --out from its newest checkpoint (bit-exact on CPU)' }
  t['overwrite'] = { type: 'bool', help: 'start over in an --out that already holds a run' }
  t['default-run'] = { type: 'bool', help: 'the README\'s main command: tiny-gpt2 vs tiny-variant on a built-in corpus ' +
    '(npm start; starts OUT/tiny-gpt2 and OUT/tiny-variant over)' }
  t['json'] = jsonFlag
  return t
}

const flags = buildFlags()

/** One note per setting a --resume changes (a lower --lr after a spike is a use; a silent one reads as the run's own):
 *  config.json then records the new value, which holds from the resumed step on. Shown once the run starts (a
 *  refused resume shows only its error). */
function resumeChanges(was: TrainConfig, now: TrainConfig, point: ResumePoint): string[] {
  const notes: string[] = []
  const from = point.kind === 'checkpoint' ? point.checkpoint.progress.step : 0
  // extending or moving a run is expected; another model is refused later
  const quiet = new Set<keyof TrainConfig>(['out', 'steps', 'threads', 'device', 'precision', 'model', 'initFrom'])
  if (point.kind === 'checkpoint' && was.steps !== now.steps && from < now.steps) notes.push(...stepsChange(was, now, from))
  for (const [key, f] of Object.entries(trainFields) as [keyof TrainConfig, (typeof trainFields)[keyof TrainConfig]][]) {
    if (quiet.has(key) || was[key] === now[key]) continue
    const shown = (v: unknown): string => v === '' ? 'none given' : String(v)   // --val-data '': the *_val_* shards beside --data
    notes.push(`train: note: --resume with --${f.flag} ${shown(now[key])} (the run had ${shown(was[key])}), from step ${from}`)
  }
  return notes
}

/** --steps is also the schedule's length: a longer run raises the learning rate of the next step (a finished run's is
 *  the minimum), which llm.c does without a word and nanoGPT (lr_decay_iters apart from max_iters) does not do. A
 *  constant rate, or a wsd run still before both cooldowns, moves nothing: no note. */
function stepsChange(was: TrainConfig, now: TrainConfig, from: number): string[] {
  const lr = (c: TrainConfig): string => learningRate(c, from).toExponential(2)
  const then = { ...now, steps: was.steps }
  if (learningRate(now, from) === learningRate(then, from)) return []
  const before = lr(then)
  const what = now.lrSchedule === 'wsd' ? `wsd's cooldown now takes the last ${now.steps - cooldownStart(now)} of ${now.steps} steps`
    : `the ${now.lrSchedule === 'linear' ? 'linear decay now spans' : 'cosine now decays over'} ${now.steps} steps`
  return [`train: note: --resume with --steps ${now.steps} (the run had ${was.steps}), from step ${from}: ${what}, ` +
    `so step ${from + 1}'s learning rate is ${lr(now)} (${before} with --steps ${was.steps})`]
}

/** A setting only another schedule reads, given (a flag or --config) with this one: a typo or a misunderstanding,
 *  never what the user means, so refused rather than ignored. */
function refuseUnusedScheduleSetting(config: TrainConfig, given: Partial<TrainConfig>): void {
  const unused = (key: 'cooldownFrac' | 'minLrFrac', applies: string): void => {
    if (given[key] === undefined) return
    throw new InputError(`train: --${trainFields[key].flag} ${given[key]} applies to ${applies} only, and this run's ` +
      `--lr-schedule is ${config.lrSchedule} (drop it, or give --lr-schedule)`)
  }
  if (config.lrSchedule !== 'wsd') unused('cooldownFrac', '--lr-schedule wsd')
  if (config.lrSchedule === 'constant') unused('minLrFrac', 'the decaying schedules (cosine, linear, wsd)')
}

/** A resumed run has drawn its initial weights from its seed, and its data order and sampling streams continue from
 *  the checkpoint's RNG states: another --seed would change nothing, while config.json recorded it as the run's. */
function refuseSeedChange(was: number, now: number): void {
  if (was === now) return
  throw new InputError(`train: --resume with --seed ${now}: the run's seed ${was} drew its initial weights, and its data order ` +
    'and samples continue from the checkpoint\'s RNG states, so another seed would change nothing (drop --seed, or start a new run)')
}

/** defaults (or the resumed checkpoint's settings) < --config file < flags given on the command line. */
function resolveConfig(p: ReturnType<typeof parseArgs<FlagTable>>, note: (line: string) => void, lock: (out: string) => void):
  { config: TrainConfig; point: ResumePoint | null; changes: string[] } {
  let fileCfg: Partial<TrainConfig> = {}
  const file = p.flags['config'] as string | undefined
  if (file !== undefined) {
    let obj: unknown, text = ''
    try { text = readFileSync(file, 'utf8').replace(/^\ufeff/, '') } catch (e) {   // a BOM (some editors) is no error
      throw new InputError(`train: --config ${file}: ${fsReason(e)} (expected a JSON file of settings)`)
    }
    try { obj = JSON.parse(text) } catch (e) {
      throw new InputError(`train: --config ${file}: not valid JSON (${(e as Error).message})`)
    }
    refuseDuplicateKey(text, `train: --config ${file}`)
    fileCfg = trainConfigFromJson(obj, file)
  }
  const given: Partial<TrainConfig> = {}
  for (const [key, f] of Object.entries(trainFields)) {
    if (p.given.has(f.flag)) (given as Record<string, unknown>)[key] = p.flags[f.flag]
  }
  let base = trainDefaults
  let point: ResumePoint | null = null
  if (p.flags['resume'] === true && p.flags['overwrite'] === true) {
    throw new InputError('train: --resume and --overwrite contradict each other ' +
      '(--resume continues the run in --out, --overwrite starts it over); give one')
  }
  if (p.flags['resume'] === true) {
    const out = given.out ?? fileCfg.out
    if (out === undefined || out === '') throw new InputError('train: --resume needs --out RUN_DIR (the run to continue)')
    // before its checkpoints are looked at (a live run's half-written one is no damaged one); a folder that is
    // missing holds no run, as findResumePoint says
    if (statSync(out, { throwIfNoEntry: false })?.isDirectory() === true) lock(out)
    point = findResumePoint(out, note)
    base = resumedSettings(point)
  }
  const config = { ...base, ...fileCfg, ...given }
  refuseUnusedScheduleSetting(config, { ...fileCfg, ...given })
  if (point?.kind === 'checkpoint') refuseSeedChange(base.seed, config.seed)
  const changes = point !== null ? resumeChanges(base, config, point) : []
  // --init-from alone trains the architecture it holds: the gpt2-124m default applies only without it
  if (point === null && config.initFrom !== '' && given.model === undefined && fileCfg.model === undefined) config.model = ''
  return { config, point, changes }
}

const formatMfu = (mfu: number): string => `${(100 * mfu).toFixed(1)}%`

export function formatStep(r: StepReport): string {
  return `step ${r.step}/${r.steps} | loss ${r.loss.toFixed(4)} | lr ${r.lr.toExponential(2)} | norm ${r.grad_norm.toFixed(3)} | ` +
    `${Math.round(r.tokens_per_s).toLocaleString('en-US')} tok/s | ${r.mfu === undefined ? '' : `${formatMfu(r.mfu)} MFU | `}` +
    `${r.ms.toFixed(0)} ms | ETA ${formatDuration(r.etaS)}`
}

/** A live line on a TTY (redrawn in place), else one plain line every ~10 s and at the first and last steps. */
export function consoleReporter(opts: { tty: boolean; vocabSize: () => number; prefix?: string }): Reporter {
  const err = process.stderr
  const pre = opts.prefix ?? ''
  let live = false, lastPlain = 0
  const line = (text: string): void => {
    if (live) { err.write('\r\x1b[K'); live = false }
    err.write(pre + text + '\n')
  }
  return {
    step(r) {
      if (opts.tty) {
        err.write(`\r\x1b[K${fitLine(pre + formatStep(r), err.columns)}`)
        live = true
        if (r.step === r.steps) { err.write(`\r\x1b[K${pre}${formatStep(r)}\n`); live = false }   // the last one whole
        return
      }
      const now = Date.now()
      if (r.step === 1 || r.step === r.steps || now - lastPlain >= 10_000) { line(formatStep(r)); lastPlain = now }
    },
    val(r) { line(`step ${r.step} | val loss ${r.val_loss.toFixed(4)}${r.best ? ' (best)' : ''}`) },
    hellaswag(r) {
      line(`step ${r.step} | hellaswag (${r.hellaswag_scoring} scoring, ${r.hellaswag_shots}-shot, ${r.hellaswag_count} examples): ` +
        `acc_norm ${(100 * r.hellaswag_acc_norm).toFixed(2)}%, acc ${(100 * r.hellaswag_acc).toFixed(2)}%`)
    },
    anomaly(r) {
      const v = r.verdict
      const what = v.skip === 'nan' ? `loss ${r.loss.toFixed(4)}, grad norm ${r.grad_norm.toFixed(3)}: not finite`
        : `spike (${v.gradZ > v.lossZ ? 'grad norm' : 'loss'}): loss ${r.loss.toFixed(4)} (z ${v.lossZ.toFixed(1)}), ` +
          `grad norm ${r.grad_norm.toFixed(3)} (z ${v.gradZ.toFixed(1)})`
      line(`step ${r.step} | ${what}${v.skip !== null ? '; update skipped' : ''}`)
    },
    checkpoint(r) { line(`step ${r.step} | checkpoint ${r.path}`) },
    sample(r) {
      const text = opts.vocabSize() === GPT2_VOCAB ? JSON.stringify(decode(r.tokens)) : `[${r.tokens.join(' ')}]`
      line(`step ${r.step} | sample: ${text}`)
    },
  }
}

export const command: Command = {
  name: 'train',
  summary: `${summaries.train}\n` +
    'Ctrl-C or SIGTERM stops after the micro-batch with a checkpoint; exit codes: 0 done, 2 bad input, 3 diverged, ' +
    '130/143 stopped (SIGINT/SIGTERM)',
  usage: '--data SHARDS [--model PRESET|FILE|DIR] [--out RUN_DIR] [flags]   |   --default-run',
  flags,
  async run(argv) {
    // a launched rank parses the launcher's command line again: its notes (a flag given twice) were shown already
    const p = parseArgs('llmts train', flags, argv, line => { if (process.env['LLMTS_RANK'] === undefined) process.stderr.write(`${line}\n`) })
    if (p.help) { process.stdout.write(formatHelp('llmts train', this.usage, this.summary, flags)); return 0 }
    refuseArguments('llmts train', p.positionals, { hint: 'flags only; see llmts train --help', globFlag: '--data' })
    if (p.flags['default-run'] === true) return startDefaultRun(p)
    const rank = rankFromEnv()
    const quiet = rank !== null && rank.rank > 0   // rank 0 speaks for every rank
    const host = rank !== null ? new HostCollective(rank.rank, rank.world) : undefined
    if (quiet) await host!.barrier()   // until rank 0 has checked the settings: a bad one is then reported once
    const note = stderrNotes(['train'], { quiet })   // `llmts train: ` for the library's `train: note: ...`
    // one process writes a run directory: this one (or the launcher, for its ranks) holds RUN_DIR/.lock
    let lock: Lock | undefined
    const lockRun = (out: string): void => { if (rank === null) lock ??= lockOutput(out, { command: 'llmts train', flag: '--out', note }) }
    try { return await train(argv, p, { rank, quiet, host, note, lockRun }) } finally { lock?.release() }
  },
}

type Parsed = ReturnType<typeof parseArgs<FlagTable>>
type Context = { rank: ReturnType<typeof rankFromEnv>; quiet: boolean; host: HostCollective | undefined; note: (line: string) => void;
  lockRun: (out: string) => void }

async function train(argv: string[], p: Parsed, { rank, quiet, host, note, lockRun }: Context): Promise<number> {
  // the launcher's own notes are shown: a damaged checkpoint found here is moved aside, so no rank sees it again
  const { config: cfg, point, changes } = resolveConfig(p, note, lockRun)
  if (cfg.out === '') cfg.out = defaultRunDir(cfg)   // decided once: the launcher's ranks get it as --out
  lockRun(cfg.out)
  if (cfg.nproc > 1 && rank === null) {
    gradAccumSteps(cfg)   // the commonest mistake, said once here rather than by every rank
    const args = ['train', ...argv, ...(p.given.has('out') ? [] : ['--out', cfg.out])]   // one run directory for all ranks
    return launchRanks({ world: cfg.nproc, script: process.argv[1]!, args, report: text => process.stderr.write(text) })
  }
  const stop: Stop = { requested: false, signal: null }
  let vocab = GPT2_VOCAB
  const onSignal = stopOnSignal(stop, { quiet, when: rank === null
    ? 'after this micro-batch, with a checkpoint of the last whole step' : 'at the end of this step, with its checkpoint' })
  try {
    const reporter = quiet ? {} : consoleReporter({ tty: liveProgress(), vocabSize: () => vocab })
    const { info, result } = await trainRun(cfg, {
      resume: p.flags['resume'] === true, overwrite: p.flags['overwrite'] === true, reporter, stop, note,
      ...(host !== undefined ? { host } : {}),
      ...(point !== null ? { resumeFrom: point } : {}),
      onStart: i => {
        vocab = i.modelConfig.vocabSize
        for (const line of changes) note(line)
        note(`${i.modelSource}, ${i.parameters.toLocaleString('en-US')} parameters, ` +
          `B=${i.config.batchSize} T=${i.config.seqLen} accumulation ${i.gradAccum}, ${i.backend}, ${i.ranks !== null ? `${i.ranks}, ` : ''}` +
          `${i.startStep > 0 ? `resuming at step ${i.startStep}, ` : ''}run directory ${i.runDir}`)
      },
    })
    if (!quiet) printSummary(info, result, { json: p.flags['json'] === true })
    // a stop agreed on with the other ranks comes from the launcher's signal, which every rank received
    return result.interrupted ? stoppedExitCode(stop.signal ?? 'SIGINT') : 0
  } catch (e) {
    throw howToContinue(e, cfg)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

/** --default-run: `npm start`'s comparison (tiny-gpt2 vs tiny-variant), its own code path. It gets the values of
 *  the flags given (not their defaults) and their names: it refuses any but --steps, --out, --device, --threads,
 *  --precision, --json. */
async function startDefaultRun(p: ReturnType<typeof parseArgs<FlagTable>>): Promise<number> {
  const { runDefault } = await import('./default-run.js')
  const given = (f: string): boolean => p.given.has(f)
  return runDefault({
    json: p.flags['json'] === true, given: [...p.given].filter(f => f !== 'default-run' && f !== 'json'),
    steps: given('steps') ? p.flags['steps'] as number : undefined, out: given('out') ? p.flags['out'] as string : undefined,
    device: given('device') ? p.flags['device'] as DefaultRunFlags['device'] : undefined,
    threads: given('threads') ? p.flags['threads'] as number : undefined,
    precision: given('precision') ? p.flags['precision'] as DefaultRunFlags['precision'] : undefined,
  })
}

/** A run that diverged or filled the disk left its checkpoints: the error, rethrown, says how to continue the run
 *  (--resume, and for a divergence what to change). Any other error is returned as it is. */
function howToContinue(e: unknown, cfg: TrainConfig): unknown {
  const resume = `llmts train --out ${cfg.out !== '' ? cfg.out : 'RUN_DIR'} --resume`
  if (e instanceof DivergenceError) {
    return new DivergenceError(`${e.message} (continue with ${resume}, perhaps with a lower --lr${cfg.onNan === 'skip' ? '' : ' or --on-nan skip'})`)
  }
  if (e instanceof OutOfSpaceError) return new OutOfSpaceError(`${e.message}; the checkpoints already written are intact ` +
    `(free space, then ${resume})`)
  return e
}

type Stop = { requested: boolean; signal: NodeJS.Signals | null }

/** The first SIGINT/SIGTERM asks for a stop; the handlers are then removed, so a second signal terminates the
 *  process at once, even inside a step or a checkpoint write (the last complete checkpoint stays). Returns the
 *  handler, for the caller to remove when training ends. */
function stopOnSignal(stop: Stop, o: { quiet: boolean; when: string }): (signal: NodeJS.Signals) => void {
  const onSignal = (signal: NodeJS.Signals): void => {
    stop.requested = true
    stop.signal = signal
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    const end = liveProgress() ? '\n' : ''   // ends a live progress line
    if (!o.quiet) process.stderr.write(`${end}llmts train: ${signal}: stopping ${o.when}; Ctrl-C again to abort now\n`)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return onSignal
}

/** A value for JSON, where NaN and infinities have no spelling: null. */
const finite = (x: number | null): number | null => x !== null && Number.isFinite(x) ? x : null

/** The run's outcome on stdout (one JSON object with --json), and how to continue a stopped run on stderr. */
function printSummary(info: RunInfo, result: TrainResult, o: { json: boolean }): void {
  if (o.json) {
    // the last HellaSwag score under log.jsonl's keys, its step as hellaswag_step (steps is the run's)
    const { step: hellaswagStep, ...hellaswag } = result.lastHellaswag ?? {}
    printJson({
      runDir: info.runDir, model: info.runDir, steps: result.step, interrupted: result.interrupted, loss: finite(result.lastLoss),
      valLoss: finite(result.lastValLoss), skippedUpdates: result.skippedUpdates, bestValLoss: result.bestValLoss,
      ...(result.lastHellaswag !== null ? { hellaswagStep, ...hellaswag } : {}),
      tokensPerSecond: result.tokensPerS, ...(result.mfu !== undefined ? { mfu: result.mfu } : {}), trainSeconds: result.trainSeconds,
    })
  } else if (info.startStep >= info.config.steps) {
    process.stdout.write(`${info.runDir} had already finished at step ${info.startStep} (of --steps ${info.config.steps}); ` +
      `nothing to do (a larger --steps trains it further)\n`)
  } else {
    const skipped = result.skippedUpdates, ran = result.step - info.startStep
    process.stdout.write(`${result.interrupted ? 'stopped' : 'finished'} at step ${result.step}: loss ${result.lastLoss?.toFixed(4) ?? '-'}` +
      `, val loss ${result.lastValLoss?.toFixed(4) ?? '-'} (best ${result.bestValLoss?.toFixed(4) ?? '-'})` +
      `${skipped > 0 ? `, ${skipped} of ${ran} updates skipped` : ''}` +
      `, ${Math.round(result.tokensPerS).toLocaleString('en-US')} tokens/s${result.mfu === undefined ? '' : ` (${formatMfu(result.mfu)} MFU)`}` +
      `; run in ${info.runDir}\n`)
  }
  if (result.interrupted) process.stderr.write(`llmts train: stopped at step ${result.step}; ` +
    `continue with: llmts train --out ${info.runDir} --resume\n`)
}
