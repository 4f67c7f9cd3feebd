// Loss-curve charts: several runs' curves on one chart, one colour per run, drawn with Vega-Lite (compiled
// to Vega, rendered to SVG headlessly) and rasterized to PNG with resvg. No canvas or browser is needed;
// PNG text uses the system fonts. The output file is written atomically.

import { dirname, extname } from 'node:path'
import { InputError } from '../util/errors.js'
import { makeDirs, writeFileAtomic } from '../util/atomic.js'
import { downsampleColumns } from './downsample.js'
import { smoothPoints } from './smooth.js'
import { collectSeries, metricKey, type PlotMetric, type PlotX, type RunSeries } from './runs.js'

interface PlotOptions {
  metric: PlotMetric
  x: PlotX
  title?: string          // default: "<y axis title> by <x>" ("validation loss by tokens")
  yScale?: 'linear' | 'log'
  yMax?: number           // the y axis's top; higher values are clipped (default: the highest value)
  smooth?: number         // TensorBoard's smoothing weight, 0 (none) to < 1
}

interface PlotSummary { out: string; format: 'svg' | 'png'; runs: { label: string; points: number; nonFinite: number }[] }

const SERIES_WITH_MARKERS = 60   // below this many points per run, draw a dot at each point
const WIDTH = 720, HEIGHT = 420   // the plot area in SVG pixels (the PNG is drawn at 2x)
export const PLOT_COLOURS = 20   // distinct line colours: Vega's tableau10, or tableau20 beyond 10 runs
// a legend of more entries or a longer label than these would cover a third of the plot: it goes outside, on the right
const LEGEND_INSIDE = { entries: 6, chars: 32 }
/** The y axis's title per metric (HellaSwag's adds its scoring and shots: metricTitle). */
const METRIC_TITLES: Record<PlotMetric, string> = {
  loss: 'training loss', val_loss: 'validation loss', hellaswag: 'HellaSwag acc_norm',
  lr: 'learning rate', grad_norm: 'gradient norm (before clipping)', tokens_per_s: 'tokens/s',
}

/** Renders the chart of `runDirs` to `out` (.svg or .png), atomically. */
export async function renderPlot(runDirs: string[], out: string, opts: PlotOptions): Promise<PlotSummary> {
  const format = outputFormat(out)
  const series = collectSeries(runDirs, opts.metric, opts.x)
  for (const s of series) {
    if (s.points.length === 0) {
      const why = s.nonFinite > 0 ? ` other than ${s.nonFinite} non-finite ones` : ''
      throw new InputError(`plot: run ${s.label} (${s.dir}) has no "${metricKey[opts.metric]}" values${why} in log.jsonl (try another --metric)`)
    }
  }
  checkYAxis(series, opts)
  const svg = await renderSvg(buildSpec(series, opts))
  const bytes = format === 'svg' ? svg : await svgToPng(svg)
  makeDirs(dirname(out))
  writeFileAtomic(out, bytes)
  return { out, format, runs: series.map(s => ({ label: s.label, points: s.points.length, nonFinite: s.nonFinite })) }
}

/** A log axis needs values > 0; a --y-max at or below every value would leave an empty chart. */
function checkYAxis(series: RunSeries[], opts: PlotOptions): void {
  const lowest = series.map(s => ({ s, p: s.points.reduce((a, b) => (b.y < a.y ? b : a)) })).reduce((a, b) => (b.p.y < a.p.y ? b : a))
  const at = `run ${lowest.s.label}'s ${opts.x} ${lowest.p.x}`
  if (opts.yScale === 'log' && lowest.p.y <= 0) {
    throw new InputError(`plot: --y-scale log needs values above 0, but ${at} has ${metricKey[opts.metric]} ${formatValue(lowest.p.y, -Infinity, opts.metric)} (use --y-scale linear)`)
  }
  if (opts.yMax !== undefined && opts.yMax <= lowest.p.y) {
    const yMax = opts.metric === 'lr' ? opts.yMax.toExponential() : String(opts.yMax)   // 1e-5, not 0.00001
    throw new InputError(`plot: --y-max ${yMax} is at or below every value (the lowest, ${formatValue(lowest.p.y, opts.yMax, opts.metric)}, is ${at}); ` +
      'expected a larger one')
  }
}

/** A logged value for a message: 4 decimals as the step lines' loss, trailing zeros dropped (3.3, not
 *  3.3000000000000003); 3 significant digits below 1e-4, which 4 decimals would show as 0; more decimals while the
 *  rounded value would read below `atLeast` (a lowest value shown under the --y-max it refutes). A learning rate
 *  (1e-5 to 1e-3, where 4 decimals keep one digit or none) has 3 significant digits and an exponent, 1.20e-3; tokens/s
 *  has no decimals. */
export function formatValue(y: number, atLeast = -Infinity, metric: PlotMetric = 'loss'): string {
  if (metric === 'lr' && y !== 0) {
    let digits = 2
    while (digits < 16 && Number(y.toExponential(digits)) < atLeast) digits++
    return y.toExponential(digits)
  }
  if (y !== 0 && Math.abs(y) < 1e-4) return String(Number(y.toPrecision(3)))
  let digits = metric === 'tokens_per_s' ? 0 : 4   // a throughput in whole tokens/s
  while (digits < 17 && Number(y.toFixed(digits)) < atLeast) digits++
  return String(Number(y.toFixed(digits)))
}

/** 'svg' or 'png' from the file name; anything else is an InputError. */
export function outputFormat(out: string): 'svg' | 'png' {
  const ext = extname(out).toLowerCase()
  if (ext === '.svg') return 'svg'
  if (ext === '.png') return 'png'
  throw new InputError(`plot: --out ${out} has extension "${ext}", expected .svg or .png`)
}

/** The y-axis title; HellaSwag names its scoring and shots when every run logged the same ones. */
function metricTitle(metric: PlotMetric, series: RunSeries[]): string {
  if (metric !== 'hellaswag') return METRIC_TITLES[metric]
  const tags = sharedHellaswagTags(series)
  return `${METRIC_TITLES.hellaswag}${tags !== undefined && tags !== '' ? ` (${tags})` : ''}`
}

/** The HellaSwag tags all runs share, or undefined when they differ (each legend entry then names its own). */
function sharedHellaswagTags(series: RunSeries[]): string | undefined {
  const all = new Set(series.map(s => s.hellaswag ?? ''))
  return all.size === 1 ? [...all][0] : undefined
}

/** Legend entries: run labels, with each run's HellaSwag tags when the runs' tags differ (one title cannot say). */
function legendLabels(series: RunSeries[], metric: PlotMetric): string[] {
  const own = metric === 'hellaswag' && sharedHellaswagTags(series) === undefined
  return series.map(s => (own && s.hellaswag ? `${s.label} (${s.hellaswag})` : s.label))
}

/** The Vega-Lite specification: one line per run, coloured and labelled by run, with a dot per point for runs of
 *  fewer than SERIES_WITH_MARKERS points (a run of one point is a dot, not an invisible line). */
function buildSpec(series: RunSeries[], opts: PlotOptions): Record<string, unknown> {
  const yTitle = metricTitle(opts.metric, series)
  const xTitle = opts.x === 'tokens' ? 'tokens' : 'step'
  const labels = legendLabels(series, opts.metric)
  // one x range for all runs: a run half as long gets half the columns, as it gets half the width
  const x0 = Math.min(...series.map(s => s.points[0]!.x)), x1 = Math.max(...series.map(s => s.points.at(-1)!.x))
  const values = series.flatMap((s, i) => {
    const dots = s.points.length < SERIES_WITH_MARKERS
    const curve = smoothPoints(s.points, opts.smooth ?? 0)   // smoothed first: a column's extremes are the smoothed curve's
    return downsampleColumns(curve, x0, x1, WIDTH).map(p => ({ run: labels[i]!, x: p.x, y: p.y, dots }))
  })
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: opts.title ?? `${yTitle} by ${xTitle}`, fontSize: 16 },
    width: WIDTH,
    height: HEIGHT,
    background: 'white',
    padding: 12,
    data: { values },
    layer: [   // clipped to the plot: --y-max cuts the curves
      { mark: { type: 'line', strokeWidth: 2, clip: true } },
      { mark: { type: 'point', filled: true, size: 30, clip: true }, transform: [{ filter: 'datum.dots' }] },
    ],
    encoding: {
      x: {
        field: 'x', type: 'quantitative', title: xTitle,
        axis: {
          format: opts.x === 'tokens' ? '~s' : '~d', ...(opts.x === 'step' ? { tickMinStep: 1 } : {}),   // no half steps
          labelExpr: "datum.value === 0 ? '0' : datum.label", labelFontSize: 12, titleFontSize: 14,
        },
      },
      y: { field: 'y', type: 'quantitative', title: yTitle, scale: yScale(opts), axis: { ...yFormat(opts.metric), labelFontSize: 12, titleFontSize: 14 } },
      color: {
        field: 'run', type: 'nominal', title: 'run', sort: labels,
        ...(labels.length > 10 ? { scale: { scheme: 'tableau20' } } : {}),   // the default's 10 colours would repeat
        legend: { orient: legendOrient(labels, opts.metric), labelFontSize: 13, titleFontSize: 13,
          labelLimit: 0 /* never cut a label */, fillColor: 'white', strokeColor: '#ccc', padding: 6 },
      },
    },
  }
}

/** The y scale: from the values (not from 0), linear or log, up to --y-max when given. */
function yScale(opts: PlotOptions): Record<string, unknown> {
  const top = opts.yMax !== undefined ? { domainMax: opts.yMax } : {}
  // log: the values' own range; rounding it out to powers of 10 would put 3 to 11 between 1 and 100
  return opts.yScale === 'log' ? { type: 'log', nice: false, ...top } : { zero: false, ...top }
}

/** The y axis's labels: a learning rate's with an exponent, as in the messages (6e-4, 1.2e-3, where d3's default
 *  reads 0.0006, 0.0012, and 1e-5 as 0.00001); the default, from the tick step, for the others. */
function yFormat(metric: PlotMetric): Record<string, unknown> {
  return metric === 'lr' ? { format: '~e', labelExpr: "datum.value === 0 ? '0' : datum.label" } : {}
}

/** Inside the corner the curves leave empty when the legend is small: top right for values that fall (losses, the
 *  gradient norm, a learning rate decayed after its warmup), bottom right for rising accuracy and for throughput (flat
 *  near its top, dipping at slow steps); outside on the right when it would hide the curves (many runs, long names: a
 *  name is never cut, since runs' names often differ only at the end). */
function legendOrient(labels: string[], metric: PlotMetric): string {
  const small = labels.length <= LEGEND_INSIDE.entries && Math.max(...labels.map(l => l.length)) <= LEGEND_INSIDE.chars
  return !small ? 'right' : metric === 'hellaswag' || metric === 'tokens_per_s' ? 'bottom-right' : 'top-right'
}

/** Compiles Vega-Lite and renders SVG headlessly (libraries loaded on first use). */
async function renderSvg(spec: Record<string, unknown>): Promise<string> {
  const [{ compile }, vega] = await Promise.all([import('vega-lite'), import('vega')])
  const compiled = compile(spec as unknown as Parameters<typeof compile>[0]).spec
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

/** Rasterizes SVG at 2x with resvg; text uses the system's fonts. */
async function svgToPng(svg: string): Promise<Uint8Array> {
  const { Resvg } = await import('@resvg/resvg-js')
  const r = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  })
  return r.render().asPng()
}
