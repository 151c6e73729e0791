// One training run of GPT-2 with one optimizer: the loop, evaluation, metrics, checkpoints,
// and the final sample. Everything the GPU computes stays there until a log interval, when the
// step losses, gradient norms and win rates of the interval come back in one readback.
import { appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as E from '../index.ts';
import { ctx, describeAdapter } from '../gpu/device.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { BatchLoader, evalBatches, type BatchLoaderState } from '../data/loader.ts';
import { autocast, configFromHF, functionalCall, generate, GPT2, gpt2Config, loadGPT2, saveGPT2, type GPT2Config, type HostTensor, type Precision } from '../nn/index.ts';
import { writeFileAtomic } from '../nn/safetensors.ts';
import * as O from '../optim/index.ts';
import { hasCheckpoint, readLatestCheckpoint, writeCheckpoint } from './checkpoint.ts';
import { CSV_HEADER_LINE, csvRow, FINAL_LOSS_STEPS, finalLoss, WARMUP_STEPS, writeMetricsCsv, type MetricRecord } from './report/runs.ts';
import { trainStep } from './step.ts';
import type { Summary } from './report/runs.ts';

export type OptimizerName = 'sophia' | 'sophia-h' | 'adam' | 'adamw' | 'sgd';

/**
 * The main job's default peak learning rates, each the best final validation loss of a sweep on
 * its default run (README, "The main job").
 */
export const DEFAULT_LR: Record<OptimizerName, number> = { sophia: 4e-3, 'sophia-h': 2e-3, adam: 3e-3, adamw: 3e-3, sgd: 0.3 };
/**
 * Decoupled decay for the optimizers built around it; Adam and SGD couple decay into the gradient
 * (λ·θ added to g), which at SGD's lr and momentum would shrink weights ≈ lr·λ/(1−μ) per step.
 */
export const DEFAULT_WEIGHT_DECAY: Record<OptimizerName, number> = { sophia: 0.1, 'sophia-h': 0.1, adam: 0, adamw: 0.1, sgd: 0 };

export interface TrainConfig {
  optimizer: OptimizerName;
  model: string;
  nLayer: number | null;
  nHead: number | null;
  nEmbd: number | null;
  /** nanoGPT's dropout (attention probabilities, residual branches, embeddings) while training; absent = 0. */
  dropout?: number;
  batchSize: number;
  gradAccum: number;
  context: number;
  epochs: number;
  maxSteps: number | null;
  lr: number;
  minLr: number;
  warmup: number;
  schedule: 'cosine' | 'cosine-restarts' | 'constant';
  t0: number;
  tMult: number;
  weightDecay: number;
  gradClip: number;
  hessEvery: number;
  /**
   * Sophia's estimator minibatch: 'separate' (its own minibatch and passes, as the authors' code)
   * or 'shared' (the refresh step's own minibatch, reusing its forward and backward: GNB costs one
   * more backward through the blocks, Hutchinson the second backward of its HVP; f32 only).
   * Absent in configs written before it existed: separate.
   */
  hessBatch?: 'separate' | 'shared';
  /**
   * Sequences in the separate estimator minibatch (default: batchSize, one micro-batch). Fewer
   * make each refresh cheaper and noisier; GNB's B is this batch's token count.
   */
  hessBatchSize?: number | null;
  rho: number;
  gamma: number;
  /**
   * Sophia's variations (docs/optim.md); absent in configs written before they were flags, which
   * means: official form for sophia and paper form for sophia-h, Rademacher probes, clip at 1,
   * no bias correction of h, h estimated.
   */
  sophiaForm?: O.SophiaForm;
  probe?: O.Probe;
  clipThreshold?: number;
  biasCorrectH?: boolean;
  signMomentum?: boolean;
  betas: [number, number];
  momentum: number;
  evalEvery: number;
  /** Validation tokens scored per evaluation: a fixed prefix of the split; 0 = the whole split. */
  evalTokens: number;
  /** After training, score the test split (data.test) once, with the same evalTokens. */
  testEval?: boolean;
  logEvery: number;
  checkpointEvery: number;
  seed: number;
  out: string;
  sampleTokens: number;
  /** The sample's prompt, temperature (0 = greedy) and top-k (0 = all); defaults 'The', 0.8, 40. */
  samplePrompt?: string;
  temperature?: number;
  topK?: number;
  /** Stop after this many consecutive steps whose loss (or, in f32, gradient) was non-finite. */
  maxBadSteps: number;
  /**
   * 'f16': mixed precision (autocast f16 compute, f32 master weights and optimizer state, dynamic
   * loss scaling); on an adapter without shader-f16 the run says so and trains in f32. Absent in
   * configs written before it existed: f32.
   */
  precision?: Precision;
  /** f16: initial loss scale (GradScaler's init_scale) and good steps before it doubles (growth_interval). */
  lossScale?: number;
  lossScaleWindow?: number;
}

export interface TrainData {
  train: Uint16Array;
  valid: Uint16Array;
  /** Needed only with testEval. */
  test?: Uint16Array;
  decode: (ids: number[]) => string;
  encode: (text: string) => number[];
}

/** What a finished run reports (summary.json); the report reads the same shape. */
export type RunSummary = Summary;

export interface Hooks {
  log?: (line: string) => void;
  progress?: (done: number, total: number, note: string) => void;
  /** Polled between steps; true stops the run after writing a checkpoint (Ctrl-C). */
  shouldStop?: () => boolean;
  /** After each step's backward, before clipping and the update: its gradients are in each parameter's .grad (the tests inject faults here). */
  gradients?: (step: number, model: GPT2) => void;
}

const PRESETS = ['tiny', 'small', 'gpt2'];


/**
 * Checks --model (and --context against it) without loading weights, so that a mistyped preset
 * or folder fails before the data is read and tokenized: a preset, or a folder holding
 * config.json (parsed here) and model.safetensors. Returns the folder's config, null for a preset.
 */
export function checkModelChoice(model: string, context: number): GPT2Config | null {
  if (PRESETS.includes(model)) return null;
  if (!existsSync(model)) {
    throw new Error(`--model ${model}: not a preset (${PRESETS.join(', ')}) and no such directory (a Hugging Face GPT-2 folder with config.json and model.safetensors)`);
  }
  for (const f of ['config.json', 'model.safetensors']) {
    if (!existsSync(join(model, f))) throw new Error(`--model ${model}: ${f} not found there (a Hugging Face GPT-2 folder holds config.json and model.safetensors)`);
  }
  const cfgPath = join(model, 'config.json');
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`--model ${model}: ${cfgPath} is not valid JSON (${(e as Error).message})`);
  }
  const c = configFromHF(json, cfgPath);
  if (context > c.nPositions) throw new Error(`--context ${context} exceeds the model's context length ${c.nPositions} (n_positions in ${cfgPath})`);
  return c;
}

export function buildModel(cfg: TrainConfig): GPT2 {
  const d = cfg.dropout ?? 0;
  if (!(d >= 0 && d < 1)) throw new Error(`--dropout must be in [0, 1) (the probability of zeroing an activation); got ${d}`);
  if (PRESETS.includes(cfg.model)) {
    const overrides = Object.fromEntries(Object.entries({ nLayer: cfg.nLayer, nHead: cfg.nHead, nEmbd: cfg.nEmbd, dropout: cfg.dropout ?? 0 }).filter(([, v]) => v !== null));
    const c = gpt2Config(cfg.model, overrides);
    if (cfg.context > c.nPositions) c.nPositions = cfg.context;
    return new GPT2(c, cfg.seed);
  }
  checkModelChoice(cfg.model, cfg.context);
  const m = loadGPT2(cfg.model);
  m.config.dropout = cfg.dropout ?? 0; // a training choice, not part of the weights
  return m;
}

export function buildOptimizer(cfg: TrainConfig, model: GPT2): O.Optimizer {
  const groups = O.defaultParamGroups(model.namedParameters(), cfg.weightDecay);
  switch (cfg.optimizer) {
    case 'sgd':
      return new O.SGD(groups, { lr: cfg.lr, momentum: cfg.momentum });
    case 'adam':
      return new O.Adam(groups, { lr: cfg.lr, betas: cfg.betas });
    case 'adamw':
      return new O.AdamW(groups, { lr: cfg.lr, betas: cfg.betas });
    case 'sophia':
    case 'sophia-h':
      // sophia: SophiaG in the authors' parameterisation by default (h holds ĝ⊙ĝ, the step
      // uses ρ·B·h); sophia-h: the paper's (h holds u⊙Hu, the step uses γ·h).
      return new O.Sophia(groups, {
        lr: cfg.lr,
        betas: cfg.betas,
        form: sophiaForm(cfg),
        rho: cfg.rho,
        gamma: cfg.gamma,
        hessianEvery: cfg.hessEvery,
        clipThreshold: cfg.clipThreshold ?? 1,
        biasCorrection: cfg.biasCorrectH ?? false,
        signMomentum: cfg.signMomentum ?? false,
      });
  }
}

const sophiaForm = (cfg: TrainConfig): O.SophiaForm => cfg.sophiaForm ?? (cfg.optimizer === 'sophia-h' ? 'paper' : 'official');

/**
 * The B that Sophia's official form multiplies h by: GNB's ĝ⊙ĝ is the mean loss's squared
 * gradient, so B is the estimator batch's token count; Hutchinson's u⊙Hu already estimates the
 * diagonal itself and carries no B.
 */
const estimateTokens = (cfg: TrainConfig) => (cfg.optimizer === 'sophia' ? estimatorBatch(cfg) * cfg.context : 1);

/** Sequences in the separate estimator minibatch. */
const estimatorBatch = (cfg: TrainConfig) => cfg.hessBatchSize ?? cfg.batchSize;

function buildSchedule(cfg: TrainConfig, totalSteps: number): O.Schedule {
  const after =
    cfg.schedule === 'constant'
      ? O.constant(cfg.lr)
      : cfg.schedule === 'cosine-restarts'
        ? O.cosineWarmRestarts(cfg.lr, cfg.t0, cfg.tMult, cfg.minLr)
        : O.cosine(cfg.lr, cfg.minLr, Math.max(1, totalSteps - cfg.warmup));
  return O.withWarmup(Math.min(cfg.warmup, totalSteps), after);
}

interface Pending {
  step: number;
  epoch: number;
  tokens: number;
  lr: number;
  loss: Tensor;
  gradNorm: Tensor;
  winRate: Tensor | null;
  /** f16: [loss scale, skipped steps so far] after this step. */
  scaler: Tensor | null;
  /** 1 if the optimizer took this step, 0 if it skipped it (non-finite gradients); null when it does not check. */
  taken: Tensor | null;
  /** Sophia, on refresh steps: per layer, [mean h, max h] pairs (see hStatsByLayer). */
  hStats: { layers: string[]; values: Tensor } | null;
  /** Sophia, on refresh steps: how many coordinates of ĥ were non-finite (h kept its old value there). */
  nonFiniteHessian: Tensor | null;
  estimatorMs: number | null;
}

/**
 * Mean loss, perplexity and next-token accuracy over the split's non-overlapping windows: all of
 * them when evalTokens is 0, else ⌈evalTokens / context⌉ of them spread evenly over the split,
 * so every run scores the same targets and a quick evaluation still samples every article.
 */
async function evaluate(model: GPT2, tokens: Uint16Array, cfg: TrainConfig, precision: Precision): Promise<{ valLoss: number; valPpl: number; valAcc: number }> {
  const windows = cfg.evalTokens > 0 ? Math.ceil(cfg.evalTokens / cfg.context) : undefined;
  model.eval();
  let nll: Tensor | null = null;
  let correct: Tensor | null = null;
  let count: Tensor | null = null;
  for (const b of evalBatches(tokens, { batchSize: cfg.batchSize, blockSize: cfg.context, windows })) {
    const s = E.tidy(() =>
      E.noGrad(() => {
        const r = autocast(precision, () => model.evalSums(E.tensor(b.inputs, [cfg.batchSize, cfg.context], 'i32'), E.tensor(b.targets, [cfg.batchSize, cfg.context], 'i32')));
        return {
          nll: (nll ? E.add(nll, r.nll) : r.nll).realize(),
          correct: (correct ? E.add(correct, r.correct) : r.correct).realize(),
          count: (count ? E.add(count, r.count) : r.count).realize(),
        };
      }),
    );
    [nll, correct, count].forEach((t) => t?.dispose());
    ({ nll, correct, count } = s);
  }
  model.train();
  const [n, c, k] = await E.concat([nll!, correct!, count!].map((t) => E.reshape(t, [1]))).toArray();
  const valLoss = n / k;
  return { valLoss, valPpl: Math.exp(valLoss), valAcc: c / k };
}

async function hostTensors(prefix: string, named: Iterable<[string, Tensor]>, into: Map<string, HostTensor>): Promise<void> {
  for (const [name, t] of named) into.set(prefix + name, { dtype: 'F32', shape: [...t.shape], data: await t.toArray() });
}

/** The precision a run trains in: f16 needs the adapter's shader-f16 (else it says so and uses f32). */
function effectivePrecision(cfg: TrainConfig, log: (line: string) => void): Precision {
  if ((cfg.precision ?? 'f32') === 'f32') return 'f32';
  if (ctx().hasF16) return 'f16';
  log(`note: --precision f16 needs the adapter feature 'shader-f16', which ${describeAdapter(ctx())} does not offer; training in f32.`);
  return 'f32';
}

/** The layer a parameter belongs to: `block3` for h.3.*, else its first name part (wte, wpe, ln_f). */
const layerOf = (name: string) => (/^h\.(\d+)\./.exec(name) ? `block${/^h\.(\d+)\./.exec(name)![1]}` : name.split('.')[0]);

/**
 * Sophia's h per layer: the mean over all the layer's coordinates (size-weighted over its
 * parameters) and the max, as one lazy [2·layers] tensor, read back with the step's metrics.
 */
function hStatsByLayer(sophia: O.Sophia, named: readonly O.NamedParam[]): { layers: string[]; values: Tensor } | null {
  const stats = sophia.hStats();
  if (stats.size === 0) return null;
  const byLayer = new Map<string, { sum: Tensor; max: Tensor; size: number }>();
  for (const p of named) {
    const s = stats.get(p.name);
    if (!s) continue;
    const layer = layerOf(p.name);
    const acc = byLayer.get(layer);
    const sum = E.mul(s.mean, p.param.size);
    if (!acc) byLayer.set(layer, { sum, max: s.max, size: p.param.size });
    else Object.assign(acc, { sum: E.add(acc.sum, sum), max: E.maximum(acc.max, s.max), size: acc.size + p.param.size });
  }
  const layers = [...byLayer.keys()];
  const parts = layers.flatMap((l) => {
    const a = byLayer.get(l)!;
    return [E.reshape(E.mul(a.sum, 1 / a.size), [1]), E.reshape(a.max, [1])];
  });
  return { layers, values: E.concat(parts).realize() };
}

/** A run stopped because its losses or gradients stayed non-finite (a checkpoint of the last finite state was written). */
export class DivergedError extends Error {}

/** Runs (or resumes) one training run into cfg.out. */
export async function trainRun(cfg: TrainConfig, data: TrainData, meta: Record<string, unknown>, hooks: Hooks = {}, resume = false): Promise<RunSummary> {
  const log = hooks.log ?? ((l: string) => console.log(l));
  // Before any work: the run would otherwise fail only after training.
  if (cfg.testEval && !data.test) throw new Error('testEval: the test split was not loaded (TrainData.test); load it or turn testEval off');
  mkdirSync(cfg.out, { recursive: true });
  const metricsPath = join(cfg.out, 'metrics.jsonl');
  // metrics.csv follows metrics.jsonl row by row, so a stopped or killed run has both.
  const csvPath = join(cfg.out, 'metrics.csv');
  const ckptDir = join(cfg.out, 'checkpoints');
  const model = buildModel(cfg);
  const opt = buildOptimizer(cfg, model);
  // In the model's order: functionalCall swaps parameters positionally.
  const named = model.namedParameters().map(([name, param]) => ({ name, param }));
  const loader = new BatchLoader(data.train, { batchSize: cfg.batchSize, blockSize: cfg.context, seed: cfg.seed });
  const hb = cfg.hessBatchSize;
  if (hb !== undefined && hb !== null) {
    if (!(Number.isInteger(hb) && hb >= 1)) throw new Error(`--hess-batch-size must be a whole number of sequences ≥ 1; got ${hb}`);
    if (cfg.hessBatch === 'shared') throw new Error("--hess-batch-size sizes the separate estimator minibatch; --hess-batch shared estimates on the step's own micro-batch. Drop one of the two flags.");
  }
  const estLoader = new BatchLoader(data.train, { batchSize: estimatorBatch(cfg), blockSize: cfg.context, seed: cfg.seed + 1 });
  const estGen = new E.Generator(cfg.seed + 2);
  const stepsPerEpoch = Math.max(1, Math.floor(loader.batchesPerEpoch / cfg.gradAccum));
  const totalSteps = cfg.maxSteps ?? Math.max(1, Math.round(cfg.epochs * stepsPerEpoch));
  const schedule = buildSchedule(cfg, totalSteps);
  const tokensPerStep = cfg.batchSize * cfg.context * cfg.gradAccum;
  const isSophia = opt instanceof O.Sophia;
  const precision = effectivePrecision(cfg, log);
  if (isSophia && cfg.hessBatch === 'shared' && precision !== 'f32') log('note: --hess-batch shared needs f32; under f16 the Hessian estimate runs on a separate minibatch.');
  const scaler = precision === 'f16' ? new O.GradScaler({ initScale: cfg.lossScale, growthInterval: cfg.lossScaleWindow }) : null;

  let step = 0;
  let metricRows = 0;
  let trainMs = 0;
  let estimatorMsTotal = 0;
  // The first WARMUP_STEPS steps of each session (a start or a resume), with any estimator
  // refresh among them: they compile the shaders, so throughput and overhead leave them out.
  let warmSteps = 0;
  let warmMs = 0;
  let warmEstimatorMs = 0;
  let lastLoss = null as number | null;
  let recentLosses: number[] = []; // the last FINAL_LOSS_STEPS finite losses
  let lastEval: { valLoss: number; valPpl: number; valAcc: number } | null = null;
  let badRun = 0;
  let lastSkipped = 0;

  let rows: string[] = []; // metrics.jsonl's lines so far: each checkpoint carries a copy

  if (resume) {
    const ck = readLatestCheckpoint(ckptDir);
    const st = ck.state as Record<string, never>;
    const params = new Map(model.namedParameters());
    for (const [name, t] of ck.tensors) {
      if (!name.startsWith('model.')) continue;
      const p = params.get(name.slice(6));
      if (!p) throw new Error(`checkpoint holds unknown parameter ${name}`);
      E.noGrad(() => E.assign(p, E.tensor(t.data as Float32Array, t.shape)));
    }
    /** The checkpoint's tensors named `prefix…`, on the GPU, under their names without it. */
    const section = (prefix: string) =>
      new Map([...ck.tensors].filter(([n]) => n.startsWith(prefix)).map(([n, t]) => [n.slice(prefix.length), E.tensor(t.data as Float32Array, t.shape)] as const));
    opt.loadStateDict({ json: st.optimizer, tensors: section('opt.') });
    if (scaler) {
      scaler.loadStateTensors(section('scaler.'));
      lastSkipped = (await scaler.state()).skippedSteps;
    }
    loader.restore(st.loader as BatchLoaderState);
    estLoader.restore(st.estLoader as BatchLoaderState);
    estGen.state = st.estGen;
    model.gen.state = st.modelGen;
    ({ step, metricRows, trainMs, estimatorMsTotal, lastLoss, lastEval } = st);
    ({ warmSteps = 0, warmMs = 0, warmEstimatorMs = 0 } = st as { warmSteps?: number; warmMs?: number; warmEstimatorMs?: number }); // older checkpoints lack them
    recentLosses = (st as { recentLosses?: number[] }).recentLosses ?? (lastLoss === null ? [] : [lastLoss]);
    // Drop metric rows written after the checkpoint: the resumed run writes them again. The
    // checkpoint's own copy of the rows wins (older checkpoints have none: the file must hold them).
    const onDisk = existsSync(metricsPath) ? readFileSync(metricsPath, 'utf8').split('\n').filter((l) => l) : [];
    const lines = ck.metrics !== undefined ? ck.metrics.split('\n').filter((l) => l) : onDisk;
    if (ck.metrics !== undefined && (onDisk.length < metricRows || onDisk.slice(0, metricRows).some((l, i) => l !== lines[i]))) {
      log(`--resume: ${metricsPath} did not hold the ${metricRows} rows written before step ${step}; restored them from the checkpoint`);
    }
    if (lines.length < metricRows) {
      throw new Error(
        `--resume: ${metricsPath} holds ${lines.length} rows, but the checkpoint of step ${step} was written after ${metricRows}: the metrics file was truncated or replaced. ` +
          'Nothing was changed; restore the file, or start this run afresh in a new --out folder.',
      );
    }
    rows = lines.slice(0, metricRows).map((l) => l + '\n');
    writeFileAtomic(metricsPath, rows.join('')); // a kill here leaves the old file whole
    if (metricRows > 0) writeMetricsCsv(cfg.out);
    else writeFileSync(csvPath, CSV_HEADER_LINE);
    log(`resumed ${cfg.optimizer} from step ${step}`);
  } else {
    // A fresh start owns the folder: no checkpoint of an earlier attempt may be resumed into it.
    rmSync(ckptDir, { recursive: true, force: true });
    writeFileSync(metricsPath, '');
    writeFileSync(csvPath, CSV_HEADER_LINE);
    writeFileAtomic(join(cfg.out, 'config.json'), JSON.stringify({ ...cfg, ...meta, precision, precisionRequested: cfg.precision ?? 'f32', totalSteps, stepsPerEpoch, tokensPerStep, parameters: model.numParameters() }, null, 2) + '\n');
  }

  const writeRow = (row: Record<string, unknown>) => {
    const line = JSON.stringify(row) + '\n';
    appendFileSync(metricsPath, line);
    rows.push(line);
    appendFileSync(csvPath, csvRow(row as unknown as MetricRecord));
    metricRows++;
  };

  const checkpoint = async () => {
    // The rows the checkpoint counts reach the disk before it does (a resume checks they exist).
    for (const f of [metricsPath, csvPath]) syncFile(f);
    const tensors = new Map<string, HostTensor>();
    await hostTensors('model.', model.namedParameters(), tensors);
    const sd = opt.stateDict();
    await hostTensors('opt.', sd.tensors, tensors);
    if (scaler) await hostTensors('scaler.', scaler.stateTensors(), tensors);
    writeCheckpoint(ckptDir, {
      step,
      tensors,
      metrics: rows.join(''),
      state: { optimizer: sd.json, loader: loader.state(), estLoader: estLoader.state(), estGen: estGen.state, modelGen: model.gen.state, step, metricRows, trainMs, estimatorMsTotal, warmSteps, warmMs, warmEstimatorMs, lastLoss, recentLosses, lastEval },
    });
  };

  let pending: Pending[] = [];
  let intervalStart = performance.now();
  let intervalEstimatorMs = 0;
  // A plain step's time, from the last log interval: a step that also estimates the Hessian
  // (--hess-batch shared) counts what it took beyond that as the estimator's.
  let perStepMs = 0;
  const t0Run = performance.now();
  const sessionStart = { step, trainMs, estimatorMsTotal };
  const warmEnd = Math.min(totalSteps, step + WARMUP_STEPS);

  const flush = async () => {
    if (pending.length === 0) return;
    const scalars = pending.flatMap((p) => [p.loss, p.gradNorm, p.winRate ?? E.scalar(NaN), p.scaler ?? E.expand(E.scalar(NaN), [2]), p.taken ?? E.scalar(1)]);
    const hStats = pending.flatMap((p) => (p.hStats ? [p.hStats.values] : [])); // after the 6 per step
    const badH = pending.flatMap((p) => (p.nonFiniteHessian ? [p.nonFiniteHessian] : [])); // after those
    const vals = await E.concat([...scalars, ...hStats, ...badH].map((t) => E.reshape(t, [t.size]))).toArray();
    let hAt = 6 * pending.length;
    let badAt = hAt + hStats.reduce((n, t) => n + t.size, 0);
    const elapsed = performance.now() - intervalStart;
    const perStep = (elapsed - intervalEstimatorMs) / pending.length;
    perStepMs = perStep;
    trainMs += elapsed;
    pending.forEach((p, i) => {
      const [loss, gradNorm, win, lossScale, skipped, taken] = vals.subarray(6 * i, 6 * i + 6);
      // Under f16 an overflow is the scaler's business (it backs off); in f32 a non-finite
      // gradient behind a finite loss is as bad a step as a non-finite loss.
      const badGradients = !p.scaler && taken === 0;
      if (Number.isFinite(loss)) {
        lastLoss = loss;
        recentLosses = [...recentLosses, loss].slice(-FINAL_LOSS_STEPS);
        badRun = badGradients ? badRun + 1 : 0;
        if (p.scaler && skipped > lastSkipped) log(`step ${p.step}: f16 gradients overflowed; the step was skipped and the loss scale lowered to ${lossScale}`);
        else if (badGradients) log(`step ${p.step}: non-finite gradients with a finite loss (${loss.toFixed(4)}); the optimizer skipped this update`);
      } else {
        badRun++;
        log(`step ${p.step}: non-finite loss (${loss}); the optimizer skipped this update`);
      }
      const badHessian = p.nonFiniteHessian ? vals[badAt++] : null;
      if (badHessian) log(`step ${p.step}: the Hessian estimate had ${badHessian} non-finite coordinate(s); h kept its previous value there`);
      writeRow({
        type: 'train',
        step: p.step,
        epoch: p.epoch,
        tokens: p.tokens,
        lr: p.lr,
        loss: Number.isFinite(loss) ? loss : null,
        gradNorm: Number.isFinite(gradNorm) ? gradNorm : null,
        winRate: Number.isNaN(win) ? null : win,
        stepMs: perStep + (p.estimatorMs ?? 0),
        estimatorMs: p.estimatorMs,
        ...(p.taken ? { skipped: taken === 0 } : {}),
        ...(p.hStats ? { hStats: Object.fromEntries(p.hStats.layers.map((l, j) => [l, { mean: vals[hAt + 2 * j], max: vals[hAt + 2 * j + 1] }])) } : {}),
        ...(p.scaler ? { lossScale, skippedSteps: skipped } : {}),
        ...(badHessian !== null ? { nonFiniteHessian: badHessian } : {}),
      });
      if (p.scaler) lastSkipped = skipped;
      if (p.hStats) hAt += p.hStats.values.size;
    });
    for (const p of pending) [p.loss, p.gradNorm, p.winRate, p.scaler, p.taken, p.hStats?.values, p.nonFiniteHessian].forEach((t) => t?.dispose());
    pending = [];
    intervalStart = performance.now();
    intervalEstimatorMs = 0;
    if (badRun >= cfg.maxBadSteps) await stopDiverged();
  };

  /**
   * Too many non-finite losses (or f32 gradients) in a row. Their updates were skipped (nonFinite: 'skip', or the
   * scaler under f16), so the parameters and optimizer state are still those after the last
   * finite step: that state is checkpointed (resumable, e.g. with a lower --lr) and the run stops.
   */
  const stopDiverged = async () => {
    await checkpoint();
    throw new DivergedError(
      `${cfg.maxBadSteps} consecutive steps with a non-finite loss or gradient up to step ${step}: training diverged. Their updates were skipped, so the checkpoint ` +
        `just written to ${ckptDir} holds the parameters after the last finite step. Start again with a lower --lr (now ${cfg.lr}) ` +
        `or --grad-clip, or continue with --resume (the same settings) if the cause was transient.`,
    );
  };

  while (step < totalSteps) {
    if (hooks.shouldStop?.()) {
      await flush();
      await checkpoint();
      log(`stopped at step ${step}; checkpoint written to ${ckptDir} (resume with --resume ${cfg.out})`);
      break;
    }
    const lr = schedule(step);
    opt.lr = lr;
    let estimatorMs: number | null = null;
    const refresh = isSophia && (opt as O.Sophia).wantsHessian();
    const shared = refresh && cfg.hessBatch === 'shared' && precision === 'f32';
    if (refresh && !shared) {
      // Timed on its own (two waits every k steps) so its overhead can be reported.
      await E.runtime.sync();
      const te = performance.now();
      const batch = estLoader.next();
      E.tidy(() => {
        const ids = E.tensor(batch.inputs, [estimatorBatch(cfg), cfg.context], 'i32');
        const tg = E.tensor(batch.targets, [estimatorBatch(cfg), cfg.context], 'i32');
        const sophia = opt as O.Sophia;
        const B = estimatorBatch(cfg) * cfg.context;
        const hhat =
          cfg.optimizer === 'sophia'
            ? O.gnbEstimate((...ps) => functionalCall(model, ps, () => model.sampledLoss(ids, tg, estGen)), named, B, sophia.form)
            : O.hutchinsonEstimate((...ps) => functionalCall(model, ps, () => model.loss(ids, tg)), named, estGen, cfg.probe ?? 'rademacher');
        sophia.updateHessian(hhat, estimateTokens(cfg));
      });
      await E.runtime.sync();
      estimatorMs = performance.now() - te;
      estimatorMsTotal += estimatorMs;
      intervalEstimatorMs += estimatorMs;
    }
    const epoch = Math.floor(step / stepsPerEpoch);
    if (shared) {
      // The estimate runs inside this step: time the step on its own and count what it took
      // beyond a plain step (known after the first log interval) as the estimator's.
      await E.runtime.sync();
    }
    const ts = performance.now();
    const kept = E.tidy(() => {
      const micro = Array.from({ length: cfg.gradAccum }, () => loader.next());
      const hessian = shared
        ? { sophia: opt as O.Sophia, gen: estGen, estimator: cfg.optimizer === 'sophia' ? ('gnb' as const) : ('hutchinson' as const), probe: cfg.probe ?? 'rademacher' }
        : null;
      const { loss, gradNorm } = trainStep(model, opt, micro, { precision, scaler, gradClip: cfg.gradClip, shape: [cfg.batchSize, cfg.context], hessian, onGradients: hooks.gradients && ((m) => hooks.gradients!(step + 1, m)) });
      const winRate = isSophia ? (opt as O.Sophia).winRate() : null;
      const finite = opt.lastStepFinite();
      // h changes only when it is refreshed: its per-layer statistics are recorded then.
      const hStats = refresh ? hStatsByLayer(opt as O.Sophia, named) : null;
      const badH = refresh ? (opt as O.Sophia).lastRefreshNonFinite() : null;
      return {
        loss,
        gradNorm,
        winRate: winRate?.realize() ?? null,
        scaler: scaler?.snapshot().realize() ?? null,
        taken: finite ? E.mul(finite, 1).realize() : null,
        hStats,
        nonFiniteHessian: badH ? E.mul(badH, 1).realize() : null,
      };
    });
    step++;
    if (shared) {
      await E.runtime.sync();
      if (perStepMs > 0) {
        estimatorMs = Math.max(0, performance.now() - ts - perStepMs);
        estimatorMsTotal += estimatorMs;
        intervalEstimatorMs += estimatorMs;
      }
    }
    pending.push({ step, epoch, tokens: step * tokensPerStep, lr, estimatorMs, ...kept });

    const atEnd = step === totalSteps;
    const warmDone = step === warmEnd;
    if (step % cfg.logEvery === 0 || atEnd || step % cfg.evalEvery === 0 || warmDone) {
      await flush();
      if (warmDone) {
        warmSteps += step - sessionStart.step;
        warmMs += trainMs - sessionStart.trainMs;
        warmEstimatorMs += estimatorMsTotal - sessionStart.estimatorMsTotal;
      }
      const tokS = (step * tokensPerStep) / (trainMs / 1000);
      const eta = ((totalSteps - step) * trainMs) / step / 1000;
      hooks.progress?.(step, totalSteps, `loss ${lastLoss?.toFixed(3) ?? '—'}  lr ${lr.toExponential(2)}  ${tokS.toFixed(0)} tok/s  ETA ${eta.toFixed(0)}s`);
    }
    if (step % cfg.evalEvery === 0 || atEnd) {
      const te = performance.now();
      lastEval = await evaluate(model, data.valid, cfg, precision);
      writeRow({ type: 'eval', step, epoch: step / stepsPerEpoch, tokens: step * tokensPerStep, ...lastEval });
      log(`[${cfg.optimizer}] step ${step}/${totalSteps}  train ${lastLoss?.toFixed(4) ?? '—'}  val ${lastEval.valLoss.toFixed(4)}  ppl ${lastEval.valPpl.toFixed(1)}  acc ${(lastEval.valAcc * 100).toFixed(2)}%`);
      intervalStart += performance.now() - te; // evaluation time is not training time
    }
    if (cfg.checkpointEvery > 0 && step % cfg.checkpointEvery === 0 && !atEnd) {
      // The checkpoint's metricRows must cover every step before it: a resumed run drops the
      // rows after it and writes them again from its own steps.
      await flush();
      await checkpoint();
    }
  }
  await flush();
  if (step < totalSteps) return summarise();

  await checkpoint();
  await saveGPT2(model, join(cfg.out, 'model'));
  // Beside the weights, as torch users save optimizer.state_dict(): to continue or inspect.
  await O.saveOptimizer(join(cfg.out, 'model'), opt);
  const prompt = data.encode(cfg.samplePrompt || 'The');
  const sample = await generate(model, prompt, { maxNewTokens: cfg.sampleTokens, temperature: cfg.temperature ?? 0.8, topK: cfg.topK ?? 40, seed: cfg.seed });
  writeFileAtomic(join(cfg.out, 'sample.txt'), data.decode([...prompt, ...sample]) + '\n');
  const summary = summarise();
  if (cfg.testEval) {
    const r = await evaluate(model, data.test!, cfg, precision);
    Object.assign(summary, { testLoss: r.valLoss, testPpl: r.valPpl, testAcc: r.valAcc });
    log(`[${cfg.optimizer}] test split: loss ${r.valLoss.toFixed(4)}  ppl ${r.valPpl.toFixed(1)}  acc ${(r.valAcc * 100).toFixed(2)}%`);
  }
  writeFileAtomic(join(cfg.out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  model.dispose();
  return summary;

  function summarise(): RunSummary {
    // Past the warm-up when there was more than it; else everything.
    const warm = step > warmSteps && trainMs > warmMs;
    const steadySteps = warm ? step - warmSteps : step;
    const trainS = (warm ? trainMs - warmMs : trainMs) / 1000;
    const estMs = warm ? estimatorMsTotal - warmEstimatorMs : estimatorMsTotal;
    return {
      optimizer: cfg.optimizer,
      finalTrainLoss: finalLoss(recentLosses),
      valLoss: lastEval?.valLoss ?? null,
      valPpl: lastEval?.valPpl ?? null,
      valAcc: lastEval?.valAcc ?? null,
      testLoss: null,
      testPpl: null,
      testAcc: null,
      // Measured over the steps run after the warm-up; for a run shorter than an epoch, projected from them.
      timePerEpochS: steadySteps > 0 && trainS > 0 ? (trainS / steadySteps) * stepsPerEpoch : null,
      epochs: step / stepsPerEpoch,
      tokensPerS: (steadySteps * tokensPerStep) / trainS,
      estimatorOverhead: isSophia && trainS > 0 ? estMs / (trainS * 1000) : null,
      warmupS: warmMs / 1000,
      steps: step,
      tokens: step * tokensPerStep,
      wallS: (performance.now() - t0Run) / 1000,
    };
  }
}

/** fsync an existing file's contents. */
function syncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
