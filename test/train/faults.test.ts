// Faults in a training run: a checkpoint taken between two metric flushes resumes without losing
// rows, and a run whose losses stay non-finite stops with a diagnosis and a checkpoint that holds
// the state after the last finite step. In-process, on a one-layer model (seconds).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import { GPT2, gpt2Config, saveGPT2 } from '../../src/nn/index.ts';
import { readLatestCheckpoint, writeCheckpoint } from '../../src/train/checkpoint.ts';
import { readRuns, tableCells } from '../../src/train/report.ts';
import { trainRun, type Hooks, type TrainConfig } from '../../src/train/trainer.ts';
import { curve, data } from './helpers.ts';

const config = (out: string, over: Partial<TrainConfig> = {}): TrainConfig => ({
  optimizer: 'sophia', model: 'tiny', nLayer: 1, nHead: 2, nEmbd: 32, batchSize: 2, gradAccum: 1, context: 16, epochs: 1, maxSteps: 8,
  lr: 1e-2, minLr: 1e-3, warmup: 2, schedule: 'cosine', t0: 50, tMult: 1, weightDecay: 0.1, gradClip: 1, hessEvery: 3, rho: 0.04, gamma: 0.01,
  betas: [0.965, 0.99], momentum: 0.9, evalEvery: 5, evalTokens: 32, logEvery: 3, checkpointEvery: 2, seed: 7, out, sampleTokens: 2, maxBadSteps: 3,
  ...over,
});
const quiet: Hooks = { log: () => {} };

beforeAll(async () => {
  await E.init();
});

describe('checkpoint files', () => {
  it('the same step written twice gets a new folder; LATEST never names a removed one', () => {
    const root = mkdtempSync(join(tmpdir(), 'ckpt-same-step-'));
    const tensors = new Map([['w', { dtype: 'F32' as const, shape: [2], data: new Float32Array([1, 2]) }]]);
    const first = writeCheckpoint(root, { step: 4, tensors, state: { v: 1 } });
    const second = writeCheckpoint(root, { step: 4, tensors, state: { v: 2 } });
    expect(second).not.toBe(first);
    expect(readLatestCheckpoint(root).state).toEqual({ v: 2 });
    writeCheckpoint(root, { step: 6, tensors, state: { v: 3 } }); // keeps the newest two
    expect(readLatestCheckpoint(root).state).toEqual({ v: 3 });
    expect(readdirSync(root).filter((d) => d.startsWith('step-')).sort()).toEqual(['step-00000004.1', 'step-00000006']);
  });
});

describe('a kill in the middle of writing a checkpoint', () => {
  it('leaves the previous checkpoint the one read; the next write clears the half-written files', () => {
    const root = mkdtempSync(join(tmpdir(), 'ckpt-half-'));
    const tensors = new Map([['w', { dtype: 'F32' as const, shape: [2], data: new Float32Array([1, 2]) }]]);
    writeCheckpoint(root, { step: 4, tensors, state: { v: 4 } });
    // What a SIGKILL during the step-6 write leaves: its temporary folder with a truncated
    // tensor file and no state.json, and a LATEST.tmp that was never renamed.
    mkdirSync(join(root, '.step-00000006.tmp-99999'));
    writeFileSync(join(root, '.step-00000006.tmp-99999', 'tensors.safetensors'), new Uint8Array(5));
    writeFileSync(join(root, 'LATEST.tmp-99999'), 'step-0000');
    expect(readLatestCheckpoint(root).state).toEqual({ v: 4 });
    writeCheckpoint(root, { step: 6, tensors, state: { v: 6 } });
    expect(readLatestCheckpoint(root).state).toEqual({ v: 6 });
    expect(readdirSync(root).sort()).toEqual(['LATEST', 'step-00000004', 'step-00000006']);
  });
});

describe('checkpoints between metric flushes', () => {
  it('checkpoints every 2 steps, losses read back every 3: crashed at step 5 and resumed, the same curve bit for bit', async () => {
    const ref = mkdtempSync(join(tmpdir(), 'faults-ref-'));
    await trainRun(config(ref), data, {}, quiet);
    const reference = curve(join(ref, 'metrics.jsonl'));
    expect(reference.filter((l) => l.includes('"train"')).length).toBe(8);

    const out = mkdtempSync(join(tmpdir(), 'faults-crash-'));
    const crash = (done: number) => {
      if (done === 5) throw new Error('crash');
    };
    await expect(trainRun(config(out), data, {}, { ...quiet, progress: crash })).rejects.toThrow('crash');
    // Losses come back at steps 3, 5 (evaluation), 6 and 8: the step-4 checkpoint was taken with
    // step 4's row still pending (progress reports at step 5, before that step's checkpoint).
    expect(readFileSync(join(out, 'checkpoints', 'LATEST'), 'utf8').trim()).toBe('step-00000004');
    await trainRun(config(out), data, {}, quiet, true);
    expect(curve(join(out, 'metrics.jsonl'))).toEqual(reference);
  });
});

describe('a run that diverges', () => {
  it('in a job of several runs, a diverged run is reported and the others and the report still happen (exit status 1)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'faults-nan-model-'));
    const poisoned = new GPT2(gpt2Config('tiny', { nLayer: 1, nHead: 2, nEmbd: 32 }), 3);
    const values = new Float32Array(32);
    values[5] = NaN;
    E.noGrad(() => E.assign(new Map(poisoned.namedParameters()).get('ln_f.bias')!, E.tensor(values, [32])));
    await saveGPT2(poisoned, dir);
    const out = mkdtempSync(join(tmpdir(), 'faults-nan-job-'));
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/gpt2-wikitext.ts', '--optimizer', 'all', '--model', dir, '--context', '16', '--batch-size', '2', '--max-steps', '6',
      '--max-bad-steps', '2', '--log-every', '1', '--eval-every', '6', '--eval-tokens', '32', '--sample-tokens', '2', '--out', out], { cwd: fileURLToPath(new URL('../../', import.meta.url)), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(1);
    for (const name of ['sophia', 'adamw', 'sgd']) expect(r.stderr).toMatch(new RegExp(`${name}: 2 consecutive steps with a non-finite loss or gradient`));
    expect(r.stderr).toMatch(/diverged: sophia, adamw, sgd/);
    expect(existsSync(join(out, 'report.html'))).toBe(true);
  }, 120_000);
  it('stops after maxBadSteps non-finite losses, naming the cause, with a checkpoint of the last finite state', async () => {
    // A model whose final LayerNorm bias holds a NaN: every loss and gradient is NaN.
    const dir = mkdtempSync(join(tmpdir(), 'faults-nan-model-'));
    const poisoned = new GPT2(gpt2Config('tiny', { nLayer: 1, nHead: 2, nEmbd: 32 }), 3);
    const bias = new Map(poisoned.namedParameters()).get('ln_f.bias')!;
    const values = new Float32Array(32);
    values[5] = NaN;
    E.noGrad(() => E.assign(bias, E.tensor(values, [32])));
    await saveGPT2(poisoned, dir);
    const initial = new Map<string, Float32Array>();
    for (const [name, p] of poisoned.namedParameters()) initial.set(name, (await p.toArray()) as Float32Array);

    const out = mkdtempSync(join(tmpdir(), 'faults-nan-run-'));
    const lines: string[] = [];
    const cfg = config(out, { model: dir, nLayer: null, nHead: null, nEmbd: null, optimizer: 'adamw', betas: [0.9, 0.95], logEvery: 1, checkpointEvery: 0 });
    await expect(trainRun(cfg, data, {}, { log: (l) => lines.push(l) })).rejects.toThrow(/3 consecutive steps with a non-finite loss or gradient up to step 3: training diverged.*--resume/s);
    expect(lines.filter((l) => /non-finite loss/.test(l)).length).toBe(3);

    const ck = readLatestCheckpoint(join(out, 'checkpoints'));
    expect(ck.step).toBe(3);
    // Every update was skipped, so the checkpointed parameters are the initial ones (NaN included).
    for (const [name, want] of initial) {
      const got = ck.tensors.get(`model.${name}`)!.data as Float32Array;
      expect(Array.from(got).map(String), name).toEqual(Array.from(want).map(String));
    }
    const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.filter((r) => r.type === 'train').map((r) => [r.loss, r.skipped])).toEqual([
      [null, true],
      [null, true],
      [null, true],
    ]);
  });
});

describe('non-finite gradients behind a finite loss (f32)', () => {
  // One coordinate of the final LayerNorm bias's gradient is set to NaN at the given steps.
  const poison = (steps: number[]): Hooks['gradients'] => (step, model) => {
    if (!steps.includes(step)) return;
    const p = new Map(model.namedParameters()).get('ln_f.bias')!;
    const mask = new Float32Array(p.size);
    mask[3] = NaN;
    p.grad = E.add(p.grad!, E.tensor(mask, [p.size])).contiguousCopy();
  };
  const rowsOf = (out: string) => readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.type === 'train');
  it('count toward maxBadSteps: three in a row stop the run, naming the cause', async () => {
    const out = mkdtempSync(join(tmpdir(), 'faults-nan-grad-'));
    const lines: string[] = [];
    const cfg = config(out, { optimizer: 'adamw', betas: [0.9, 0.95], logEvery: 1, checkpointEvery: 0 });
    await expect(trainRun(cfg, data, {}, { log: (l) => lines.push(l), gradients: poison([2, 3, 4]) })).rejects.toThrow(/3 consecutive steps with a non-finite loss or gradient up to step 4/);
    expect(lines.filter((l) => /non-finite gradients with a finite loss/.test(l)).length).toBe(3);
    const rows = rowsOf(out);
    expect(rows.map((r) => r.skipped)).toEqual([false, true, true, true]);
    expect(rows.every((r) => Number.isFinite(r.loss))).toBe(true);
    expect(readLatestCheckpoint(join(out, 'checkpoints')).step).toBe(4);
  });
  it('fewer in a row than maxBadSteps are skipped and the run goes on', async () => {
    const out = mkdtempSync(join(tmpdir(), 'faults-nan-grad-ok-'));
    const cfg = config(out, { optimizer: 'adamw', betas: [0.9, 0.95], logEvery: 1, checkpointEvery: 0 });
    const summary = await trainRun(cfg, data, {}, { ...quiet, gradients: poison([2, 3, 5, 6]) });
    const rows = rowsOf(out);
    expect(rows.map((r) => r.skipped)).toEqual([false, true, true, false, true, true, false, false]);
    // Read back every step (logEvery 1), each row's stepMs is its step's own time: the summary's
    // throughput leaves out the first WARMUP_STEPS (shader compilation) and reports them apart.
    const ms = rows.map((r) => r.stepMs as number);
    const tokensPerStep = cfg.batchSize * cfg.context;
    expect(summary.warmupS! * 1000).toBeCloseTo(ms[0] + ms[1], 6);
    expect(summary.tokensPerS!).toBeCloseTo((6 * tokensPerStep) / (ms.slice(2).reduce((a, b) => a + b) / 1000), 6);
  });
});

describe('evaluation over the whole split, and the test split', () => {
  it('evalTokens 0 scores the whole validation split; testEval scores the test split once and the table shows it', async () => {
    const whole = mkdtempSync(join(tmpdir(), 'eval-whole-'));
    // The test split is the validation split here, so its score must equal the final evaluation.
    const withTest = { ...data, test: data.valid };
    const a = await trainRun(config(whole, { maxSteps: 4, evalEvery: 4, evalTokens: 0, testEval: true }), withTest, {}, quiet);
    expect(a.testLoss).toBe(a.valLoss);
    expect(a.testAcc).toBe(a.valAcc);
    // Asking for at least the split's length is the same thing; a short prefix is not.
    const full = await trainRun(config(mkdtempSync(join(tmpdir(), 'eval-full-')), { maxSteps: 4, evalEvery: 4, evalTokens: data.valid.length }), data, {}, quiet);
    const prefix = await trainRun(config(mkdtempSync(join(tmpdir(), 'eval-prefix-')), { maxSteps: 4, evalEvery: 4, evalTokens: 32 }), data, {}, quiet);
    expect(full.valLoss).toBe(a.valLoss);
    expect(prefix.valLoss).not.toBe(a.valLoss);
    expect(full.testLoss).toBeNull();

    const { header, rows } = tableCells(readRuns([whole]));
    const col = header.indexOf('Test loss');
    expect(col).toBeGreaterThan(header.indexOf('Val accuracy'));
    expect(rows[0][col]).toBe(a.testLoss!.toFixed(4));
  });
  it('testEval without a loaded test split says what is missing', async () => {
    await expect(trainRun(config(mkdtempSync(join(tmpdir(), 'eval-notest-')), { maxSteps: 1, testEval: true }), data, {}, quiet)).rejects.toThrow(/test split was not loaded/);
  });
});

describe("Sophia's h statistics per layer", () => {
  it('are recorded at each refresh step, and the last ones match the h the final checkpoint holds', async () => {
    const out = mkdtempSync(join(tmpdir(), 'hstats-'));
    await trainRun(config(out, { maxSteps: 8, hessEvery: 3, checkpointEvery: 0 }), data, {}, quiet);
    const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.type === 'train');
    // Refreshes before steps 1, 4 and 7 (stepCount 0, 3, 6).
    expect(rows.filter((r) => r.hStats).map((r) => r.step)).toEqual([1, 4, 7]);
    // Each refresh also says how many coordinates of ĥ were non-finite: none here.
    expect(rows.filter((r) => 'nonFiniteHessian' in r).map((r) => [r.step, r.nonFiniteHessian])).toEqual([[1, 0], [4, 0], [7, 0]]);
    const last = rows.find((r) => r.step === 7).hStats as Record<string, { mean: number; max: number }>;
    expect(Object.keys(last)).toEqual(['wte', 'wpe', 'block0', 'ln_f']);
    // h is not touched after the last refresh: recompute the statistics from the checkpoint.
    const ck = readLatestCheckpoint(join(out, 'checkpoints'));
    const want = new Map<string, { sum: number; n: number; max: number }>();
    for (const [name, t] of ck.tensors) {
      const m = /^opt\.state\.(.+)\.h$/.exec(name);
      if (!m) continue;
      const layer = /^h\.(\d+)\./.test(m[1]) ? `block${/^h\.(\d+)\./.exec(m[1])![1]}` : m[1].split('.')[0];
      const a = want.get(layer) ?? { sum: 0, n: 0, max: -Infinity };
      for (const v of t.data as Float32Array) (a.sum += v), (a.max = Math.max(a.max, v));
      a.n += t.data.length;
      want.set(layer, a);
    }
    expect([...want.keys()].sort()).toEqual(Object.keys(last).sort());
    for (const [layer, a] of want) {
      expect(last[layer].max, layer).toBe(Math.fround(a.max));
      expect(Math.abs(last[layer].mean - a.sum / a.n) / (a.sum / a.n), layer).toBeLessThan(1e-5);
      expect(last[layer].mean, layer).toBeGreaterThan(0); // GNB: ĝ⊙ĝ ≥ 0, and some are > 0
    }
  });
});
