// Optimizers, schedules and clipping against PyTorch (fixture: scripts/optim_fixtures.py).
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import * as O from '../../src/optim/index.ts';
import { expectClose } from '../helpers.ts';

const fx = JSON.parse(readFileSync(new URL('../fixtures/optim/fixtures.json', import.meta.url), 'utf8'));
const shapes: number[][] = fx.shapes;

beforeAll(async () => {
  await E.init();
});

/** `skip`: steps (from 0) whose gradients are made non-finite here; torch did not step then (GradScaler). */
type Case = { params: number[][]; grads: number[][][]; after: number[][][]; skip?: number[] };

async function replay(c: Case, make: (named: O.NamedParam[]) => O.Optimizer, beforeStep?: (opt: O.Optimizer, t: number, named: O.NamedParam[]) => void, late = 0) {
  const named = c.params.map((p, i) => ({ name: `p${i}`, param: E.tensor(p, shapes[i]).requiresGrad_() }));
  const opt = make(named);
  for (let t = 0; t < c.grads.length; t++) {
    named.forEach((n, i) => (n.param.grad = i === 1 && t < late ? null : E.tensor(c.grads[t][i], shapes[i])));
    if (c.skip?.includes(t)) named[0].param.grad = E.tensor(c.grads[t][0].map((g, j) => (j === 1 ? NaN : g)), shapes[0]);
    beforeStep?.(opt, t, named);
    opt.step();
    // f32 against torch's float64: relative 1e-5 on the parameters.
    for (let i = 0; i < named.length; i++) expectClose(await named[i].param.toArray(), c.after[t][i], 1e-5, 1e-6, `step ${t + 1}, param ${i}`);
  }
  expect(await opt.skippedSteps()).toBe(c.skip?.length ?? 0);
}

describe('matches torch.optim', () => {
  it('SGD', () => replay(fx.sgd, (p) => new O.SGD(p, { lr: 0.1 })));
  it('SGD with momentum, dampening and weight decay', () => replay(fx.sgd_momentum_wd, (p) => new O.SGD(p, { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 })));
  it('SGD with Nesterov momentum', () => replay(fx.sgd_nesterov, (p) => new O.SGD(p, { lr: 0.05, momentum: 0.8, nesterov: true, weightDecay: 0.02 })));
  it('Adam (coupled weight decay)', () => replay(fx.adam, (p) => new O.Adam(p, { lr: 0.01, betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.01 })));
  it('Adam with amsgrad', () => replay(fx.adam_amsgrad, (p) => new O.Adam(p, { lr: 0.01, betas: [0.8, 0.9], amsgrad: true })));
  it('AdamW (decoupled weight decay)', () => replay(fx.adamw, (p) => new O.AdamW(p, { lr: 0.01, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 })));
  it('AdamW with amsgrad', () => replay(fx.adamw_amsgrad, (p) => new O.AdamW(p, { lr: 0.01, betas: [0.9, 0.99], eps: 1e-6, weightDecay: 0.05, amsgrad: true })));
  it('SGD with dampening (no Nesterov, no decay)', () => replay(fx.sgd_dampening, (p) => new O.SGD(p, { lr: 0.1, momentum: 0.5, dampening: 0.5 })));
  it('Adam and SGD when a parameter has no gradient in the first steps (per-parameter step counts)', async () => {
    await replay(fx.adam_late, (p) => new O.Adam(p, { lr: 0.01, betas: [0.9, 0.99] }), undefined, 2);
    await replay(fx.sgd_late, (p) => new O.SGD(p, { lr: 0.1, momentum: 0.9, dampening: 0.3 }), undefined, 2);
  });
  // A step with a NaN gradient is skipped (nonFinite: 'skip', the default) as torch's GradScaler
  // skips optimizer.step(): later steps use the count of steps taken, t = 1, 2, ... without gaps.
  it('Adam when step 2 has a NaN gradient (skipped, as under GradScaler)', () => replay(fx.adam_skip, (p) => new O.Adam(p, { lr: 0.01, betas: [0.9, 0.99], weightDecay: 0.01 })));
  it('AdamW with amsgrad when steps 1 and 4 have NaN gradients', () =>
    replay(fx.adamw_amsgrad_skip, (p) => new O.AdamW(p, { lr: 0.01, betas: [0.8, 0.95], weightDecay: 0.1, amsgrad: true })));
  it('Adam with a late parameter and a skipped step (per-parameter counts of steps taken)', () =>
    replay(fx.adam_late_skip, (p) => new O.Adam(p, { lr: 0.01, betas: [0.9, 0.99] }), undefined, 2));
  it("SGD momentum when steps 1 and 3 are skipped (the buffer starts at the first step taken)", () =>
    replay(fx.sgd_skip, (p) => new O.SGD(p, { lr: 0.1, momentum: 0.9, dampening: 0.3 })));
  it('AdamW with parameter groups (per-group weight decay and learning rate)', () =>
    replay(fx.adamw_groups, (p) => {
      const groups = O.defaultParamGroups(p, 0.1); // [3, 4] decays, [5] does not
      expect(groups.map((g) => g.params.map((q) => q.name))).toEqual([['p0'], ['p1']]);
      groups[1].options.lrScale = 0.5;
      return new O.AdamW(groups, { lr: 0.02, betas: [0.9, 0.95] });
    }));
  it("Sophia's official form equals the authors' SophiaG update", () => {
    const s = fx.sophiag;
    const o = s.options;
    return replay(
      s,
      (p) => new O.Sophia(p, { form: 'official', lr: o.lr, betas: o.betas, rho: o.rho, weightDecay: o.weightDecay, hessianEvery: o.hessianEvery }),
      (opt, t) => {
        const sophia = opt as O.Sophia;
        if (!sophia.wantsHessian()) return;
        // ĥ in the official form is ĝ⊙ĝ (B is applied in the step).
        const hhat = new Map<string, E.Tensor>(s.hessianGrads[t].map((g: number[], i: number) => [`p${i}`, E.mul(E.tensor(g, shapes[i]), E.tensor(g, shapes[i]))] as const));
        sophia.updateHessian(hhat, o.batchTokens);
      },
    );
  });
});

describe('schedules and clipping match torch', () => {
  for (const name of ['restarts_1', 'restarts_2']) {
    it(`CosineAnnealingWarmRestarts (${name})`, () => {
      const c = fx.schedules[name];
      const sch = O.cosineWarmRestarts(c.lr, c.t0, c.tMult, c.minLr);
      expectClose(c.lrs.map((_: number, i: number) => sch(i)), c.lrs, 1e-9, 1e-12, name);
    });
  }
  it('linear warm-up then cosine decay (SequentialLR(LinearLR, CosineAnnealingLR))', () => {
    const c = fx.schedules.warmup_cosine;
    const sch = O.withWarmup(c.warmup, O.cosine(c.lr, c.minLr, c.total));
    expectClose(c.lrs.map((_: number, i: number) => sch(i)), c.lrs, 1e-9, 1e-12, 'warmup_cosine');
  });
  it('warm-up then cosine decay', () => {
    const s = O.withWarmup(10, O.cosine(1e-3, 1e-4, 90));
    expect(s(0)).toBeCloseTo(1e-4, 12);
    expect(s(9)).toBeCloseTo(1e-3, 12);
    expect(s(10)).toBeCloseTo(1e-3, 12);
    expect(s(55)).toBeCloseTo(5.5e-4, 12);
    expect(s(100)).toBeCloseTo(1e-4, 12);
  });
  for (let k = 0; k < fx.clip.length; k++) {
    it(`clip_grad_norm_ (max norm ${fx.clip[k].maxNorm})`, async () => {
      const c = fx.clip[k];
      const ps = c.grads.map((g: number[], i: number) => {
        const p = E.zeros(shapes[i]).requiresGrad_();
        p.grad = E.tensor(g, shapes[i]);
        return p;
      });
      const norm = await O.clipGradNorm(ps, c.maxNorm).item();
      expect(Math.abs(norm - c.norm) / c.norm).toBeLessThan(1e-6);
      for (let i = 0; i < ps.length; i++) expectClose(await ps[i].grad!.toArray(), c.clipped[i], 1e-6, 1e-7, `grad ${i}`);
    });
  }
});
