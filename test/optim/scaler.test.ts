// GradScaler against torch.cuda.amp.GradScaler's update rule (torch's _amp_update_scale_), and
// with an optimizer: an injected overflow skips the step (AdamW's t does not advance) and backs
// the scale off.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import * as O from '../../src/optim/index.ts';
import { expectClose } from '../helpers.ts';

beforeAll(async () => {
  await E.init();
});

/** torch's rule, on the host: the oracle. */
function torchUpdate(s: { scale: number; tracker: number }, foundInf: boolean, growth: number, backoff: number, interval: number) {
  if (foundInf) return { scale: s.scale * backoff, tracker: 0 };
  const successful = s.tracker + 1;
  if (successful === interval) {
    const next = s.scale * growth;
    return { scale: Number.isFinite(Math.fround(next)) ? next : s.scale, tracker: 0 };
  }
  return { scale: s.scale, tracker: successful };
}

describe('GradScaler', () => {
  it('follows torch: back off on overflow, count good steps, grow after growthInterval of them', async () => {
    const scaler = new O.GradScaler({ initScale: 1024, growthInterval: 3 });
    const pattern = [1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1];
    let want = { scale: 1024, tracker: 0 };
    let skipped = 0;
    const seen = new Set<number>();
    for (const ok of pattern) {
      scaler.update(E.full([], ok));
      want = torchUpdate(want, ok === 0, 2, 0.5, 3);
      skipped += 1 - ok;
      seen.add(want.scale);
      expect(await scaler.state()).toEqual({ scale: want.scale, goodSteps: want.tracker, skippedSteps: skipped });
    }
    expect([...seen].sort((x, y) => x - y)).toEqual([512, 1024, 2048]); // the pattern backs off and grows
  });

  it('never grows to inf', async () => {
    const scaler = new O.GradScaler({ initScale: 2 ** 127, growthInterval: 1 });
    scaler.update(E.full([], 1));
    expect((await scaler.state()).scale).toBe(2 ** 127);
  });

  it('with an optimizer: an overflowing gradient skips the step (params and state unchanged) and halves the scale', async () => {
    const w = E.tensor([1, -2, 3], [3]).requiresGrad_();
    const opt = new O.AdamW([{ name: 'w', param: w }], { lr: 0.1 });
    const scaler = new O.GradScaler({ initScale: 2 ** 16, growthInterval: 2 });
    const step = (loss: (w: E.Tensor) => E.Tensor) => {
      E.backward(scaler.scaleLoss(loss(w)));
      scaler.unscale([w]);
      opt.step();
      scaler.update(opt.lastStepFinite()!);
      opt.zeroGrad();
    };
    // A good step: AdamW's first step is lr·sign(g) plus decoupled decay (torch default 0.01),
    // whatever the gradient's size, so the scale must be gone from g only for later steps; the
    // gradient itself is checked unscaled below.
    step((x) => E.sum(E.mul(x, x)));
    const after1 = Array.from(await w.toArray());
    after1.forEach((v, i) => expect(v).toBeCloseTo([1, -2, 3][i] * (1 - 0.1 * 0.01) - 0.1 * Math.sign([1, -2, 3][i]), 5));
    expect(await scaler.state()).toEqual({ scale: 2 ** 16, goodSteps: 1, skippedSteps: 0 });
    // Overflow: a loss whose scaled gradient is inf (as an f16 gradient past 65504 would be).
    step((x) => E.mul(E.sum(x), 1e35));
    expect(Array.from(await w.toArray())).toEqual(after1);
    expect(await scaler.state()).toEqual({ scale: 2 ** 15, goodSteps: 0, skippedSteps: 1 });
    expect(await opt.skippedSteps()).toBe(1);
    step((x) => E.sum(E.mul(x, x)));
    step((x) => E.sum(E.mul(x, x)));
    expect(await scaler.state()).toEqual({ scale: 2 ** 16, goodSteps: 0, skippedSteps: 1 });
    // torch's semantics: the skipped step never called optimizer.step(), so the three steps taken
    // are AdamW's steps t = 1, 2, 3 (bias corrections included) on g = 2θ. In float64:
    const th = [1, -2, 3];
    const m = [0, 0, 0];
    const v = [0, 0, 0];
    for (let t = 1; t <= 3; t++) {
      for (let i = 0; i < 3; i++) {
        const g = 2 * th[i];
        th[i] *= 1 - 0.1 * 0.01;
        m[i] = 0.9 * m[i] + 0.1 * g;
        v[i] = 0.999 * v[i] + 0.001 * g * g;
        th[i] -= ((0.1 / (1 - 0.9 ** t)) * m[i]) / (Math.sqrt(v[i]) / Math.sqrt(1 - 0.999 ** t) + 1e-8);
      }
    }
    expectClose(await w.toArray(), th, 1e-5, 1e-6, 'after the skipped step and two more');
  });

  it('unscale() leaves the true gradient (loss·S backward, then ÷S)', async () => {
    const w = E.tensor([0.5, -1.5], [2]).requiresGrad_();
    const scaler = new O.GradScaler({ initScale: 2 ** 12 });
    E.backward(scaler.scaleLoss(E.sum(E.mul(w, w))));
    expect(Array.from(await w.grad!.toArray())).toEqual([2 ** 12, -3 * 2 ** 12]);
    scaler.unscale([w]);
    expect(Array.from(await w.grad!.toArray())).toEqual([1, -3]);
  });

  it('computes its own finite check for optimizers that make none', async () => {
    const w = E.tensor([1, 2], [2]).requiresGrad_();
    E.backward(E.mul(E.sum(w), Infinity));
    expect(await O.GradScaler.allFinite([w]).item()).toBe(0);
  });
});
