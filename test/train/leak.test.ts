// A training step leaks nothing: after warm-up, GPT-2 steps (forward, backward, clipping, the
// optimizer update, Sophia's Hessian refreshes sharing the step's passes) leave the number of
// live GPU buffers where it was, and every buffer they need comes from the pool.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import { GPT2, gpt2Config } from '../../src/nn/index.ts';
import * as O from '../../src/optim/index.ts';
import { trainStep, type Batch } from '../../src/train/step.ts';
import { settleGarbage } from '../helpers.ts';
import { stream } from './helpers.ts';

beforeAll(async () => {
  await E.init();
});

const [B, T] = [2, 8];
const tokens = stream(4000, 3);
const batch = (i: number): Batch => {
  const s = (i * 37) % (tokens.length - B * T - 1);
  return { inputs: Int32Array.from(tokens.subarray(s, s + B * T)), targets: Int32Array.from(tokens.subarray(s + 1, s + 1 + B * T)) };
};

describe('no leak across training steps', () => {
  const cases: [string, (m: GPT2) => O.Optimizer, 'gnb' | 'hutchinson' | null][] = [
    ['AdamW', (m) => new O.AdamW(O.defaultParamGroups(m.namedParameters(), 0.1), { lr: 1e-3 }), null],
    ['Sophia-G, GNB sharing the step (k = 2)', (m) => new O.Sophia(O.defaultParamGroups(m.namedParameters(), 0.1), { lr: 1e-3, form: 'official', hessianEvery: 2 }), 'gnb'],
    ['Sophia-H, HVP sharing the step (k = 2)', (m) => new O.Sophia(O.defaultParamGroups(m.namedParameters(), 0.1), { lr: 1e-3, hessianEvery: 2 }), 'hutchinson'],
  ];
  for (const [name, make, estimator] of cases) {
    it(name, async () => {
      const model = new GPT2(gpt2Config('tiny', { nLayer: 2, nHead: 2, nEmbd: 32, vocabSize: 160, nPositions: T }), 1);
      const opt = make(model);
      const gen = new E.Generator(5);
      let i = 0;
      const step = () =>
        E.tidy(() => {
          const refresh = opt instanceof O.Sophia && estimator !== null && opt.wantsHessian();
          const hessian = refresh ? { sophia: opt as O.Sophia, gen, estimator: estimator! } : null;
          trainStep(model, opt, [batch(i++)], { precision: 'f32', scaler: null, gradClip: 1, shape: [B, T], hessian });
        });
      for (let k = 0; k < 4; k++) step(); // optimizer state, pools and kernels warmed, refreshes included
      await E.runtime.sync();
      await settleGarbage();
      const before = E.memoryStats();
      for (let k = 0; k < 4; k++) step();
      await E.runtime.sync();
      await settleGarbage();
      const after = E.memoryStats();
      expect(after.liveBuffers, 'live buffers').toBe(before.liveBuffers);
      expect(after.liveBytes, 'live bytes').toBe(before.liveBytes);
      expect(after.created, 'buffers created after warm-up').toBe(before.created);
      model.dispose();
    });
  }
});
