// Sophia's variation flags reach the optimizer the training run builds (--sophia-form, --rho,
// --gamma, --clip-threshold, --bias-correct-h, --sign-momentum, --hess-every), and --probe reaches
// the Hutchinson estimator: different probes give different h after the same refresh.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import * as O from '../../src/optim/index.ts';
import { readLatestCheckpoint } from '../../src/train/checkpoint.ts';
import { buildModel, buildOptimizer, trainRun, type TrainConfig } from '../../src/train/trainer.ts';
import { data } from './helpers.ts';

const config = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  optimizer: 'sophia', model: 'tiny', nLayer: 1, nHead: 2, nEmbd: 32, batchSize: 2, gradAccum: 1, context: 16, epochs: 1, maxSteps: 2,
  lr: 1e-2, minLr: 1e-3, warmup: 0, schedule: 'constant', t0: 50, tMult: 1, weightDecay: 0.1, gradClip: 1, hessEvery: 1, rho: 0.04, gamma: 0.01,
  betas: [0.965, 0.99], momentum: 0.9, evalEvery: 100, evalTokens: 32, logEvery: 1, checkpointEvery: 0, seed: 7, out: mkdtempSync(join(tmpdir(), 'variations-')), sampleTokens: 1, maxBadSteps: 3,
  ...over,
});

beforeAll(async () => {
  await E.init();
});

describe("Sophia's variations through the training run", () => {
  it('each flag sets the optimizer built for the run', () => {
    const build = (over: Partial<TrainConfig>) => buildOptimizer(config(over), buildModel(config(over))) as O.Sophia;
    expect(build({}).form).toBe('official');
    expect(build({ optimizer: 'sophia-h' }).form).toBe('paper');
    const o = build({ sophiaForm: 'paper', gamma: 0.2, rho: 0.3, clipThreshold: 0.5, biasCorrectH: true, signMomentum: true, hessEvery: 7 });
    expect([o.form, o.gamma, o.rho, o.clipThreshold, o.biasCorrection, o.signMomentum, o.hessianEvery]).toEqual(['paper', 0.2, 0.3, 0.5, true, true, 7]);
  });

  it('--probe reaches Hutchinson: Gaussian and Rademacher probes give different h; --sign-momentum keeps h at 0', async () => {
    const h = async (over: Partial<TrainConfig>) => {
      const cfg = config(over);
      await trainRun(cfg, data, {}, { log: () => {} });
      const t = readLatestCheckpoint(join(cfg.out, 'checkpoints')).tensors;
      const name = [...t.keys()].find((k) => k.startsWith('opt.') && k.endsWith('.h'));
      return name ? Array.from(t.get(name)!.data) : null;
    };
    const rad = await h({ optimizer: 'sophia-h', probe: 'rademacher' });
    const gau = await h({ optimizer: 'sophia-h', probe: 'gaussian' });
    expect(rad).not.toBeNull();
    expect(gau).not.toEqual(rad);
    const sm = await h({ optimizer: 'sophia-h', signMomentum: true });
    expect(sm === null || sm.every((v) => v === 0)).toBe(true);
  }, 120_000);
});

describe('--hess-batch-size', () => {
  it('sizes the separate estimator minibatch, whose token count is GNB\'s B', async () => {
    const run = async (hessBatchSize: number | null) => {
      const cfg = config({ maxSteps: 1, hessBatchSize });
      await trainRun(cfg, data, {}, { log: () => {} });
      const ck = readLatestCheckpoint(join(cfg.out, 'checkpoints'));
      const h = ck.tensors.get([...ck.tensors.keys()].find((k) => k.startsWith('opt.') && k.endsWith('.h'))!)!.data;
      return { batchTokens: (ck.state.optimizer as { batchTokens: number }).batchTokens, h: Array.from(h) };
    };
    const whole = await run(null);
    const one = await run(1);
    expect(whole.batchTokens).toBe(2 * 16);
    expect(one.batchTokens).toBe(1 * 16);
    expect(one.h).not.toEqual(whole.h);
  });
  it('is refused when not a whole number ≥ 1, or together with --hess-batch shared', async () => {
    await expect(trainRun(config({ hessBatchSize: 0 }), data, {}, { log: () => {} })).rejects.toThrow(/--hess-batch-size must be a whole number of sequences ≥ 1; got 0/);
    await expect(trainRun(config({ hessBatchSize: 1, hessBatch: 'shared' }), data, {}, { log: () => {} })).rejects.toThrow(/--hess-batch shared estimates on the step's own micro-batch/);
  });
});
