// The results module on three synthetic runs: CSV, table, charts (SVG + PNG), report.html, and
// clear errors for broken input. No GPU needed.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics, readRun, readRuns, resultsTable, writeMetricsCsv, writeReport } from '../../src/train/report.ts';

const root = mkdtempSync(join(tmpdir(), 'report-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const STEPS = 60;
const EVAL_EVERY = 20;
const TOKENS_PER_STEP = 4096;

interface Fake { optimizer: string; rate: number; stepMs: number; seed?: number; summary?: boolean }

/** A run directory with smooth synthetic curves; Sophia runs its estimator every 10 steps. */
function fakeRun(name: string, f: Fake): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const sophia = f.optimizer === 'sophia';
  const lines: string[] = [];
  for (let step = 1; step <= STEPS; step++) {
    const tokens = step * TOKENS_PER_STEP;
    const estimatorMs = sophia && step % 10 === 0 ? 5 : null;
    lines.push(JSON.stringify({
      type: 'train', step, epoch: 0, tokens, lr: 1e-3, loss: 3 + 8 * Math.exp(-f.rate * step), gradNorm: 1 + 1 / step,
      winRate: sophia ? 0.25 : null, stepMs: f.stepMs + (estimatorMs ?? 0), estimatorMs,
    }));
    if (step % EVAL_EVERY === 0) {
      const valLoss = 3.1 + 8 * Math.exp(-f.rate * step);
      lines.push(JSON.stringify({ type: 'eval', step, epoch: 0, tokens, valLoss, valPpl: Math.exp(valLoss), valAcc: 0.3 - 0.2 * Math.exp(-f.rate * step) }));
    }
  }
  writeFileSync(join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ optimizer: f.optimizer, model: 'gpt2-tiny', dataset: 'wikitext-2', seed: f.seed ?? 0, adapter: 'test <adapter>' }));
  if (f.summary !== false) {
    writeFileSync(join(dir, 'summary.json'), JSON.stringify({
      optimizer: f.optimizer, finalTrainLoss: 3.25, valLoss: 3.5, valPpl: Math.exp(3.5), valAcc: 0.2875, timePerEpochS: 12.5, epochs: sophia ? 0.5 : 1,
      tokensPerS: 123456.7, estimatorOverhead: sophia ? 0.0123 : null, warmupS: 4.25, steps: STEPS, tokens: STEPS * TOKENS_PER_STEP, wallS: 1,
    }));
  }
  writeFileSync(join(dir, 'sample.txt'), `${f.optimizer} says <script>alert("x")</script> & more`);
  return dir;
}

/** Minimal well-formedness check: every tag closes in order (vega's SVG has no CDATA or comments). */
function checkXml(xml: string): void {
  const stack: string[] = [];
  for (const m of xml.matchAll(/<(\/?)([A-Za-z][\w:-]*)[^>]*?(\/?)>/g)) {
    const [, close, name, selfClose] = m;
    if (selfClose) continue;
    if (close) expect(stack.pop(), `closing </${name}>`).toBe(name);
    else stack.push(name!);
  }
  expect(stack).toEqual([]);
}

describe('writeReport', () => {
  let dirs: string[];
  let out: string;
  let result: Awaited<ReturnType<typeof writeReport>>;

  beforeAll(async () => {
    dirs = [
      fakeRun('sophia', { optimizer: 'sophia', rate: 0.08, stepMs: 30 }),
      fakeRun('adam', { optimizer: 'adam', rate: 0.06, stepMs: 25 }),
      fakeRun('sgd', { optimizer: 'sgd', rate: 0.02, stepMs: 24 }),
    ];
    out = join(root, 'out');
    result = await writeReport(out, dirs);
  });

  it('writes every file', () => {
    for (const f of ['results.md', 'loss.svg', 'loss.png', 'accuracy.svg', 'accuracy.png', 'time.svg', 'time.png', 'report.html']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    for (const d of dirs) expect(existsSync(join(d, 'metrics.csv'))).toBe(true);
  });

  it('metrics.csv has one row per record, train and eval columns apart', () => {
    const lines = readFileSync(join(dirs[0]!, 'metrics.csv'), 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe('step,epoch,tokens,lr,train_loss,grad_norm,win_rate,step_ms,estimator_ms,val_loss,val_ppl,val_acc');
    expect(lines.length).toBe(1 + STEPS + STEPS / EVAL_EVERY);
    const rows = lines.slice(1).map((l) => l.split(','));
    expect(rows.every((r) => r.length === 12)).toBe(true);
    // Step 10 of Sophia: the estimator ran (5 ms of the 35 ms step).
    expect(rows[9]).toEqual(['10', '0', '40960', '0.001', String(3 + 8 * Math.exp(-0.8)), '1.1', '0.25', '35', '5', '', '', '']);
    expect(rows[0]![8]).toBe(''); // no estimator at step 1
    const evalRow = rows.find((r) => r[0] === '20' && r[9] !== '')!;
    expect(evalRow.slice(3, 9)).toEqual(['', '', '', '', '', '']);
    expect(Number(evalRow[9])).toBeCloseTo(3.1 + 8 * Math.exp(-1.6), 12);
    // Non-Sophia runs: null win rate and estimator time become empty cells.
    const adam = readFileSync(join(dirs[1]!, 'metrics.csv'), 'utf8').split('\n')[1]!.split(',');
    expect(adam[6]).toBe('');
    expect(adam[8]).toBe('');
  });

  it('the table shows the summary values, one row per optimizer', () => {
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    expect(md).toContain('| sophia | 3.2500 | 3.5000 | 33.12 | 28.75% | 12.5 (projected) | 123,457 | 4.3 | 1.2% |');
    expect(md).toContain('| adam | 3.2500 | 3.5000 | 33.12 | 28.75% | 12.5 | 123,457 | 4.3 | — |');
    expect(md.split('\n').filter((l) => l.startsWith('| ')).length).toBe(2 + 3);
    const text = result.table.text.split('\n');
    expect(text[0]).toMatch(/^Optimizer\s+Train loss \(last 10 steps\)\s+Val loss/);
    expect(text[2]).toMatch(/^sophia\s+3\.2500\s+3\.5000\s+33\.12\s+28\.75%\s+12\.5 \(projected\)\s+123,457\s+4\.3\s+1\.2%$/);
    // Columns line up: every row has the same length.
    expect(new Set(text.filter(Boolean).map((l) => l.length)).size).toBe(1);
  });

  it('SVGs are well-formed and name every optimizer', () => {
    for (const f of ['loss.svg', 'accuracy.svg', 'time.svg']) {
      const svg = readFileSync(join(out, f), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      checkXml(svg);
      expect(svg).not.toMatch(/NaN|Infinity/);
      for (const name of ['sophia', 'adam', 'sgd']) expect(svg, `${f}: ${name}`).toContain(`>${name}</text>`);
    }
    expect(readFileSync(join(out, 'loss.svg'), 'utf8')).toContain('Tokens processed');
    expect(readFileSync(join(out, 'time.svg'), 'utf8')).toContain('Hessian estimator');
  });

  it('PNGs are PNGs of a plausible size', () => {
    for (const f of ['loss.png', 'accuracy.png', 'time.png']) {
      const png = readFileSync(join(out, f));
      expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      const width = png.readUInt32BE(16);
      const height = png.readUInt32BE(20);
      expect(width, f).toBeGreaterThan(800);
      expect(width, f).toBeLessThan(4000);
      expect(height, f).toBeGreaterThan(400);
      expect(png.length, f).toBeGreaterThan(20_000);
    }
  });

  it('report.html inlines the charts and escapes run text', () => {
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html.match(/<svg/g)?.length).toBe(3);
    expect(html).toContain('<td>sophia</td><td>3.2500</td>');
    expect(html).toContain('sophia says &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more');
    expect(html).toContain('test &lt;adapter&gt;');
    expect(html).not.toContain('<script>');
    expect(html).not.toMatch(/<img|<link|src="http/); // self-contained
  });
});

describe('run input', () => {
  it('derives the summary from the metrics when summary.json is missing', () => {
    const run = readRun(fakeRun('nosummary', { optimizer: 'sophia', rate: 0.05, stepMs: 20, summary: false }));
    // The mean of the last ten steps' losses (steps STEPS−9 … STEPS).
    const last10 = Array.from({ length: 10 }, (_, i) => 3 + 8 * Math.exp(-0.05 * (STEPS - i))).reduce((a, b) => a + b) / 10;
    expect(run.summary.finalTrainLoss).toBeCloseTo(last10, 12);
    expect(run.summary.valLoss).toBeCloseTo(3.1 + 8 * Math.exp(-0.05 * STEPS), 12);
    // 6 estimator steps of 5 ms over 60 steps of 20 ms plus those 30 ms.
    expect(run.summary.estimatorOverhead).toBeCloseTo(30 / (60 * 20 + 30), 12);
    expect(run.summary.tokensPerS).toBeCloseTo((STEPS * TOKENS_PER_STEP) / 1.23, 6);
    expect(resultsTable([run]).markdown).toContain('| — |'); // time per epoch unknown
  });

  it('labels runs of the same optimizer by seed', () => {
    const runs = readRuns([
      fakeRun('s1', { optimizer: 'sophia', rate: 0.05, stepMs: 20, seed: 1 }),
      fakeRun('s2', { optimizer: 'sophia', rate: 0.05, stepMs: 20, seed: 2 }),
    ]);
    expect(runs.map((r) => r.label)).toEqual(['sophia (seed 1)', 'sophia (seed 2)']);
  });

  it('a missing metrics.jsonl is an error naming the file', async () => {
    const dir = fakeRun('missing', { optimizer: 'adam', rate: 0.05, stepMs: 20 });
    rmSync(join(dir, 'metrics.jsonl'));
    expect(() => writeMetricsCsv(dir)).toThrow(`${join(dir, 'metrics.jsonl')}: file not found`);
    await expect(writeReport(join(root, 'out-missing'), [dir])).rejects.toThrow(/missing\/metrics\.jsonl: file not found/);
  });

  it('a malformed line is an error naming the file and line', () => {
    const file = join(root, 'bad.jsonl');
    const good = JSON.stringify({ type: 'train', step: 1, epoch: 0, tokens: 10, lr: 1, loss: 2, gradNorm: 1, winRate: null, stepMs: 1, estimatorMs: null });
    writeFileSync(file, `${good}\n${good}\n{"type":"train","step":3,\n`);
    expect(() => readMetrics(file)).toThrow(new RegExp(`^${file}:3: malformed JSON`));
    writeFileSync(file, `${good}\n{"type":"test","step":2,"tokens":20}\n`);
    expect(() => readMetrics(file)).toThrow(`${file}:2: "type" must be "train" or "eval", got "test"`);
    writeFileSync(file, `{"type":"eval","step":2,"tokens":20}\n`);
    expect(() => readMetrics(file)).toThrow(`${file}:1: missing field "valLoss"`);
    writeFileSync(file, `{"type":"train","step":"2","tokens":20,"loss":1}\n`);
    expect(() => readMetrics(file)).toThrow(`${file}:1: field "step" must be a number or null, got "2"`);
    writeFileSync(file, '\n');
    expect(() => readMetrics(file)).toThrow(`${file}: no metric records`);
  });
});

describe('loss smoothing', () => {
  it('scales the EMA window with the run: raw on short runs, a 50-step window (β = 0.98) on long ones', async () => {
    const { emaBeta } = await import('../../src/train/report/charts.ts');
    expect(emaBeta(10)).toBe(0); // window 1: the curve is the loss itself
    expect(emaBeta(30)).toBeCloseTo(0.5);
    expect(emaBeta(300)).toBeCloseTo(0.95);
    expect(emaBeta(100_000)).toBeCloseTo(0.98);
  });
});
