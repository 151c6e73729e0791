// Charts: vega-lite specs compiled by vega to SVG in Node (no browser, no canvas), and PNG via resvg.
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { projected, WARMUP_STEPS, type Run } from './runs.ts';

/** Keeps every SVG small enough to inline in report.html: long runs are thinned to about this many points per series. */
const MAX_POINTS = 800;
/**
 * EMA factor for the smoothed train loss: a window of about a fifteenth of the run, at most 50
 * steps (β = 0.98). A fixed 50-step window would trail far behind a short run's falling loss.
 */
export function emaBeta(steps: number): number {
  const window = Math.min(50, Math.max(1, Math.round(steps / 15)));
  return 1 - 1 / window;
}
const FONT = 'DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif';

/** Every k-th element (and always the last) so that at most `max` remain. */
function thin<T>(xs: T[], max = MAX_POINTS): T[] {
  if (xs.length <= max) return xs;
  const k = Math.ceil(xs.length / max);
  return xs.filter((_, i) => i % k === 0 || i === xs.length - 1);
}

/** Bias-corrected EMA (as in Adam) so the curve starts at the first loss instead of at 0. Skips nulls. */
function ema(values: (number | null)[], beta: number): (number | null)[] {
  let m = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return null;
    m = beta * m + (1 - beta) * v;
    n++;
    return m / (1 - beta ** n);
  });
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
}

/** Same colour for the same run on every chart. */
function colorScale(runs: Run[]) {
  return { domain: runs.map((r) => r.label), scheme: 'tableau10' };
}

const base = {
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  background: 'white',
  padding: 12,
  config: {
    font: FONT,
    title: { fontSize: 15, subtitleFontSize: 11, subtitleColor: '#555', anchor: 'start' as const },
    axis: { labelFontSize: 11, titleFontSize: 12, grid: true, gridColor: '#e6e6e6' },
    legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 },
    view: { stroke: '#bbb' },
  },
};

// '~s' gives 2M, 4M, …; the zero tick would read "0M".
const tokensAxis = { title: 'Tokens processed', tickCount: 8, labelExpr: "datum.value === 0 ? '0' : format(datum.value, '~s')" };
const tokensScale = { zero: true };

/** Round-number ticks for a log axis spanning [lo, hi] (vega's own log ticks are sparse over one decade). */
function logTicks(lo: number, hi: number): number[] {
  const ticks = (mantissas: number[]) => {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
      for (const m of mantissas) out.push(Number((m * 10 ** e).toPrecision(6)));
    // Widen to the ticks just outside the data so both ends of the axis are labelled.
    const first = out.filter((v) => v <= lo).at(-1) ?? lo;
    const last = out.find((v) => v >= hi) ?? hi;
    return out.filter((v) => v >= first && v <= last);
  };
  const fine = ticks([1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8]);
  return fine.length <= 12 ? fine : ticks([1, 2, 5]); // several decades: 1-2-5 is dense enough
}

/** (a) Train loss (thin raw + EMA) and validation loss (points) against tokens, log y. */
export function lossSpec(runs: Run[]): TopLevelSpec {
  const beta = emaBeta(Math.max(0, ...runs.map((r) => r.train.length)));
  const train = runs.flatMap((r) => {
    const smooth = ema(r.train.map((t) => t.loss), beta);
    return thin(r.train.map((t, i) => ({ run: r.label, tokens: t.tokens, loss: t.loss, ema: smooth[i] })));
  }).filter((d) => d.loss !== null && d.loss > 0); // log scale: drop non-finite/non-positive
  const val = runs.flatMap((r) => r.evals.filter((e) => e.valLoss !== null && e.valLoss > 0).map((e) => ({ run: r.label, tokens: e.tokens, loss: e.valLoss })));
  const all = [...train.flatMap((d) => [d.loss as number, d.ema ?? (d.loss as number)]), ...val.map((d) => d.loss as number)];
  // No finite loss at all (every run diverged at once): let vega pick an empty axis.
  const values = all.length > 0 ? logTicks(Math.min(...all), Math.max(...all)) : undefined;
  const domain = values ? [values[0]!, values.at(-1)!] : undefined;
  // The legend symbol would otherwise take the faint raw-loss layer's opacity.
  const color = { field: 'run', type: 'nominal' as const, title: 'Optimizer', scale: colorScale(runs), legend: { symbolOpacity: 1 } };
  const x = { field: 'tokens', type: 'quantitative' as const, axis: tokensAxis, scale: tokensScale };
  const y = { type: 'quantitative' as const, scale: { type: 'log' as const, domain, nice: false }, axis: { title: 'Cross-entropy loss (nats/token, log scale)', values } };
  return {
    ...base,
    title: { text: 'Loss convergence', subtitle: `Thin: train loss per step · line: train loss EMA (β=${+beta.toFixed(3)}) · dots: validation loss` },
    width: 640,
    height: 360,
    layer: [
      { data: { values: train }, mark: { type: 'line', strokeWidth: 0.7, opacity: 0.3 }, encoding: { x, y: { ...y, field: 'loss' }, color, detail: { field: 'run' } } },
      { data: { values: train.filter((d) => d.ema !== null) }, mark: { type: 'line', strokeWidth: 2 }, encoding: { x, y: { ...y, field: 'ema' }, color } },
      { data: { values: val }, mark: { type: 'point', filled: true, size: val.length > 40 * runs.length ? 25 : 55, stroke: 'white', strokeWidth: 1, opacity: 1 }, encoding: { x, y: { ...y, field: 'loss' }, color } },
    ],
  } as TopLevelSpec;
}

/** (b) Validation next-token accuracy against tokens. */
export function accuracySpec(runs: Run[]): TopLevelSpec {
  const values = runs.flatMap((r) => r.evals.filter((e) => e.valAcc !== null).map((e) => ({ run: r.label, tokens: e.tokens, acc: e.valAcc })));
  return {
    ...base,
    title: { text: 'Validation accuracy', subtitle: 'Next-token top-1 accuracy on the validation split' },
    width: 640,
    height: 320,
    data: { values },
    mark: { type: 'line', point: { filled: true, size: 45 }, strokeWidth: 2 },
    encoding: {
      x: { field: 'tokens', type: 'quantitative', axis: tokensAxis, scale: tokensScale },
      y: { field: 'acc', type: 'quantitative', scale: { zero: false }, axis: { title: 'Validation accuracy', format: '.1%' } },
      color: { field: 'run', type: 'nominal', title: 'Optimizer', scale: colorScale(runs) },
    },
  } as TopLevelSpec;
}

/**
 * (c) Computation time. Top: wall time per step; estimator steps (Sophia) are drawn as separate
 * points so their spikes stand out from the ordinary steps. Bottom: mean ms/step split into the
 * update and the (amortized) estimator, tokens/s, and time per epoch where known.
 */
export function timeSpec(runs: Run[]): TopLevelSpec {
  const isEst = (ms: number | null) => ms !== null && ms > 0;
  // The first steps include shader compilation and can be 100× slower; cap the axis at 1.25 × p99
  // so the steady state stays readable. Slower steps are drawn at the cap (clamped in the data:
  // resvg 2.6 panics on marks that a clip path hides completely).
  const all = runs.flatMap((r) => r.train.map((t) => t.stepMs).filter((v): v is number => v !== null));
  const cap = quantile(all, 0.99) * 1.25;
  const clipped = all.some((ms) => ms > cap);
  const steps = runs.flatMap((r) => {
    const timed = r.train.filter((t) => t.stepMs !== null);
    const point = (t: (typeof timed)[number], est: boolean) => ({ run: r.label, est, step: t.step, ms: Math.min(t.stepMs!, cap) });
    const plain = thin(timed.filter((t) => !isEst(t.estimatorMs))).map((t) => point(t, false));
    const est = thin(timed.filter((t) => isEst(t.estimatorMs)), MAX_POINTS / 2).map((t) => point(t, true));
    return [...plain, ...est];
  });
  const color = { field: 'run', type: 'nominal' as const, title: 'Optimizer', scale: colorScale(runs), legend: { orient: 'top' as const } };

  const bars = runs.flatMap((r) => {
    // As the table: after the warm-up steps (shader compilation), when the run had more.
    const rows = r.train.length > WARMUP_STEPS ? r.train.filter((t) => t.step > WARMUP_STEPS) : r.train;
    const ms = rows.map((t) => t.stepMs).filter((v): v is number => v !== null);
    const est = rows.reduce((a, t) => a + (t.estimatorMs ?? 0), 0);
    const mean = ms.reduce((a, v) => a + v, 0) / Math.max(1, ms.length);
    const estMean = est / Math.max(1, ms.length);
    const parts = [{ run: r.label, part: 'update', ms: mean - estMean, order: 0 }];
    if (est > 0) parts.push({ run: r.label, part: 'Hessian estimator', ms: estMean, order: 1 });
    return parts;
  });
  const throughput = runs.map((r) => ({ run: r.label, tps: r.summary.tokensPerS, epoch: r.summary.timePerEpochS }));
  const barY = { field: 'run', type: 'nominal' as const, title: null, sort: runs.map((r) => r.label) };
  const small = { width: 200, height: 22 * runs.length + 10 };
  const hasEpoch = throughput.some((d) => d.epoch !== null);

  return {
    ...base,
    title: { text: 'Computation time', subtitle: ['Wall time per training step; ▲ = a step that also ran the Hessian estimator', ...(clipped ? ['Slower steps (e.g. the first ones: shader compilation) are drawn at the top edge'] : [])] },
    vconcat: [
      {
        width: 820,
        height: 300,
        data: { values: steps },
        layer: [
          { transform: [{ filter: '!datum.est' }], mark: { type: 'line', strokeWidth: 0.8, opacity: 0.8 }, encoding: { x: { field: 'step', type: 'quantitative', title: 'Training step' }, y: { field: 'ms', type: 'quantitative', title: 'Time per step (ms)', scale: cap > 0 ? { domain: [0, cap], nice: false } : {} }, color } },
          {
            transform: [{ filter: 'datum.est' }],
            mark: { type: 'point', shape: 'triangle-up', filled: true, size: 30 },
            encoding: {
              x: { field: 'step', type: 'quantitative' },
              y: { field: 'ms', type: 'quantitative' },
              color,
            },
          },
        ],
      },
      {
        resolve: { scale: { color: 'independent' } },
        hconcat: [
          {
            ...small,
            title: { text: 'Mean time per step after the warm-up (ms, estimator amortized)', fontSize: 12 },
            data: { values: bars },
            mark: 'bar',
            encoding: {
              y: barY,
              x: { field: 'ms', type: 'quantitative', stack: 'zero', title: 'ms', axis: { grid: true } },
              // Greys: the split must not be mistaken for an optimizer's colour.
              color: { field: 'part', type: 'nominal', title: null, legend: { orient: 'bottom' }, scale: { domain: ['update', 'Hessian estimator'], range: ['#b0b7bf', '#33383d'] } },
              order: { field: 'order' },
              tooltip: [{ field: 'part' }, { field: 'ms', format: '.1f' }],
            },
          },
          {
            ...small,
            title: { text: 'Throughput (tokens/s)', fontSize: 12 },
            data: { values: throughput.filter((d) => d.tps !== null) },
            mark: 'bar',
            encoding: { y: barY, x: { field: 'tps', type: 'quantitative', title: 'tokens/s', axis: { labelExpr: tokensAxis.labelExpr } }, color: { ...color, legend: null } },
          },
          ...(hasEpoch
            ? [{
                ...small,
                title: { text: runs.some(projected) ? 'Time per epoch (s, projected from the steps run)' : 'Time per epoch (s)', fontSize: 12 },
                data: { values: throughput.filter((d) => d.epoch !== null) },
                mark: 'bar' as const,
                encoding: { y: barY, x: { field: 'epoch', type: 'quantitative' as const, title: 's' }, color: { ...color, legend: null } },
              }]
            : []),
        ],
      },
    ],
    resolve: { scale: { color: 'independent' } },
  } as TopLevelSpec;
}

/** vega-lite → vega → SVG string, headless. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

let fontOptions: { fontFiles: string[]; family: string | undefined } | undefined;

/**
 * resvg draws no text at all without a font. Look for a common sans font in the usual font
 * folders (on Debian: apt-get install fonts-dejavu-core) and warn once if there is none.
 */
function fonts(): { fontFiles: string[]; family: string | undefined } {
  if (fontOptions) return fontOptions;
  const dirs = ['/usr/share/fonts', '/usr/local/share/fonts', join(homedir(), '.fonts'), join(homedir(), '.local/share/fonts'), '/Library/Fonts', '/System/Library/Fonts', 'C:\\Windows\\Fonts'];
  const wanted: [RegExp, string][] = [
    [/^DejaVuSans(-Bold)?\.ttf$/, 'DejaVu Sans'],
    [/^LiberationSans-(Regular|Bold)\.ttf$/, 'Liberation Sans'],
    [/^(Arial|arial|arialbd)\.ttf$/, 'Arial'],
    [/^NotoSans-(Regular|Bold)\.ttf$/, 'Noto Sans'],
    [/^FreeSans(Bold)?\.ttf$/, 'FreeSans'],
  ];
  const found = new Map<string, string[]>(); // family → its files
  const walk = (dir: string, depth: number) => {
    if (depth > 4 || !existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name), depth + 1);
      const family = e.isDirectory() ? undefined : wanted.find(([re]) => re.test(e.name))?.[1]; // files or symlinks
      if (family) found.set(family, [...(found.get(family) ?? []), join(dir, e.name)]);
    }
  };
  for (const d of dirs) {
    try {
      walk(d, 0);
    } catch {
      // unreadable font folder: skip it
    }
  }
  const family = wanted.map(([, f]) => f).find((f) => found.has(f)); // first in order of preference
  const files = family ? found.get(family)! : [];
  if (!family) console.warn('[report] no sans font (DejaVu, Liberation, Arial, Noto, FreeSans) found: PNG charts will have no text. On Debian: apt-get install fonts-dejavu-core');
  fontOptions = { fontFiles: files, family };
  return fontOptions;
}

/** SVG → PNG at 2× for crisp text. Only the chosen font files are loaded (scanning every system font is slow). */
export function svgToPng(svg: string): Buffer {
  const { fontFiles, family } = fonts();
  const resvg = new Resvg(svg, {
    font: { loadSystemFonts: fontFiles.length === 0, fontFiles, ...(family ? { defaultFontFamily: family, sansSerifFamily: family } : {}) },
    fitTo: { mode: 'zoom', value: 2 },
    background: 'white',
    logLevel: 'off',
  });
  return resvg.render().asPng();
}
