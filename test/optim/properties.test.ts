// The invariants users rely on, property-tested with fast-check on random shapes, values,
// hyperparameters and step counts.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import * as O from '../../src/optim/index.ts';
import { expectClose, values } from '../helpers.ts';

beforeAll(async () => {
  await E.init();
});

const shapeArb = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 });
const hyper = fc.record({
  lr: fc.double({ min: 1e-4, max: 0.5, noNaN: true }),
  wd: fc.double({ min: 0, max: 0.3, noNaN: true }),
  b1: fc.double({ min: 0, max: 0.99, noNaN: true }),
  b2: fc.double({ min: 0, max: 0.999, noNaN: true }),
  gamma: fc.double({ min: 1e-3, max: 1, noNaN: true }),
  seed: fc.integer({ min: 1, max: 1e6 }),
  steps: fc.integer({ min: 1, max: 4 }),
});
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const param = (s: number[], seed: number, scale = 1) => ({ name: 'w', param: E.tensor(Float32Array.from(values(size(s), seed), (v) => v * scale), s).requiresGrad_() });
const setGrad = (p: O.NamedParam, seed: number, scale = 1) => (p.param.grad = E.tensor(Float32Array.from(values(p.param.size, seed), (v) => v * scale), [...p.param.shape]));

describe('Sophia', () => {
  it('each coordinate moves at most η beyond the weight-decay term: |θ′ − (1−ηλ)θ| ≤ η', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb, hyper, fc.constantFrom<O.SophiaForm>('paper', 'official'), async (s, h, form) => {
        const p = param(s, h.seed);
        const opt = new O.Sophia([p], { lr: h.lr, weightDecay: h.wd, betas: [h.b1, h.b2], gamma: h.gamma, rho: h.gamma, form, hessianEvery: 2 });
        for (let t = 0; t < h.steps; t++) {
          if (opt.wantsHessian()) opt.updateHessian(new Map([['w', E.abs(E.tensor(Float32Array.from(values(p.param.size, h.seed + 50 + t)), [...s]))]]), 8);
          const before = await p.param.toArray();
          setGrad(p, h.seed + t, 3);
          opt.step();
          const after = await p.param.toArray();
          after.forEach((a, i) => expect(Math.abs(a - (1 - h.lr * h.wd) * before[i])).toBeLessThanOrEqual(h.lr * (1 + 1e-5) + 1e-6));
        }
      }),
      { numRuns: 15 },
    );
  });

  it('with h = 0 it is sign-momentum: θ′ = (1−ηλ)θ − η·sign(m)', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb, hyper, async (s, h) => {
        const p = param(s, h.seed);
        const opt = new O.Sophia([p], { lr: h.lr, weightDecay: h.wd, betas: [h.b1, h.b2], signMomentum: true });
        const m = new Float64Array(p.param.size);
        for (let t = 0; t < h.steps; t++) {
          const before = await p.param.toArray();
          const g = values(p.param.size, h.seed + t + 7);
          p.param.grad = E.tensor(Float32Array.from(g), [...s]);
          opt.step();
          g.forEach((gi, i) => (m[i] = h.b1 * m[i] + (1 - h.b1) * gi));
          const expected = Array.from(before, (b, i) => (1 - h.lr * h.wd) * b - h.lr * Math.sign(m[i]));
          expectClose(await p.param.toArray(), expected, 1e-5, 1e-6, 'sign-momentum');
        }
      }),
      { numRuns: 10 },
    );
  });

  it('the fused GPU update equals a float64 CPU reference of Algorithm 3 (paper and official forms, bias-corrected h or not, any clip threshold)', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb, hyper, fc.constantFrom<O.SophiaForm>('paper', 'official'), fc.boolean(), fc.double({ min: 0.2, max: 3, noNaN: true }), async (s, h, form, bias, clip) => {
        const p = param(s, h.seed);
        const B = 4; // the estimator batch's tokens
        const opt = new O.Sophia([p], { lr: h.lr, weightDecay: h.wd, betas: [h.b1, h.b2], gamma: h.gamma, rho: h.gamma, eps: 1e-12, form, hessianEvery: 2, biasCorrection: bias, clipThreshold: clip });
        const n = p.param.size;
        let theta = Float64Array.from(await p.param.toArray());
        const m = new Float64Array(n);
        const hh = new Float64Array(n);
        let refreshes = 0;
        for (let t = 0; t < h.steps; t++) {
          if (opt.wantsHessian()) {
            const est = Float32Array.from(values(n, h.seed + 99 + t), Math.abs);
            opt.updateHessian(new Map([['w', E.tensor(est, [...s])]]), B);
            est.forEach((e, i) => (hh[i] = h.b2 * hh[i] + (1 - h.b2) * e));
            refreshes++;
          }
          const g = Float32Array.from(values(n, h.seed + t));
          p.param.grad = E.tensor(g, [...s]);
          opt.step();
          const bc = bias && refreshes > 0 ? 1 - h.b2 ** refreshes : 1;
          theta = theta.map((th, i) => {
            m[i] = h.b1 * m[i] + (1 - h.b1) * g[i];
            const hi = hh[i] / bc;
            // paper: clip(m / max(γh, ε), c); official (SophiaG): sign(m)·min(|m| / (ρ·B·h + 1e-15), c)
            const step = form === 'paper' ? Math.max(-clip, Math.min(clip, m[i] / Math.max(h.gamma * hi, 1e-12))) : Math.sign(m[i]) * Math.min(Math.abs(m[i]) / (h.gamma * B * hi + 1e-15), clip);
            return th * (1 - h.lr * h.wd) - h.lr * step;
          });
          expectClose(await p.param.toArray(), theta, 1e-4, 1e-5, `step ${t}`);
        }
      }),
      { numRuns: 10 },
    );
  });

  it('the win rate is the fraction of unclipped coordinates', async () => {
    const p = param([4], 1);
    const opt = new O.Sophia([p], { lr: 0.1, weightDecay: 0, betas: [0, 0], gamma: 1, hessianEvery: 1 });
    opt.updateHessian(new Map([['w', E.tensor([1, 1, 1, 1])]]), 1);
    p.param.grad = E.tensor([0.5, -0.2, 3, -7]); // ratios m/h: 0.5, -0.2, 3, -7 (β1 = 0: m = g)
    opt.step();
    expect(await opt.winRate()!.item()).toBeCloseTo(0.5, 6);
  });
});

describe('sign symmetry and fixed points', () => {
  it('negating the gradients negates the update (Sophia and SGD, from the same state)', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb, hyper, fc.constantFrom('sophia', 'sgd'), async (s, h, kind) => {
        const run = async (sign: number) => {
          const p = param(s, h.seed);
          const opt =
            kind === 'sgd'
              ? new O.SGD([p], { lr: h.lr, momentum: h.b1 })
              : new O.Sophia([p], { lr: h.lr, weightDecay: 0, betas: [h.b1, h.b2], gamma: h.gamma, hessianEvery: 1 });
          const start = await p.param.toArray();
          for (let t = 0; t < h.steps; t++) {
            if (opt instanceof O.Sophia) opt.updateHessian(new Map([['w', E.abs(E.tensor(Float32Array.from(values(p.param.size, h.seed + 40 + t)), [...s]))]]), 2);
            setGrad(p, h.seed + t, sign);
            opt.step();
          }
          const end = await p.param.toArray();
          return Array.from(end, (e, i) => e - start[i]);
        };
        const up = await run(1);
        const down = await run(-1);
        expectClose(down, up.map((v) => -v), 1e-4, 1e-6, 'negated');
      }),
      { numRuns: 12 },
    );
  });

  it("Adam's first step moves every coordinate by ≈ lr", async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb, hyper, async (s, h) => {
        const p = param(s, h.seed);
        const before = await p.param.toArray();
        setGrad(p, h.seed + 1, 10); // |g| ≫ eps
        new O.Adam([p], { lr: h.lr, betas: [h.b1, Math.max(h.b2, 0.5)] }).step();
        const after = await p.param.toArray();
        after.forEach((a, i) => {
          const gi = values(p.param.size, h.seed + 1)[i] * 10;
          if (Math.abs(gi) > 1e-3) expect(Math.abs(Math.abs(a - before[i]) - h.lr)).toBeLessThan(h.lr * 1e-3 + 1e-6);
        });
      }),
      { numRuns: 15 },
    );
  });

  it('a zero gradient with no weight decay and no momentum leaves parameters unchanged (every optimizer)', async () => {
    const kinds = ['sgd', 'adam', 'adamw', 'sophia-paper', 'sophia-official'] as const;
    await fc.assert(
      fc.asyncProperty(shapeArb, hyper, fc.constantFrom(...kinds), async (s, h, kind) => {
        const p = param(s, h.seed);
        const before = Array.from(await p.param.toArray());
        const opt =
          kind === 'sgd'
            ? new O.SGD([p], { lr: h.lr })
            : kind === 'adam'
              ? new O.Adam([p], { lr: h.lr, betas: [h.b1, h.b2] })
              : kind === 'adamw'
                ? new O.AdamW([p], { lr: h.lr, betas: [h.b1, h.b2], weightDecay: 0 })
                : new O.Sophia([p], { lr: h.lr, betas: [h.b1, h.b2], weightDecay: 0, gamma: h.gamma, rho: h.gamma, form: kind === 'sophia-paper' ? 'paper' : 'official', hessianEvery: 2 });
        for (let t = 0; t < h.steps; t++) {
          if (opt instanceof O.Sophia && opt.wantsHessian()) opt.updateHessian(new Map([['w', E.abs(E.tensor(Float32Array.from(values(p.param.size, h.seed + t)), [...s]))]]), 8);
          p.param.grad = E.zeros([...s]);
          opt.step();
        }
        expect(Array.from(await p.param.toArray())).toEqual(before);
      }),
      { numRuns: 20 },
    );
  });
});

describe('state dicts', () => {
  it('save → load continues on exactly the same trajectory (every optimizer, random split point)', async () => {
    const kinds = ['sgd', 'sgd-nesterov', 'adam', 'adamw-amsgrad', 'sophia', 'sophia-official'] as const;
    await fc.assert(
      fc.asyncProperty(shapeArb, hyper, fc.constantFrom(...kinds), fc.integer({ min: 1, max: 4 }), async (s, h, kind, after) => {
        const make = (p: O.NamedParam) =>
          kind === 'sgd'
            ? new O.SGD([p], { lr: h.lr, momentum: h.b1, weightDecay: h.wd })
            : kind === 'sgd-nesterov'
              ? new O.SGD([p], { lr: h.lr, momentum: Math.max(h.b1, 0.1), nesterov: true })
              : kind === 'adam'
                ? new O.Adam([p], { lr: h.lr, betas: [h.b1, h.b2], weightDecay: h.wd })
                : kind === 'adamw-amsgrad'
                  ? new O.AdamW([p], { lr: h.lr, betas: [h.b1, h.b2], weightDecay: h.wd, amsgrad: true })
                  : kind === 'sophia'
                    ? new O.Sophia([p], { lr: h.lr, betas: [h.b1, h.b2], weightDecay: h.wd, gamma: h.gamma, hessianEvery: 2, biasCorrection: true })
                    : new O.Sophia([p], { lr: h.lr, betas: [h.b1, h.b2], weightDecay: h.wd, rho: h.gamma, form: 'official', hessianEvery: 3 });
        const step = (opt: O.Optimizer, p: O.NamedParam, t: number) => {
          if (opt instanceof O.Sophia && opt.wantsHessian()) opt.updateHessian(new Map([['w', E.abs(E.tensor(Float32Array.from(values(p.param.size, h.seed + 300 + t)), [...s]))]]), 4);
          setGrad(p, h.seed + 100 + t);
          opt.step();
        };
        const a = param(s, h.seed);
        const optA = make(a);
        for (let t = 0; t < h.steps; t++) step(optA, a, t);
        const saved = optA.stateDict();
        const copies = new Map([...saved.tensors].map(([k, t]) => [k, t.contiguousCopy()] as const));
        const b = { name: 'w', param: a.param.contiguousCopy().requiresGrad_() };
        const optB = make(b);
        optB.loadStateDict({ json: JSON.parse(JSON.stringify(saved.json)), tensors: copies });
        for (let t = h.steps; t < h.steps + after; t++) {
          step(optA, a, t);
          step(optB, b, t);
        }
        expect(Array.from(await b.param.toArray())).toEqual(Array.from(await a.param.toArray()));
      }),
      { numRuns: 20 },
    );
  });
});

describe('estimators', () => {
  it('GNB estimates are ≥ 0 and scale with B in the paper form only (random models, batches, vocabularies)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }), // batch rows B
        fc.integer({ min: 1, max: 5 }), // features
        fc.integer({ min: 2, max: 9 }), // vocabulary
        fc.integer({ min: 1, max: 1e6 }),
        fc.double({ min: 0.1, max: 5, noNaN: true }), // logit scale: near-uniform to peaked softmax
        async (B, C, V, seed, scale) => {
          const W = { name: 'W', param: E.tensor(Float32Array.from(values(C * V, seed), (v) => v * scale), [C, V]).requiresGrad_() };
          const x = E.tensor(Float32Array.from(values(B * C, seed + 1)), [B, C]);
          const sampledWith = (gen: E.Generator) => (w: E.Tensor) => {
            const logits = E.matmul(x, w);
            return E.mean(E.sub(E.logsumexp(logits, -1), E.takeAlongLastAxis(logits, E.categorical(E.detach(logits), gen))));
          };
          const paper = await O.gnbEstimate(sampledWith(new E.Generator(seed)), [W], B, 'paper').get('W')!.toArray();
          const official = await O.gnbEstimate(sampledWith(new E.Generator(seed)), [W], B, 'official').get('W')!.toArray();
          expect(paper.every((v) => v >= 0)).toBe(true);
          expectClose(paper, Array.from(official, (v) => B * v), 1e-6, 1e-30, 'B·ĝ⊙ĝ vs ĝ⊙ĝ');
        },
      ),
      { numRuns: 25 },
    );
    // And not trivially: a generic model gives some positive curvature.
    const W = { name: 'W', param: E.tensor(Float32Array.from(values(12, 3)), [4, 3]).requiresGrad_() };
    const x = E.tensor(Float32Array.from(values(8, 4)), [2, 4]);
    const est = await O.gnbEstimate((w) => E.mean(E.sub(E.logsumexp(E.matmul(x, w), -1), E.takeAlongLastAxis(E.matmul(x, w), E.categorical(E.detach(E.matmul(x, w)), new E.Generator(1))))), [W], 2, 'paper').get('W')!.toArray();
    expect(est.some((v) => v > 0)).toBe(true);
  });

  it('Hutchinson is unbiased: for random quadratics the mean of u⊙(Au) over probes converges to diag(A)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 6 }), fc.integer({ min: 1, max: 1e6 }), fc.constantFrom('rademacher' as const, 'gaussian' as const), async (n, seed, probe) => {
        const raw = values(n * n, seed, -2, 2);
        const sym = Array.from({ length: n * n }, (_, k) => (raw[k] + raw[(k % n) * n + Math.floor(k / n)]) / 2);
        const At = E.tensor(sym, [n, n]);
        const x = { name: 'x', param: E.tensor(Float32Array.from(values(n, seed + 1)), [n, 1]).requiresGrad_() };
        const f = (v: E.Tensor) => E.mul(E.sum(E.mul(v, E.matmul(At, v))), 0.5); // H = A
        const gen = new E.Generator(seed + 2);
        const S = 120;
        const mean = new Float64Array(n);
        for (let s = 0; s < S; s++) {
          const est = await O.hutchinsonEstimate(f, [x], gen, probe).get('x')!.toArray();
          est.forEach((v, i) => (mean[i] += v / S));
        }
        for (let i = 0; i < n; i++) {
          // Var of one Rademacher probe: Σ_{j≠i} A_ij²; Gaussian adds 2·A_ii². Bound: 5 standard errors.
          const offDiag = Array.from({ length: n }, (_, j) => (j === i ? 0 : sym[i * n + j] ** 2)).reduce((a, b) => a + b, 0);
          const variance = offDiag + (probe === 'gaussian' ? 2 * sym[i * n + i] ** 2 : 0);
          expect(Math.abs(mean[i] - sym[i * n + i]), `${probe}, n ${n}, seed ${seed}, i ${i}`).toBeLessThan(5 * Math.sqrt(variance / S) + 1e-4);
        }
      }),
      { numRuns: 6 },
    );
  }, 120_000);

  it('Hutchinson uses the current parameters (no stale HVP): f = Σx⁴ gives E[ĥ] = 12x²', async () => {
    const x = { name: 'x', param: E.tensor([0.5, -1, 2]).requiresGrad_() };
    const f = (v: E.Tensor) => E.sum(E.pow(v, 4));
    const gen = new E.Generator(3);
    // H is diagonal, so every Rademacher probe gives the exact diagonal.
    expectClose(await O.hutchinsonEstimate(f, [x], gen).get('x')!.toArray(), [3, 12, 48], 1e-5, 1e-6, 'at x');
    E.noGrad(() => E.assign(x.param, E.tensor([1, 1, 1])));
    expectClose(await O.hutchinsonEstimate(f, [x], gen).get('x')!.toArray(), [12, 12, 12], 1e-5, 1e-6, 'after an update');
  });
});

describe('clipping', () => {
  it('never increases the norm and leaves small gradients untouched', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb, fc.double({ min: 0.01, max: 10, noNaN: true }), fc.integer({ min: 1, max: 1e6 }), fc.double({ min: 0.01, max: 20, noNaN: true }), async (s, scale, seed, maxNorm) => {
        const p = param(s, seed);
        setGrad(p, seed + 1, scale);
        const before = await p.param.grad!.toArray();
        const norm = await O.clipGradNorm([p.param], maxNorm).item();
        const after = await p.param.grad!.toArray();
        const newNorm = Math.sqrt(after.reduce((a, v) => a + v * v, 0));
        expect(newNorm).toBeLessThanOrEqual(Math.max(norm, maxNorm) * (1 + 1e-5));
        if (norm <= maxNorm * 0.999) expectClose(after, before, 1e-6, 1e-7, 'untouched');
        else expect(newNorm).toBeCloseTo(maxNorm, 3);
      }),
      { numRuns: 20 },
    );
  });
});

describe('bad input and non-finite gradients', () => {
  const p = () => param([2], 1);
  it('out-of-range hyperparameters fail at construction, naming the value', () => {
    expect(() => new O.SGD([p()], { lr: -1 })).toThrow(/lr must be in \[0, Infinity\], got -1/);
    expect(() => new O.Adam([p()], { lr: 1e-3, betas: [0.9, 1] })).toThrow(/beta2 must be in \[0, 1\), got 1/);
    expect(() => new O.Sophia([p()], { lr: 1e-3, rho: 0 })).toThrow(/rho must be in \(0, Infinity\], got 0/);
    expect(() => new O.Sophia([p()], { lr: 1e-3, gamma: -2 })).toThrow(/gamma must be/);
    expect(() => new O.Sophia([p()], { lr: 1e-3, hessianEvery: 0 })).toThrow(/hessianEvery \(k\) must be an integer ≥ 1, got 0/);
  });
  it('a NaN or inf gradient skips the step and leaves parameters and state intact', async () => {
    for (const bad of [NaN, Infinity]) {
      const q = param([3], 2);
      const opt = new O.AdamW([q], { lr: 0.1 });
      q.param.grad = E.tensor([0.1, 0.2, 0.3]);
      opt.step();
      const good = Array.from(await q.param.toArray());
      q.param.grad = E.tensor([0.1, bad, 0.3]);
      opt.step();
      expect(Array.from(await q.param.toArray())).toEqual(good);
      expect(await opt.skippedSteps()).toBe(1);
      q.param.grad = E.tensor([0.1, 0.2, 0.3]);
      opt.step();
      expect(Array.from(await q.param.toArray()).every(Number.isFinite)).toBe(true);
    }
  });
});

describe('fused GPU updates equal float64 CPU references (SGD, Adam, AdamW)', () => {
  type Cfg = { kind: 'sgd' | 'adam' | 'adamw'; lr: number; wd: number; mom: number; damp: number; nesterov: boolean; b1: number; b2: number; eps: number; amsgrad: boolean };
  const cfgArb: fc.Arbitrary<Cfg> = fc.record({
    kind: fc.constantFrom('sgd' as const, 'adam' as const, 'adamw' as const),
    lr: fc.double({ min: 1e-4, max: 0.3, noNaN: true }),
    wd: fc.constantFrom(0, 0.01, 0.2),
    mom: fc.constantFrom(0, 0.5, 0.9),
    damp: fc.constantFrom(0, 0.3),
    nesterov: fc.boolean(),
    b1: fc.double({ min: 0, max: 0.95, noNaN: true }),
    b2: fc.double({ min: 0.5, max: 0.999, noNaN: true }),
    eps: fc.constantFrom(1e-8, 1e-3),
    amsgrad: fc.boolean(),
  });

  /** torch.optim's update rules in float64, one parameter. */
  function reference(c: Cfg, theta0: Float64Array, grads: Float64Array[]): Float64Array {
    const n = theta0.length;
    const th = Float64Array.from(theta0);
    const m = new Float64Array(n);
    const v = new Float64Array(n);
    const vmax = new Float64Array(n);
    const nesterov = c.nesterov && c.mom > 0 && c.damp === 0;
    grads.forEach((g0, k) => {
      const t = k + 1;
      for (let i = 0; i < n; i++) {
        let g = g0[i];
        if (c.kind === 'sgd') {
          if (c.wd) g += c.wd * th[i];
          if (c.mom) {
            m[i] = t === 1 ? g : c.mom * m[i] + (1 - c.damp) * g;
            g = nesterov ? g + c.mom * m[i] : m[i];
          }
          th[i] -= c.lr * g;
        } else {
          if (c.kind === 'adamw') th[i] *= 1 - c.lr * c.wd;
          else if (c.wd) g += c.wd * th[i];
          m[i] = c.b1 * m[i] + (1 - c.b1) * g;
          v[i] = c.b2 * v[i] + (1 - c.b2) * g * g;
          vmax[i] = Math.max(vmax[i], v[i]);
          const second = c.amsgrad ? vmax[i] : v[i];
          th[i] -= ((c.lr / (1 - c.b1 ** t)) * m[i]) / (Math.sqrt(second) / Math.sqrt(1 - c.b2 ** t) + c.eps);
        }
      }
    });
    return th;
  }

  it('on random shapes, hyperparameters and step counts', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb, cfgArb, fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 1e6 }), async (s, c, steps, seed) => {
        const p = param(s, seed);
        const theta0 = Float64Array.from(await p.param.toArray());
        const nesterov = c.nesterov && c.mom > 0 && c.damp === 0;
        const opt =
          c.kind === 'sgd'
            ? new O.SGD([p], { lr: c.lr, weightDecay: c.wd, momentum: c.mom, dampening: c.damp, nesterov })
            : new (c.kind === 'adam' ? O.Adam : O.AdamW)([p], { lr: c.lr, weightDecay: c.wd, betas: [c.b1, c.b2], eps: c.eps, amsgrad: c.amsgrad });
        const grads: Float64Array[] = [];
        for (let t = 0; t < steps; t++) {
          const g = Float64Array.from(Float32Array.from(values(p.param.size, seed + 1 + t)));
          grads.push(g);
          p.param.grad = E.tensor(Float32Array.from(g), [...s]);
          opt.step();
        }
        expectClose(await p.param.toArray(), reference(c, theta0, grads), 1e-4, 1e-5, `${c.kind} after ${steps} steps`);
      }),
      { numRuns: 25 },
    );
  });
});
