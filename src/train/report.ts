// Results of the optimizer comparison: per-run metrics.csv, a results table (Markdown and plain
// text), loss / accuracy / time charts (SVG + PNG) and one self-contained report.html.
//
//   npx tsx src/train/report.ts <outDir> <runDir>...
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { accuracySpec, lossSpec, renderSvg, svgToPng, timeSpec } from './report/charts.ts';
import { FINAL_LOSS_STEPS, projected, readRuns, writeMetricsCsv, type Run } from './report/runs.ts';

export { readRun, readRuns, readMetrics, metricsCsv, writeMetricsCsv } from './report/runs.ts';
export type { Run, Summary, MetricRecord, TrainRecord, EvalRecord } from './report/runs.ts';
export { lossSpec, accuracySpec, timeSpec, renderSvg, svgToPng } from './report/charts.ts';

const fixed = (digits: number) => (v: number | null) => (v === null ? '—' : v.toFixed(digits));
const percent = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(2)}%`);
const thousands = (v: number | null) => (v === null ? '—' : Math.round(v).toLocaleString('en-US'));

const COLUMNS: [string, (r: Run) => string][] = [
  ['Optimizer', (r) => r.label],
  [`Train loss (last ${FINAL_LOSS_STEPS} steps)`, (r) => fixed(4)(r.summary.finalTrainLoss)],
  ['Val loss', (r) => fixed(4)(r.summary.valLoss)],
  ['Val perplexity', (r) => fixed(2)(r.summary.valPpl)],
  ['Val accuracy', (r) => percent(r.summary.valAcc)],
  ['Time/epoch (s)', (r) => fixed(1)(r.summary.timePerEpochS) + (r.summary.timePerEpochS !== null && projected(r) ? ' (projected)' : '')],
  ['Tokens/s', (r) => thousands(r.summary.tokensPerS)],
  // The first steps compile the shaders (the first run of a job compiles most): left out of the
  // columns beside it and shown here.
  ['Warm-up (s)', (r) => fixed(1)(r.summary.warmupS ?? null)],
  // Only Sophia has an estimator; the others show "—".
  ['Estimator overhead (% of step time)', (r) => (r.summary.estimatorOverhead === null ? '—' : `${(r.summary.estimatorOverhead * 100).toFixed(1)}%`)],
];

// Shown after the validation columns when any run scored the test split (--test-eval).
const TEST_COLUMNS: [string, (r: Run) => string][] = [
  ['Test loss', (r) => fixed(4)(r.summary.testLoss)],
  ['Test perplexity', (r) => fixed(2)(r.summary.testPpl)],
  ['Test accuracy', (r) => percent(r.summary.testAcc)],
];

/** Header and formatted cells, shared by the Markdown, text and HTML tables so they always agree. */
export function tableCells(runs: Run[]): { header: string[]; rows: string[][] } {
  const withTest = runs.some((r) => r.summary.testLoss !== null);
  const cols = withTest ? [...COLUMNS.slice(0, 5), ...TEST_COLUMNS, ...COLUMNS.slice(5)] : COLUMNS;
  return { header: cols.map(([h]) => h), rows: runs.map((r) => cols.map(([, f]) => f(r))) };
}

/** One row per run: Markdown for results.md and aligned plain text for the terminal. */
export function resultsTable(runs: Run[]): { markdown: string; text: string } {
  const { header, rows } = tableCells(runs);
  const md = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  const align = header.map((_, i) => (i === 0 ? ':---' : '---:'));
  const markdown = [md(header), md(align), ...rows.map(md)].join('\n') + '\n';
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const text = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n') + '\n';
  return { markdown, text };
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function configRows(config: Record<string, unknown>): string {
  return Object.entries(config)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(typeof v === 'string' ? v : JSON.stringify(v))}</td></tr>`)
    .join('\n');
}

function html(runs: Run[], svgs: { name: string; svg: string }[]): string {
  const { header, rows } = tableCells(runs);
  const table = `<table class="results"><thead><tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>\n${rows
    .map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`)
    .join('\n')}\n</tbody></table>`;
  const runSections = runs
    .map(
      (r) => `<section class="run"><h3>${escapeHtml(r.label)}</h3>
<p class="dir">${escapeHtml(r.dir)}</p>
<details><summary>Configuration</summary><table class="config">${configRows(r.config)}</table></details>
<h4>Sample</h4><pre>${escapeHtml(r.sample || '(no sample.txt)')}</pre></section>`,
    )
    .join('\n');
  // SVGs come from vega (which escapes its own text), so they are inlined as they are, except that
  // ids (clip paths, gradients) get a per-chart prefix: in one HTML document ids must be unique.
  const inline = (name: string, svg: string) =>
    svg.replace(/\bid="/g, `id="${name}-`).replace(/url\(#/g, `url(#${name}-`).replace(/href="#/g, `href="#${name}-`);
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Optimizer comparison</title>
<style>
body { font-family: 'DejaVu Sans', Arial, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; }
table.results td:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
table.config th { text-align: left; background: #f5f5f5; }
pre { white-space: pre-wrap; background: #f7f7f7; padding: 0.8em; border-radius: 4px; }
figure { margin: 1.5em 0; } .dir { color: #777; font-size: 0.85em; }
</style></head><body>
<h1>Optimizer comparison</h1>
<p>Generated ${escapeHtml(new Date().toISOString())} from ${runs.length} run(s).</p>
<h2>Results</h2>
${table}
<h2>Charts</h2>
${svgs.map((s) => `<figure>${inline(s.name, s.svg)}</figure>`).join('\n')}
<h2>Runs</h2>
${runSections}
</body></html>
`;
}

/**
 * Reads the run directories, writes each run's metrics.csv, and writes to outDir: results.md,
 * loss / accuracy / time charts as .svg and .png, and report.html (everything inlined).
 */
export async function writeReport(outDir: string, runDirs: string[]): Promise<{ runs: Run[]; files: string[]; table: ReturnType<typeof resultsTable> }> {
  if (runDirs.length === 0) throw new Error('writeReport: no run directories given');
  const runs = readRuns(runDirs);
  for (const dir of runDirs) writeMetricsCsv(dir);
  mkdirSync(outDir, { recursive: true });
  const files: string[] = [];
  const write = (name: string, data: string | Buffer) => {
    const path = join(outDir, name);
    writeFileSync(path, data);
    files.push(path);
  };
  const table = resultsTable(runs);
  write('results.md', `# Optimizer comparison\n\n${table.markdown}`);
  const charts = [
    { name: 'loss', spec: lossSpec(runs) },
    { name: 'accuracy', spec: accuracySpec(runs) },
    { name: 'time', spec: timeSpec(runs) },
  ];
  const svgs: { name: string; svg: string }[] = [];
  for (const c of charts) {
    const svg = await renderSvg(c.spec);
    write(`${c.name}.svg`, svg);
    write(`${c.name}.png`, svgToPng(svg));
    svgs.push({ name: c.name, svg });
  }
  write('report.html', html(runs, svgs));
  return { runs, files, table };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [outDir, ...runDirs] = process.argv.slice(2);
  if (!outDir || runDirs.length === 0) {
    console.error('usage: npx tsx src/train/report.ts <outDir> <runDir>...');
    process.exit(2);
  }
  const { table, files } = await writeReport(outDir, runDirs);
  console.log(table.text);
  console.log(files.join('\n'));
}
