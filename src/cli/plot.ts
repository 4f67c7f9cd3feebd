// `llmts plot RUN_DIR... --out FILE.svg|FILE.png`: the runs' curves (training loss, validation loss, HellaSwag
// acc_norm, learning rate, gradient norm or tokens/s, against step or tokens) on one chart, labelled by run directory.

import { dirname } from 'node:path'
import { PLOT_COLOURS, renderPlot } from '../plot/plot.js'
import { plotMetrics, plotXs } from '../plot/runs.js'
import { checkOutputDir } from '../util/atomic.js'
import { InputError } from '../util/errors.js'
import { plural } from '../util/progress.js'
import { formatHelp, jsonFlag, parseArgs } from './args.js'
import type { Command } from './command.js'
import { summaries } from './commands.js'
import { printJson, stderrNotes } from './output.js'

const flags = {
  out: { type: 'string', help: 'output file: .svg or .png', metavar: 'FILE' },
  metric: { type: 'enum', values: plotMetrics, default: 'loss', help: 'what to plot: training loss, validation loss, HellaSwag acc_norm, learning rate, gradient norm (before clipping) or tokens/s' },
  x: { type: 'enum', values: plotXs, default: 'step', help: 'x axis: optimizer step, or tokens trained (the log\'s count; older logs: step × config.json\'s totalBatchSize)' },
  title: { type: 'string', help: 'chart title (default: the y axis\'s title by x, e.g. "validation loss by tokens")', metavar: 'TEXT' },
  'y-scale': { type: 'enum', values: ['linear', 'log'], default: 'linear', help: 'y axis: linear, or log (more room for the end of a falling loss; values must be above 0)' },
  'y-max': { type: 'number', help: 'the y axis\'s top; higher values are clipped (the first steps\' loss of ~11 squeezes the end of the curves)' },
  smooth: { type: 'number', default: 0, min: 0, max: 0.999, help: 'smoothing weight as TensorBoard\'s (a debiased moving average; 0.9 for noisy training losses), 0 = none' },
  json: jsonFlag,
} as const

export const command: Command = {
  name: 'plot',
  summary: summaries.plot,
  usage: 'RUN_DIR... --out FILE.svg|FILE.png [--metric loss|val_loss|hellaswag|lr|grad_norm|tokens_per_s] [--x step|tokens] [--y-scale linear|log] [--y-max Y] [--smooth W]',
  flags,
  async run(argv) {
    const p = parseArgs('llmts plot', flags, argv)
    if (p.help) { process.stdout.write(formatHelp('llmts plot', this.usage, this.summary, flags)); return 0 }
    if (p.positionals.length === 0) throw new InputError('llmts plot: expects one or more RUN_DIR arguments (directories with log.jsonl)')
    if (p.flags.out === undefined) throw new InputError('llmts plot: --out FILE.svg|FILE.png is required')
    checkOutputDir('llmts plot', '--out', dirname(p.flags.out))
    const summary = await renderPlot(p.positionals, p.flags.out, {
      metric: p.flags.metric, x: p.flags.x, yScale: p.flags['y-scale'], ...(p.flags.title !== undefined ? { title: p.flags.title } : {}),
      smooth: p.flags.smooth, ...(p.flags['y-max'] !== undefined ? { yMax: p.flags['y-max'] } : {}),
    })
    const note = stderrNotes(['plot'])
    for (const { label, nonFinite: n } of summary.runs) {
      if (n > 0) note(`note: run ${label}: ${n} ${plural(n, 'step')} logged a non-finite ${p.flags.metric} (null in log.jsonl); left out`)
    }
    const n = summary.runs.length
    if (n > PLOT_COLOURS) {
      note(`note: ${n} runs but ${PLOT_COLOURS} colours: from run ${PLOT_COLOURS + 1} on the colours repeat (run ${PLOT_COLOURS + 1} has run 1's); ` +
        `plot at most ${PLOT_COLOURS} runs per chart to tell each apart`)
    }
    if (p.flags.json) {
      printJson({ ...summary, metric: p.flags.metric, x: p.flags.x })
    } else {
      process.stdout.write(`plot: wrote ${summary.out}: ${p.flags.metric} by ${p.flags.x} for ${describeRuns(summary.runs)}\n`)
    }
    return 0
  },
}

const LISTED_RUNS = 4   // more are counted, not named: twenty long run names made one line of ~1,700 characters

/** "a (40 points), b (12 points)", or for many runs "20 runs (19073 to 100000 points per run; --json lists each)". */
function describeRuns(runs: { label: string; points: number }[]): string {
  if (runs.length <= LISTED_RUNS) return runs.map(r => `${r.label} (${r.points} ${plural(r.points, 'point')})`).join(', ')
  const counts = runs.map(r => r.points), lo = Math.min(...counts), hi = Math.max(...counts)
  return `${runs.length} runs (${lo === hi ? lo : `${lo} to ${hi}`} ${plural(hi, 'point')} per run; --json lists each)`
}
