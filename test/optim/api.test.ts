// The optimizer API around the updates: tidy() scopes, parameter groups, the learning-rate
// setter, diagnostics, non-finite reporting, the clipping threshold, Sophia's estimator
// callback, GNB from a logits closure (B counted once), Hutchinson's probes, and checkpoints on disk.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import * as O from '../../src/optim/index.ts';
import { runtime } from '../../src/gpu/runtime.ts';
import { expectClose, values } from '../helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'optim-'));
beforeAll(async () => {
  await E.init();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const f32 = (n: number, seed: number, scale = 1) => Float32Array.from(values(n, seed), (v) => v * scale);
const named = (name: string, shape: number[], seed: number) => ({ name, param: E.tensor(f32(shape.reduce((a, b) => a * b, 1), seed), shape).requiresGrad_() });

describe('optimizer plumbing', () => {
  it('state survives tidy(): steps inside tidy follow the same trajectory as steps outside', async () => {
    const run = async (inTidy: boolean) => {
      const p = named('w', [2, 3], 1);
      const opt = new O.Sophia([p], { lr: 0.05, hessianEvery: 2, trackGradNorm: true });
      for (let t = 0; t < 5; t++) {
        const body = () => {
          if (opt.wantsHessian()) opt.updateHessian(new Map([['w', E.abs(E.tensor(f32(6, 10 + t), [2, 3]))]]), 3);
          p.param.grad = E.tensor(f32(6, 20 + t), [2, 3]);
          opt.step();
          opt.zeroGrad();
        };
        if (inTidy) E.tidy(body);
        else body();
      }
      return { theta: Array.from(await p.param.toArray()), diag: await opt.readDiagnostics() };
    };
    const a = await run(false);
    const b = await run(true);
    expect(b.theta).toEqual(a.theta);
    expect(b.diag).toEqual(a.diag);
  });

  it('defaultParamGroups: 1-D parameters (biases, LayerNorm) get no weight decay', async () => {
    const w = named('w', [2, 2], 1);
    const b = named('b', [2], 2);
    const groups = O.defaultParamGroups([w, b], 0.5);
    expect(groups.map((g) => [g.params.map((p) => p.name), g.options.weightDecay])).toEqual([
      [['w'], 0.5],
      [['b'], 0],
    ]);
    const w0 = await w.param.toArray();
    const b0 = Array.from(await b.param.toArray());
    const opt = new O.AdamW(groups, { lr: 0.1 });
    w.param.grad = E.zeros([2, 2]);
    b.param.grad = E.zeros([2]);
    opt.step();
    expectClose(await w.param.toArray(), Array.from(w0, (v) => v * (1 - 0.1 * 0.5)), 1e-6, 0, 'decayed');
    expect(Array.from(await b.param.toArray())).toEqual(b0);
    // Tuples [name, tensor] (Module.namedParameters()) are accepted too.
    expect(O.defaultParamGroups([['x', w.param]], 0.1)[0].params[0].name).toBe('x');
  });

  it('the learning rate is settable (a schedule drives it) and validated', async () => {
    const p = named('w', [3], 3);
    const opt = new O.SGD([p], { lr: 0.1 });
    const sch = O.withWarmup(2, O.cosine(0.1, 0.01, 4));
    const before = await p.param.toArray();
    const g = f32(3, 4);
    let expected = Array.from(before);
    for (let t = 0; t < 6; t++) {
      opt.lr = sch(t);
      p.param.grad = E.tensor(g);
      opt.step();
      expected = expected.map((v, i) => v - sch(t) * g[i]);
    }
    expectClose(await p.param.toArray(), expected, 1e-5, 1e-6, 'scheduled SGD');
    expect(() => (opt.lr = -0.5)).toThrow(/lr must be in \[0, Infinity\], got -0.5/);
    expect(() => (opt.lr = NaN)).toThrow(/got NaN/);
  });

  it('more bad input: betas, momentum, clip threshold, policies, probes, schedules', () => {
    const p = () => [named('w', [2], 1)];
    expect(() => new O.Adam(p(), { lr: 1e-3, betas: [-0.1, 0.9] })).toThrow(/beta1 must be in \[0, 1\), got -0.1/);
    expect(() => new O.Sophia(p(), { lr: 1e-3, betas: [0.9, 1.5] })).toThrow(/beta2 must be in \[0, 1\), got 1.5/);
    expect(() => new O.SGD(p(), { lr: 1e-3, momentum: 1 })).toThrow(/momentum must be in \[0, 1\), got 1/);
    expect(() => new O.SGD(p(), { lr: 1e-3, nesterov: true })).toThrow(/Nesterov/);
    expect(() => new O.Sophia(p(), { lr: 1e-3, clipThreshold: 0 })).toThrow(/clipThreshold must be in \(0, Infinity\], got 0/);
    expect(() => new O.Sophia(p(), { lr: 1e-3, hessianEvery: 2.5 })).toThrow(/got 2.5/);
    expect(() => new O.Sophia(p(), { lr: 1e-3, form: 'nope' as O.SophiaForm })).toThrow(/form must be 'paper' or 'official', got 'nope'/);
    expect(() => new O.AdamW(p(), { lr: 1e-3, nonFinite: 'maybe' as O.NonFinitePolicy })).toThrow(/nonFinite/);
    expect(() => new O.SGD(p(), { lr: 1e-3, weightDecay: -1 })).toThrow(/weightDecay must be in \[0, Infinity\], got -1/);
    expect(() => O.cosineWarmRestarts(1, 0)).toThrow(/T_0 must be a positive integer, got 0/);
    expect(() => O.withWarmup(-1, O.constant(1))).toThrow(/warmup/);
    expect(() => O.hutchinsonEstimate((x) => E.sum(x), p(), new E.Generator(1), 'uniform' as O.Probe)).toThrow(/probe/);
    const sophia = new O.Sophia(p(), { lr: 1e-3 });
    expect(() => sophia.updateHessian(new Map(), 0)).toThrow(/batchTokens must be ≥ 1, got 0/);
    expect(() => new O.SGD([named('a', [1], 1), named('a', [1], 2)], { lr: 1 })).toThrow(/'a' appears twice/);
    // Each parameter group's own options too, naming the group.
    const groups = (options: O.ParamGroup['options']) => [{ params: p(), options: {} }, { params: [named('b', [2], 2)], options }];
    expect(() => new O.AdamW(groups({ weightDecay: -1 }), { lr: 1e-3 })).toThrow(/group 1 weightDecay must be in \[0, Infinity\], got -1/);
    expect(() => new O.Sophia(groups({ lrScale: -5 }), { lr: 1e-3 })).toThrow(/group 1 lrScale must be in \[0, Infinity\], got -5/);
  });
});

describe('fused updates', () => {
  it('one step is one kernel per parameter (state and θ written together) for every optimizer', async () => {
    // [name, optimizer, extra dispatches per parameter, extra per step]
    const make: [string, (ps: O.NamedParam[]) => O.Optimizer, number, number][] = [
      ['SGD momentum', (ps) => new O.SGD(ps, { lr: 0.1, momentum: 0.9, weightDecay: 0.01, nonFinite: 'update' }), 0, 0],
      ['Adam amsgrad', (ps) => new O.Adam(ps, { lr: 0.1, amsgrad: true, weightDecay: 0.01, nonFinite: 'update' }), 0, 0],
      ['AdamW', (ps) => new O.AdamW(ps, { lr: 0.1, nonFinite: 'update' }), 0, 0],
      ['Sophia official', (ps) => new O.Sophia(ps, { lr: 0.1, form: 'official', biasCorrection: true, trackWinRate: false, nonFinite: 'update' }), 0, 0],
      // The win rate is counted by the update kernel itself; adding up its per-workgroup
      // partials is one small reduction per parameter, and the total one more per step.
      ['Sophia paper with win rate', (ps) => new O.Sophia(ps, { lr: 0.1, nonFinite: 'update' }), 1, 1],
      // nonFinite: 'skip' adds the finite check (a reduction per gradient, then their minimum)
      // and the step table (one kernel: verdict, finite-step counts, Adam's bias corrections).
      ['AdamW skipping non-finite steps', (ps) => new O.AdamW(ps, { lr: 0.1 }), 1, 2],
      ['Adam amsgrad skipping non-finite steps', (ps) => new O.Adam(ps, { lr: 0.1, amsgrad: true, weightDecay: 0.01 }), 1, 2],
      ['SGD momentum skipping non-finite steps', (ps) => new O.SGD(ps, { lr: 0.1, momentum: 0.9, dampening: 0.1 }), 1, 2],
    ];
    for (const [what, build, perParam, perStep] of make) {
      const ps = [named('a', [3, 4], 1), named('b', [2, 5], 2)]; // one rank: one pipeline per optimizer to compile
      const opt = build(ps);
      for (let t = 0; t < 3; t++) {
        ps.forEach((p, i) => (p.param.grad = E.tensor(f32(p.param.size, 10 * t + i), [...p.param.shape])));
        await ps[0].param.grad!.toArray(); // flush the uploads
        const before = runtime.stats.dispatches;
        opt.step();
        // Step 1 also zero-fills the new state tensors.
        if (t > 0) expect(runtime.stats.dispatches - before, `${what}, step ${t + 1}`).toBe(ps.length * (1 + perParam) + perStep);
        opt.zeroGrad();
      }
    }
  });
});

describe('diagnostics and non-finite gradients', () => {
  it('lazy diagnostics: lr, step, global grad norm, win rate and h statistics, read in one go', async () => {
    const w = named('w', [2, 2], 1);
    const b = named('b', [3], 2);
    const opt = new O.Sophia([w, b], { lr: 0.01, weightDecay: 0, betas: [0, 0.5], gamma: 1, hessianEvery: 10, trackGradNorm: true });
    opt.updateHessian(
      new Map([
        ['w', E.tensor([1, 2, 3, 4], [2, 2])],
        ['b', E.tensor([2, 2, 2])],
      ]),
      1,
    );
    w.param.grad = E.tensor([0.1, 5, -0.1, -9], [2, 2]); // h = ĥ/2: ratios 0.2, 5, -0.067, -4.5
    b.param.grad = E.tensor([0.5, 3, -0.1]); // ratios 0.5, 3, -0.1
    opt.step();
    const d = await opt.readDiagnostics();
    expect(d.lr).toBe(0.01);
    expect(d.step).toBe(1);
    expect(d.skippedSteps).toBe(0);
    expect(d.gradNorm).toBeCloseTo(Math.sqrt(0.01 + 25 + 0.01 + 81 + 0.25 + 9 + 0.01), 4);
    expect(d.winRate).toBeCloseTo(4 / 7, 6);
    expect(d['h.w.mean']).toBeCloseTo(1.25, 6);
    expect(d['h.w.max']).toBeCloseTo(2, 6);
    expect(d['h.b.mean']).toBeCloseTo(1, 6);
    // Without trackGradNorm nothing extra is computed.
    const sgd = new O.SGD([named('x', [2], 3)], { lr: 0.1 });
    expect((await sgd.readDiagnostics()).gradNorm).toBeNull();
  });

  it('checkFinite() reports skipped steps once, naming how many; nonFinite: "update" does not mask', async () => {
    const p = named('w', [2], 5);
    const opt = new O.SGD([p], { lr: 0.1, momentum: 0.9 });
    p.param.grad = E.tensor([1, 1]);
    opt.step();
    await opt.checkFinite();
    p.param.grad = E.tensor([NaN, 1]);
    opt.step();
    p.param.grad = E.tensor([1, -Infinity]);
    opt.step();
    await expect(opt.checkFinite()).rejects.toThrow(/2 of 3 optimizer steps were skipped/);
    await opt.checkFinite(); // already reported
    expect(Array.from(await p.param.toArray()).every(Number.isFinite)).toBe(true);
    expect((await opt.readDiagnostics()).skippedSteps).toBe(2);

    const q = named('w', [2], 5);
    const raw = new O.SGD([q], { lr: 0.1, nonFinite: 'update' });
    q.param.grad = E.tensor([NaN, 1]);
    raw.step();
    const after = await q.param.toArray();
    expect(Number.isNaN(after[0])).toBe(true);
    expect(await raw.skippedSteps()).toBe(0);
  });

  it('a non-finite Hessian estimate leaves h unchanged where it is not finite', async () => {
    const p = named('w', [3], 1);
    const opt = new O.Sophia([p], { lr: 0.1, betas: [0.9, 0.5] });
    opt.updateHessian(new Map([['w', E.tensor([2, 2, 2])]]), 1);
    expect(await opt.lastRefreshNonFinite()!.item()).toBe(0);
    opt.updateHessian(new Map([['w', E.tensor([4, NaN, Infinity])]]), 1);
    const h = opt.stateDict().tensors.get('state.w.h')!;
    expectClose(await h.toArray(), [2.5, 1, 1], 1e-6, 0, 'h'); // h = 1 after the first refresh
    expect(await opt.lastRefreshNonFinite()!.item()).toBe(2); // counted, for the trainer to report
  });
});

describe('Sophia variations', () => {
  it('the clipping threshold c bounds each coordinate: |θ′ − (1−ηλ)θ| ≤ c·η, and h = 0 gives c·η·sign(m)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.double({ min: 0.05, max: 4, noNaN: true }),
        fc.double({ min: 1e-3, max: 0.3, noNaN: true }),
        fc.integer({ min: 1, max: 1e6 }),
        fc.constantFrom<O.SophiaForm>('paper', 'official'),
        async (n, c, lr, seed, form) => {
          const p = named('w', [n], seed);
          const opt = new O.Sophia([p], { lr, weightDecay: 0.1, clipThreshold: c, form, hessianEvery: 1, gamma: 0.5, rho: 0.5 });
          const before = await p.param.toArray();
          opt.updateHessian(new Map([['w', E.abs(E.tensor(f32(n, seed + 1, 0.1)))]]), 2);
          p.param.grad = E.tensor(f32(n, seed + 2, 5));
          opt.step();
          const after = await p.param.toArray();
          after.forEach((a, i) => expect(Math.abs(a - (1 - lr * 0.1) * before[i])).toBeLessThanOrEqual(c * lr * (1 + 1e-5) + 1e-6));
          const q = named('w', [n], seed);
          const sm = new O.Sophia([q], { lr, weightDecay: 0, clipThreshold: c, signMomentum: true });
          const g = f32(n, seed + 3);
          q.param.grad = E.tensor(g);
          sm.step();
          expectClose(await q.param.toArray(), Array.from(before, (v, i) => v - c * lr * Math.sign(g[i])), 1e-5, 1e-6, 'c·sign');
        },
      ),
      { numRuns: 12 },
    );
  });

  it('the estimator callback runs before steps 1, k+1, 2k+1 and equals refreshing by hand', async () => {
    const k = 3;
    const calls: number[] = [];
    const est = (t: number) => new Map([['w', E.abs(E.tensor(f32(4, 50 + t)))]]);
    const a = named('w', [4], 7);
    const b = named('w', [4], 7);
    const auto = new O.Sophia([a], {
      lr: 0.05,
      hessianEvery: k,
      estimator: (opt) => {
        calls.push(opt.stepCount + 1);
        return { hhat: est(opt.stepCount), batchTokens: 5 };
      },
    });
    const manual = new O.Sophia([b], { lr: 0.05, hessianEvery: k });
    for (let t = 0; t < 8; t++) {
      if (manual.wantsHessian()) manual.updateHessian(est(manual.stepCount), 5);
      for (const [p, o] of [[a, auto], [b, manual]] as const) {
        p.param.grad = E.tensor(f32(4, 90 + t));
        o.step();
      }
    }
    expect(calls).toEqual([1, 4, 7]);
    expect(auto.refreshes).toBe(3);
    expect(Array.from(await a.param.toArray())).toEqual(Array.from(await b.param.toArray()));
  });
});

describe('GNB from a logits closure', () => {
  // Softmax regression: logits = X·W, W [d, V]. Its Hessian diagonal (the Gauss-Newton one, since
  // the logits are linear in W) is E over rows of x_j²·p_i(1 − p_i).
  const d = 3;
  const V = 4;
  const xRow = [0.5, -1, 2];

  it('B is the number of sampled rows, ĥ ≥ 0, paper = B × official, and it equals the hand-written sampled loss', async () => {
    const W = named('W', [d, V], 1);
    const X = E.tensor(f32(5 * 2 * d, 2), [5, 2, d]); // [5, 2, V] logits: B = 10
    const logits = (w: E.Tensor) => E.matmul(X, w);
    const paper = O.gnbFromLogits(logits, [W], new E.Generator(4), { form: 'paper' });
    const official = O.gnbFromLogits(logits, [W], new E.Generator(4), { form: 'official' });
    expect(paper.batchTokens).toBe(10);
    expect(official.batchTokens).toBe(10);
    const hp = await paper.hhat.get('W')!.toArray();
    expect(hp.every((v) => v >= 0)).toBe(true);
    expectClose(hp, Array.from(await official.hhat.get('W')!.toArray(), (v) => 10 * v), 1e-6, 0, 'B once');
    const byHand = O.gnbEstimate((w) => {
      const z = E.matmul(X, w);
      return O.meanCrossEntropy(z, E.categorical(E.detach(z), new E.Generator(4)));
    }, [W], 10, 'paper');
    expectClose(await byHand.get('W')!.toArray(), hp, 1e-6, 0, 'same labels, same estimate');
    // A different seed samples different labels.
    const other = await O.gnbFromLogits(logits, [W], new E.Generator(5), { form: 'paper' }).hhat.get('W')!.toArray();
    expect(Array.from(other)).not.toEqual(Array.from(hp));
  });

  it('E[B·ĝ⊙ĝ] is the Hessian diagonal x_j²·p_i(1−p_i): B counted exactly once', async () => {
    const W = named('W', [d, V], 3);
    const B = 64;
    const X = E.expand(E.tensor(xRow, [1, d]), [B, d]);
    const logits = (w: E.Tensor) => E.matmul(X, w);
    const w0 = await W.param.toArray();
    const z = Array.from({ length: V }, (_, i) => xRow.reduce((a, x, j) => a + x * w0[j * V + i], 0));
    const zs = z.map((v) => Math.exp(v - Math.max(...z)));
    const p = zs.map((v) => v / zs.reduce((a, b) => a + b, 0));
    const expected = Array.from({ length: d * V }, (_, k) => xRow[Math.floor(k / V)] ** 2 * p[k % V] * (1 - p[k % V]));
    const gen = new E.Generator(11);
    const S = 60;
    const sum = new Float64Array(d * V);
    const sq = new Float64Array(d * V);
    for (let s = 0; s < S; s++) {
      const h = await O.gnbFromLogits(logits, [W], gen, { form: 'paper' }).hhat.get('W')!.toArray();
      h.forEach((v, i) => {
        sum[i] += v;
        sq[i] += v * v;
      });
    }
    for (let i = 0; i < d * V; i++) {
      const mean = sum[i] / S;
      const se = Math.sqrt(Math.max(sq[i] / S - mean * mean, 0) / S);
      expect(Math.abs(mean - expected[i])).toBeLessThan(5 * se + 0.02 * expected[i] + 1e-6);
    }
    // Counting B twice (or not at all) is off by a factor of 64: far outside that bound.
  });
});

describe('Hutchinson probes', () => {
  it('Rademacher probes take both signs (a probe stuck at −1 would give row sums, not the diagonal)', async () => {
    const u = await new E.Generator(2).rademacher([2000]).toArray();
    expect(u.every((v) => v === 1 || v === -1)).toBe(true);
    const plus = u.filter((v) => v === 1).length / u.length;
    expect(Math.abs(plus - 0.5)).toBeLessThan(5 * Math.sqrt(0.25 / 2000));
  });

  it('ĥ is u⊙(Hu), not u⊙∇f: with diagonal H every probe gives diag(H) exactly, also averaged over samples', async () => {
    // f = Σ a_i x_i²/2 + Σ b_i x_i: ∇f = a⊙x + b (≠ diag), H = diag(a).
    const a = E.tensor([1, 2, 3, 4]);
    const b = E.tensor([5, -6, 7, -8]);
    const x = named('x', [4], 9);
    const f = (v: E.Tensor) => E.add(E.mul(E.sum(E.mul(a, E.mul(v, v))), 0.5), E.sum(E.mul(b, v)));
    for (const probe of ['rademacher'] as const) {
      expectClose(await O.hutchinsonEstimate(f, [x], new E.Generator(1), probe).get('x')!.toArray(), [1, 2, 3, 4], 1e-5, 1e-6, 'one probe');
      expectClose(await O.hutchinsonEstimate(f, [x], new E.Generator(1), probe, 5).get('x')!.toArray(), [1, 2, 3, 4], 1e-5, 1e-6, 'five probes');
    }
  });
});

describe('checkpoints on disk (safetensors + JSON)', () => {
  it('save → load into a fresh optimizer continues on exactly the same trajectory', async () => {
    const make = (p: O.NamedParam[]) => new O.Sophia(p, { lr: 0.02, form: 'official', hessianEvery: 2, biasCorrection: true });
    const step = (opt: O.Sophia, ps: O.NamedParam[], t: number) => {
      if (opt.wantsHessian()) opt.updateHessian(new Map(ps.map((p, i) => [p.name, E.abs(E.tensor(f32(p.param.size, 200 + 10 * t + i), [...p.param.shape]))])), 7 + t);
      ps.forEach((p, i) => (p.param.grad = E.tensor(f32(p.param.size, 300 + 10 * t + i), [...p.param.shape])));
      opt.step();
    };
    const a = [named('h.0.w', [3, 2], 1), named('h.0.b', [2], 2)];
    const optA = make(a);
    for (let t = 0; t < 3; t++) step(optA, a, t);
    await O.saveOptimizer(dir, optA);
    const b = await Promise.all(a.map(async (p) => ({ name: p.name, param: E.tensor(await p.param.toArray(), [...p.param.shape]).requiresGrad_() })));
    const optB = make(b);
    O.loadOptimizer(dir, optB);
    expect([optB.stepCount, optB.refreshes, optB.batchTokens]).toEqual([3, 2, 9]);
    for (let t = 3; t < 6; t++) {
      step(optA, a, t);
      step(optB, b, t);
    }
    for (let i = 0; i < a.length; i++) expect(Array.from(await b[i].param.toArray())).toEqual(Array.from(await a[i].param.toArray()));
  });

  it('state dicts from before per-parameter step counts load with every parameter at stepCount', async () => {
    const run = async (dropCounts: boolean) => {
      const a = named('w', [3], 4);
      const optA = new O.AdamW([a], { lr: 0.05 });
      for (let t = 0; t < 3; t++) {
        a.param.grad = E.tensor(f32(3, 60 + t));
        optA.step();
      }
      const sd = optA.stateDict();
      const json = JSON.parse(JSON.stringify(sd.json));
      if (dropCounts) delete json.paramSteps;
      const b = { name: 'w', param: a.param.contiguousCopy().requiresGrad_() };
      const optB = new O.AdamW([b], { lr: 0.05 });
      optB.loadStateDict({ json, tensors: new Map([...sd.tensors].map(([k, t]) => [k, t.contiguousCopy()] as const)) });
      b.param.grad = E.tensor(f32(3, 70));
      optB.step();
      return Array.from(await b.param.toArray());
    };
    expect(await run(true)).toEqual(await run(false));
  });

  it('refuses state for another optimizer, unknown parameters or wrong shapes', async () => {
    const p = [named('w', [2], 1)];
    const sgd = new O.SGD(p, { lr: 0.1, momentum: 0.9 });
    p[0].param.grad = E.tensor([1, 2]);
    sgd.step();
    await O.saveOptimizer(dir, sgd, 'sgd');
    expect(() => O.loadOptimizer(dir, new O.AdamW(p, { lr: 0.1 }), 'sgd')).toThrow(/state is for SGD, this optimizer is AdamW/);
    expect(() => O.loadOptimizer(dir, new O.SGD([named('v', [2], 1)], { lr: 0.1 }), 'sgd')).toThrow(/unexpected tensor 'state.w.momentum'/);
    expect(() => O.loadOptimizer(dir, new O.SGD([named('w', [3], 1)], { lr: 0.1 }), 'sgd')).toThrow(/has shape \[2\], parameter 'w' has \[3\]/);
    expect(() => O.loadOptimizer(dir, sgd, 'missing')).toThrow(/does not exist/);
  });

  it('saves the settings with the state and refuses to continue it under other ones', async () => {
    const p = [named('w', [2], 1)];
    const adam = new O.AdamW(p, { lr: 0.1, betas: [0.9, 0.95] });
    p[0].param.grad = E.tensor([1, 2]);
    adam.step();
    const { json } = adam.stateDict();
    expect(json.settings).toEqual({ betas: [0.9, 0.95], eps: 1e-8, amsgrad: false, decoupled: true, nonFinite: 'skip', groups: [{ weightDecay: 0.01, lrScale: 1, params: ['w'] }] });
    await O.saveOptimizer(dir, adam, 'adamw');
    const other = new O.AdamW(p, { lr: 0.2 });
    expect(() => O.loadOptimizer(dir, other, 'adamw')).toThrow(/saved by a AdamW with settings .*"betas":\[0.9,0.95\].*this one has .*"betas":\[0.9,0.999\]/);
    expect([other.stepCount, other.lr]).toEqual([0, 0.2]); // refused: nothing changed
    expect(() => O.loadOptimizer(dir, new O.AdamW(p, { lr: 0.1, betas: [0.9, 0.95], weightDecay: 0 }), 'adamw')).toThrow(/"weightDecay":0.01.*"weightDecay":0/);
    // The same settings load (the learning rate is state, restored from the save).
    const same = new O.AdamW(p, { lr: 0.5, betas: [0.9, 0.95] });
    O.loadOptimizer(dir, same, 'adamw');
    expect(same.lr).toBe(0.1);
    const sophia = new O.Sophia(p, { lr: 0.1, form: 'official', rho: 0.05 });
    await O.saveOptimizer(dir, sophia, 'sophia');
    expect(() => O.loadOptimizer(dir, new O.Sophia(p, { lr: 0.1, form: 'official' }), 'sophia')).toThrow(/"rho":0.05.*"rho":0.04/);
  });
});

describe('GNB sharing the training step forward', () => {
  // A small GPT-2 with a vocabulary past 256 (so sampling takes the fused kernel, as GPT-2's does)
  // and some ignored targets.
  it('∇L + ∇D equals the gradient of the sampled-label loss, with the same labels', async () => {
    const { GPT2, gpt2Config, functionalCall } = await import('../../src/nn/index.ts');
    const cfg = gpt2Config('tiny', { nLayer: 2, nHead: 2, nEmbd: 32, vocabSize: 300, nPositions: 16 });
    const model = new GPT2(cfg, 7);
    const [B, T] = [3, 16];
    const ids = E.tensor(Int32Array.from({ length: B * T }, (_, i) => (i * 37 + 5) % cfg.vocabSize), [B, T], 'i32');
    const tg = E.tensor(Int32Array.from({ length: B * T }, (_, i) => (i % 11 === 3 ? -100 : (i * 53 + 1) % cfg.vocabSize)), [B, T], 'i32');
    const named = model.namedParameters().map(([name, param]) => ({ name, param }));
    const params = named.map((p) => p.param);

    const { loss, delta } = model.lossWithGnbDelta(ids, tg, new E.Generator(9));
    expect(await loss.item()).toBeCloseTo(await model.loss(ids, tg).item(), 5);
    const shared = O.gnbFromDelta(E.gradOf(loss, params), E.gradOf(delta, params), named, B * T, 'paper');
    const sampled = (...ps: E.Tensor[]) => functionalCall(model, ps, () => model.sampledLoss(ids, tg, new E.Generator(9)));
    const direct = O.gnbEstimate(sampled, named, B * T, 'paper');
    for (const { name } of named) {
      const [a, b] = [await shared.get(name)!.toArray(), await direct.get(name)!.toArray()];
      const scale = Math.max(...Array.from(b, Math.abs));
      expect(scale, name).toBeGreaterThan(0);
      // ĝ = g + ∇D adds two f32 gradients where the direct pass computes one: agreement to f32 rounding of ĝ.
      expectClose(a, b, 2e-3, 1e-5 * scale, `ĥ ${name}`);
    }
    // A different seed samples other labels, and so another estimate.
    const other = O.gnbFromDelta(E.gradOf(loss, params), E.gradOf(model.lossWithGnbDelta(ids, tg, new E.Generator(10)).delta, params), named, B * T, 'paper');
    expect(Array.from(await other.get('wte.weight')!.toArray())).not.toEqual(Array.from(await shared.get('wte.weight')!.toArray()));
  });
});

describe('GNB sharing the forward: chunked logits', () => {
  it('the loss, the sampled labels and D do not depend on how the logits are chunked', async () => {
    const { lmHeadCrossEntropyWithGnbDelta } = await import('../../src/nn/functional.ts');
    const [N, C, V] = [40, 8, 300];
    const h = E.tensor(f32(N * C, 31), [N, C]);
    const wte = E.tensor(f32(V * C, 32), [V, C]);
    const tg = E.tensor(Int32Array.from({ length: N }, (_, i) => (i % 9 === 4 ? -100 : (i * 41) % V)), [N], 'i32');
    const whole = lmHeadCrossEntropyWithGnbDelta(h, wte, tg, new E.Generator(2));
    const chunked = lmHeadCrossEntropyWithGnbDelta(h, wte, tg, new E.Generator(2), { maxChunkBytes: 7 * V * 4 }); // 6 chunks
    expect(await chunked.loss.item()).toBeCloseTo(await whole.loss.item(), 5);
    expect(await chunked.delta.item()).toBeCloseTo(await whole.delta.item(), 5);
    expect(Math.abs(await whole.delta.item())).toBeGreaterThan(0);
  });
});

describe('Hessian estimates inside the training step (hessBatch shared)', () => {
  // Two identical small GPT-2s: one refreshes h inside trainStep from the step's own passes, the
  // other estimates ĥ on the same batch beforehand the ordinary way. Same h, same parameters.
  const setup = async () => {
    const { GPT2, gpt2Config, functionalCall } = await import('../../src/nn/index.ts');
    const cfg = gpt2Config('tiny', { nLayer: 1, nHead: 2, nEmbd: 16, vocabSize: 270, nPositions: 8 });
    const [B, T] = [2, 8];
    const batch = { inputs: Int32Array.from({ length: B * T }, (_, i) => (i * 31 + 3) % 270), targets: Int32Array.from({ length: B * T }, (_, i) => (i * 17 + 5) % 270) };
    const make = () => {
      const model = new GPT2(cfg, 11);
      const named = model.namedParameters().map(([name, param]) => ({ name, param }));
      return { model, named };
    };
    return { functionalCall, B, T, batch, make };
  };
  const compare = async (a: O.Sophia, b: O.Sophia, pa: { name: string; param: E.Tensor }[], pb: { name: string; param: E.Tensor }[]) => {
    const [sa, sb] = [a.stateDict().tensors, b.stateDict().tensors];
    for (let i = 0; i < pa.length; i++) {
      const h = [await sa.get(`state.${pa[i].name}.h`)!.toArray(), await sb.get(`state.${pb[i].name}.h`)!.toArray()];
      const scale = Math.max(1e-30, ...Array.from(h[1], Math.abs));
      expectClose(h[0], h[1], 1e-3, 1e-5 * scale, `h ${pa[i].name}`);
      expectClose(await pa[i].param.toArray(), await pb[i].param.toArray(), 1e-5, 1e-6, `θ ${pa[i].name}`);
    }
  };
  it('Hutchinson: u⊙(H·u) from the step\'s recorded backward equals hutchinsonEstimate with the same probes', async () => {
    const { trainStep } = await import('../../src/train/step.ts');
    const { functionalCall, B, T, batch, make } = await setup();
    const [x, y] = [make(), make()];
    const [ox, oy] = [new O.Sophia(x.named, { lr: 0.01, form: 'paper' }), new O.Sophia(y.named, { lr: 0.01, form: 'paper' })];
    trainStep(x.model, ox, [batch], { precision: 'f32', scaler: null, gradClip: 1, shape: [B, T], hessian: { sophia: ox, gen: new E.Generator(5), estimator: 'hutchinson' } });
    const ids = E.tensor(batch.inputs, [B, T], 'i32');
    const tg = E.tensor(batch.targets, [B, T], 'i32');
    oy.updateHessian(O.hutchinsonEstimate((...ps) => functionalCall(y.model, ps, () => y.model.loss(ids, tg)), y.named, new E.Generator(5)), 1);
    trainStep(y.model, oy, [batch], { precision: 'f32', scaler: null, gradClip: 1, shape: [B, T] });
    await compare(ox, oy, x.named, y.named);
  });
  it('GNB: ∇L + ∇D from the step equals gnbEstimate on the same batch with the same labels', async () => {
    const { trainStep } = await import('../../src/train/step.ts');
    const { functionalCall, B, T, batch, make } = await setup();
    const [x, y] = [make(), make()];
    const [ox, oy] = [new O.Sophia(x.named, { lr: 0.01, form: 'official' }), new O.Sophia(y.named, { lr: 0.01, form: 'official' })];
    trainStep(x.model, ox, [batch], { precision: 'f32', scaler: null, gradClip: 1, shape: [B, T], hessian: { sophia: ox, gen: new E.Generator(6), estimator: 'gnb' } });
    const ids = E.tensor(batch.inputs, [B, T], 'i32');
    const tg = E.tensor(batch.targets, [B, T], 'i32');
    const sampled = (...ps: E.Tensor[]) => functionalCall(y.model, ps, () => y.model.sampledLoss(ids, tg, new E.Generator(6)));
    oy.updateHessian(O.gnbEstimate(sampled, y.named, B * T, 'official'), B * T);
    trainStep(y.model, oy, [batch], { precision: 'f32', scaler: null, gradClip: 1, shape: [B, T] });
    await compare(ox, oy, x.named, y.named);
  });
});
