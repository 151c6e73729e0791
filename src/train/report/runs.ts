// Reading a training run directory (config.json, metrics.jsonl, summary.json, sample.txt) and
// converting its metrics to CSV. Input errors name the file (and line) so a broken run is easy
// to find among many.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

export interface TrainRecord {
  type: 'train';
  step: number;
  epoch: number;
  tokens: number;
  lr: number | null;
  /** null when the loss was not finite (JSON has no NaN/Infinity: the writer turns them into null). */
  loss: number | null;
  gradNorm: number | null;
  /** Sophia's clipping win rate; null for other optimizers. */
  winRate: number | null;
  /** Wall time of the whole step, including the Hessian estimator when it ran. */
  stepMs: number | null;
  /** Time of the Hessian estimator on the steps where it ran; null (or 0) elsewhere. */
  estimatorMs: number | null;
}

export interface EvalRecord {
  type: 'eval';
  step: number;
  epoch: number;
  tokens: number;
  valLoss: number | null;
  valPpl: number | null;
  /** Next-token accuracy as a fraction in [0, 1]. */
  valAcc: number | null;
}

export type MetricRecord = TrainRecord | EvalRecord;

/** Steps at the start of each session (a start or a resume) whose time, mostly shader compilation, the throughput figures leave out. */
export const WARMUP_STEPS = 2;

/**
 * The final train loss is the mean over this many last steps: one minibatch's loss swings by
 * tenths here (B·T = 1,024 tokens), too much to rank optimizers by.
 */
export const FINAL_LOSS_STEPS = 10;

/** Mean of the last FINAL_LOSS_STEPS finite losses; null when there are none. */
export function finalLoss(losses: readonly (number | null)[]): number | null {
  const xs = losses.filter((x): x is number => x !== null && Number.isFinite(x)).slice(-FINAL_LOSS_STEPS);
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

export interface Summary {
  optimizer: string;
  /** Mean train loss of the last FINAL_LOSS_STEPS steps (finite ones). */
  finalTrainLoss: number | null;
  valLoss: number | null;
  valPpl: number | null;
  valAcc: number | null;
  /** The test split, evaluated once after training (--test-eval); null when it was not. */
  testLoss: number | null;
  testPpl: number | null;
  testAcc: number | null;
  timePerEpochS: number | null;
  /** Epochs the run trained (a fraction for a shorter run, whose time per epoch is projected). */
  epochs?: number | null;
  /** After the warm-up (when the run was longer than it). */
  tokensPerS: number | null;
  /** Estimator time as a fraction (0–1) of total step time after the warm-up; null for optimizers without one. */
  estimatorOverhead: number | null;
  /** Time of the first steps of each session (a start or a resume), estimator included: mostly shader compilation. */
  warmupS?: number | null;
  steps: number | null;
  tokens: number | null;
  wallS: number | null;
}

export interface Run {
  dir: string;
  /** Legend/table label: the optimizer name, disambiguated when several runs share it. */
  label: string;
  config: Record<string, unknown>;
  metrics: MetricRecord[];
  train: TrainRecord[];
  evals: EvalRecord[];
  summary: Summary;
  /** Generated text; '' when sample.txt is absent. */
  sample: string;
}

function readJsonObject(file: string): Record<string, unknown> {
  if (!existsSync(file)) throw new Error(`${file}: file not found`);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: malformed JSON (${(e as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${file}: expected a JSON object`);
  return value as Record<string, unknown>;
}

/** Parses metrics.jsonl; every problem is reported as `file:line: what`. */
export function readMetrics(file: string): MetricRecord[] {
  if (!existsSync(file)) throw new Error(`${file}: file not found`);
  const out: MetricRecord[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((text, i) => {
      if (text.trim() === '') return; // trailing newline, blank lines
      const where = `${file}:${i + 1}`;
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(text) as Record<string, unknown>;
      } catch (e) {
        throw new Error(`${where}: malformed JSON (${(e as Error).message})`);
      }
      if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error(`${where}: expected a JSON object`);
      const num = (key: string, required: boolean): number | null => {
        const v = o[key];
        if (v === undefined && required) throw new Error(`${where}: missing field "${key}"`);
        if (v === undefined || v === null) return null;
        if (typeof v !== 'number') throw new Error(`${where}: field "${key}" must be a number or null, got ${JSON.stringify(v)}`);
        return v;
      };
      // step and tokens are the x axes of every chart, so they must be real numbers.
      const axis = (key: string): number => {
        const v = num(key, true);
        if (v === null) throw new Error(`${where}: field "${key}" must be a number, got null`);
        return v;
      };
      const base = { step: axis('step'), epoch: num('epoch', false) ?? 0, tokens: axis('tokens') };
      if (o.type === 'train') {
        out.push({
          type: 'train', ...base,
          lr: num('lr', false), loss: num('loss', true), gradNorm: num('gradNorm', false), winRate: num('winRate', false),
          stepMs: num('stepMs', false), estimatorMs: num('estimatorMs', false),
        });
      } else if (o.type === 'eval') {
        out.push({ type: 'eval', ...base, valLoss: num('valLoss', true), valPpl: num('valPpl', false), valAcc: num('valAcc', false) });
      } else {
        throw new Error(`${where}: "type" must be "train" or "eval", got ${JSON.stringify(o.type)}`);
      }
    });
  if (out.length === 0) throw new Error(`${file}: no metric records`);
  return out;
}

/** A run shorter than one epoch: its time per epoch is its step time times the epoch's steps. */
export const projected = (r: Run) => typeof r.summary.epochs === 'number' && r.summary.epochs < 1;

const CSV_HEADER = ['step', 'epoch', 'tokens', 'lr', 'train_loss', 'grad_norm', 'win_rate', 'step_ms', 'estimator_ms', 'val_loss', 'val_ppl', 'val_acc'];

export const CSV_HEADER_LINE = CSV_HEADER.join(',') + '\n';

/** One record as a CSV line (train rows leave the val_* columns empty and vice versa; absent fields are empty). */
export function csvRow(r: MetricRecord): string {
  const cell = (v: number | null | undefined) => (v === null || v === undefined ? '' : String(v));
  const head = [r.step, r.epoch, r.tokens];
  const train = r.type === 'train' ? [r.lr, r.loss, r.gradNorm, r.winRate, r.stepMs, r.estimatorMs] : [null, null, null, null, null, null];
  const val = r.type === 'eval' ? [r.valLoss, r.valPpl, r.valAcc] : [null, null, null];
  return [...head, ...train, ...val].map(cell).join(',') + '\n';
}

/** metrics.jsonl → CSV text, one row per record. */
export function metricsCsv(records: MetricRecord[]): string {
  return CSV_HEADER_LINE + records.map(csvRow).join('');
}

/** Writes `runDir/metrics.csv` from `runDir/metrics.jsonl`; returns the CSV path. */
export function writeMetricsCsv(runDir: string): string {
  const path = join(runDir, 'metrics.csv');
  writeFileSync(path, metricsCsv(readMetrics(join(runDir, 'metrics.jsonl'))));
  return path;
}

const sum = (xs: (number | null)[]) => xs.reduce<number>((a, x) => a + (x ?? 0), 0);

/** What the metrics alone say; fills fields that summary.json lacks (e.g. a run that crashed before writing it). */
function deriveSummary(optimizer: string, train: TrainRecord[], evals: EvalRecord[]): Summary {
  const lastEval = evals.at(-1);
  const last = train.at(-1);
  const stepMs = sum(train.map((r) => r.stepMs));
  const estMs = sum(train.map((r) => r.estimatorMs));
  const hasEstimator = train.some((r) => r.estimatorMs !== null);
  return {
    optimizer,
    finalTrainLoss: finalLoss(train.map((r) => r.loss)), // null (shown as —) if no step had a finite loss
    valLoss: lastEval?.valLoss ?? null,
    valPpl: lastEval?.valPpl ?? null,
    valAcc: lastEval?.valAcc ?? null,
    testLoss: null, // only summary.json has these (the test split is scored once, after training)
    testPpl: null,
    testAcc: null,
    timePerEpochS: null, // needs the epoch length, which only the trainer knows
    epochs: null,
    tokensPerS: last && stepMs > 0 ? last.tokens / (stepMs / 1000) : null,
    estimatorOverhead: hasEstimator && stepMs > 0 ? estMs / stepMs : null,
    warmupS: null, // rows hold interval means: the warm-up's own time is only in summary.json
    steps: last?.step ?? null,
    tokens: last?.tokens ?? null,
    wallS: null,
  };
}

function optimizerName(config: Record<string, unknown>, summary: Record<string, unknown>): string {
  const o = config.optimizer;
  if (typeof o === 'string') return o;
  if (o && typeof o === 'object' && typeof (o as { name?: unknown }).name === 'string') return (o as { name: string }).name;
  return typeof summary.optimizer === 'string' ? summary.optimizer : 'unknown';
}

/** Reads one run directory. config.json and metrics.jsonl are required; summary.json and sample.txt are optional. */
export function readRun(dir: string): Run {
  const config = readJsonObject(join(dir, 'config.json'));
  const metrics = readMetrics(join(dir, 'metrics.jsonl'));
  const summaryFile = join(dir, 'summary.json');
  const written = existsSync(summaryFile) ? readJsonObject(summaryFile) : {};
  const train = metrics.filter((r): r is TrainRecord => r.type === 'train');
  const evals = metrics.filter((r): r is EvalRecord => r.type === 'eval');
  const optimizer = optimizerName(config, written);
  const derived = deriveSummary(optimizer, train, evals);
  // summary.json wins where it has a number; the derived value covers null/missing fields.
  const summary = { ...derived } as Summary;
  for (const key of Object.keys(derived) as (keyof Summary)[]) {
    const v = written[key];
    if (typeof v === 'number' || (key === 'optimizer' && typeof v === 'string')) (summary as unknown as Record<string, unknown>)[key] = v;
  }
  const samplePath = join(dir, 'sample.txt');
  const sample = existsSync(samplePath) ? readFileSync(samplePath, 'utf8') : '';
  return { dir, label: optimizer, config, metrics, train, evals, summary, sample };
}

/** Reads several runs and makes their labels unique: optimizer, then "optimizer (seed N)", then the directory name. */
export function readRuns(dirs: string[]): Run[] {
  const runs = dirs.map(readRun);
  const clash = (r: Run) => runs.filter((o) => o.label === r.label).length > 1;
  for (const r of runs.filter(clash)) if (r.config.seed !== undefined) r.label = `${r.summary.optimizer} (seed ${String(r.config.seed)})`;
  for (const r of runs.filter(clash)) r.label = `${r.summary.optimizer} (${basename(r.dir)})`;
  return runs;
}
