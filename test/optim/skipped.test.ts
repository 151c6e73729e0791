// Skipped steps (nonFinite: 'skip'): a step whose gradients hold NaN or inf is a step that never
// happened, as under torch.cuda.amp.GradScaler (which does not call optimizer.step() then). Adam's
// bias corrections 1 − βᵗ use t = the count of steps actually taken, so 5 steps with a NaN in
// step 2 must equal 4 steps with t = 1..4 on the other gradients; and a state dict saved after a
// skipped step continues on exactly the same trajectory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import * as O from '../../src/optim/index.ts';
import { expectClose, values } from '../helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'optim-skip-'));
beforeAll(async () => {
  await E.init();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SHAPES = [[3, 4], [5]];
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
/** f32-representable pseudo-random values, as float64. */
const f32 = (n: number, seed: number, scale = 1) => Float64Array.from(Float32Array.from(values(n, seed), (v) => v * scale));

interface AdamCfg {
  decoupled: boolean;
  amsgrad: boolean;
  lr: number;
  wd: number;
  b1: number;
  b2: number;
  eps: number;
}

/** torch.optim.Adam / AdamW in float64 over the steps taken: t = 1, 2, ... for grads[0], grads[1], ... */
function adamReference(c: AdamCfg, theta0: Float64Array, grads: Float64Array[], ts = grads.map((_, k) => k + 1)): Float64Array {
  const th = Float64Array.from(theta0);
  const m = new Float64Array(th.length);
  const v = new Float64Array(th.length);
  const vmax = new Float64Array(th.length);
  grads.forEach((g0, k) => {
    const t = ts[k];
    for (let i = 0; i < th.length; i++) {
      let g = g0[i];
      if (c.decoupled) th[i] *= 1 - c.lr * c.wd;
      else g += c.wd * th[i];
      m[i] = c.b1 * m[i] + (1 - c.b1) * g;
      v[i] = c.b2 * v[i] + (1 - c.b2) * g * g;
      vmax[i] = Math.max(vmax[i], v[i]);
      const second = c.amsgrad ? vmax[i] : v[i];
      th[i] -= ((c.lr / (1 - c.b1 ** t)) * m[i]) / (Math.sqrt(second) / Math.sqrt(1 - c.b2 ** t) + c.eps);
    }
  });
  return th;
}

const makeAdam = (c: AdamCfg, ps: O.NamedParam[]) => new (c.decoupled ? O.AdamW : O.Adam)(ps, { lr: c.lr, weightDecay: c.wd, betas: [c.b1, c.b2], eps: c.eps, amsgrad: c.amsgrad });

/**
 * Runs `steps` steps on two parameters; in the steps of `bad` one gradient element of parameter
 * `badParam` is `badValue`. Returns the parameters and the finite steps' gradients per parameter.
 */
async function runWithBadSteps(c: AdamCfg, steps: number, bad: ReadonlySet<number>, seed: number, badValue = NaN, badParam = 0) {
  const ps = SHAPES.map((s, i) => ({ name: `p${i}`, param: E.tensor(Float32Array.from(f32(size(s), seed + i)), s).requiresGrad_() }));
  const theta0 = await Promise.all(ps.map(async (p) => Float64Array.from(await p.param.toArray())));
  const opt = makeAdam(c, ps);
  const taken: Float64Array[][] = ps.map(() => []);
  for (let t = 0; t < steps; t++) {
    ps.forEach((p, i) => {
      const g = f32(p.param.size, seed + 100 + 10 * t + i, 2);
      if (bad.has(t) && i === badParam) g[2] = badValue;
      p.param.grad = E.tensor(Float32Array.from(g), [...p.param.shape]);
      if (!bad.has(t)) taken[i].push(g);
    });
    opt.step();
    opt.zeroGrad();
  }
  expect(await opt.skippedSteps()).toBe(bad.size);
  return { theta: await Promise.all(ps.map(async (p) => await p.param.toArray())), theta0, taken };
}

describe('a step with a non-finite gradient is skipped as under GradScaler (Adam, AdamW)', () => {
  const configs: [string, AdamCfg][] = [
    ['Adam, coupled weight decay', { decoupled: false, amsgrad: false, lr: 0.05, wd: 0.01, b1: 0.9, b2: 0.999, eps: 1e-8 }],
    ['Adam amsgrad', { decoupled: false, amsgrad: true, lr: 0.05, wd: 0, b1: 0.8, b2: 0.99, eps: 1e-8 }],
    ['AdamW', { decoupled: true, amsgrad: false, lr: 0.05, wd: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8 }],
    ['AdamW amsgrad', { decoupled: true, amsgrad: true, lr: 0.05, wd: 0.1, b1: 0.9, b2: 0.95, eps: 1e-6 }],
  ];
  for (const [what, c] of configs) {
    it(`${what}: 5 steps with a NaN gradient in step 2 equal the 4 finite steps with t = 1..4`, async () => {
      const { theta, theta0, taken } = await runWithBadSteps(c, 5, new Set([1]), 7);
      for (let i = 0; i < theta.length; i++) {
        expect(taken[i].length).toBe(4);
        const want = adamReference(c, theta0[i], taken[i]);
        expectClose(theta[i], want, 1e-5, 1e-6, `${what}, param ${i}`);
        // The bug this guards against: t counting the skipped step (t = 1, 3, 4, 5) moves the
        // parameters far outside that tolerance, so the check above can tell the two apart.
        const counting = adamReference(c, theta0[i], taken[i], [1, 3, 4, 5]);
        expect(() => expectClose(theta[i], counting, 1e-5, 1e-6)).toThrow();
      }
    });
  }

  it('random hyperparameters and patterns of NaN and ±inf steps (property)', async () => {
    const cfg = fc.record({
      decoupled: fc.boolean(),
      amsgrad: fc.boolean(),
      lr: fc.double({ min: 1e-3, max: 0.2, noNaN: true }),
      wd: fc.constantFrom(0, 0.01, 0.1),
      b1: fc.double({ min: 0, max: 0.95, noNaN: true }),
      b2: fc.double({ min: 0.5, max: 0.9999, noNaN: true }),
      eps: fc.constantFrom(1e-8, 1e-6),
    });
    await fc.assert(
      fc.asyncProperty(cfg, fc.array(fc.boolean(), { minLength: 1, maxLength: 6 }), fc.constantFrom(NaN, Infinity, -Infinity), fc.integer({ min: 0, max: 1 }), fc.integer({ min: 1, max: 1e6 }), async (c, pattern, badValue, badParam, seed) => {
        const bad = new Set(pattern.flatMap((b, t) => (b ? [t] : [])));
        const { theta, theta0, taken } = await runWithBadSteps(c, pattern.length, bad, seed, badValue, badParam);
        for (let i = 0; i < theta.length; i++) expectClose(theta[i], adamReference(c, theta0[i], taken[i]), 1e-4, 1e-5, `param ${i}`);
      }),
      { numRuns: 20 },
    );
  });

  it("nonFinite: 'update' keeps counting every step on the CPU (no mask, no step table)", async () => {
    const p = { name: 'w', param: E.tensor([0.5, -1, 2]).requiresGrad_() };
    const opt = new O.AdamW([p], { lr: 0.1, nonFinite: 'update' });
    p.param.grad = E.tensor([0.1, 0.2, 0.3]);
    opt.step();
    expect(opt.stateDict().tensors.has('finiteSteps')).toBe(false);
    expect(await opt.skippedSteps()).toBe(0);
  });
});

describe('state dicts carry the finite-step counts', () => {
  type Kind = 'adamw' | 'adam-amsgrad' | 'sgd';
  const make = (kind: Kind, ps: O.NamedParam[]): O.Optimizer =>
    kind === 'sgd'
      ? new O.SGD(ps, { lr: 0.05, momentum: 0.9, dampening: 0.2 })
      : kind === 'adamw'
        ? new O.AdamW(ps, { lr: 0.02, betas: [0.9, 0.99] })
        : new O.Adam(ps, { lr: 0.02, betas: [0.8, 0.999], amsgrad: true, weightDecay: 0.01 });
  const params = () => SHAPES.map((s, i) => ({ name: `p${i}`, param: E.tensor(Float32Array.from(f32(size(s), 40 + i)), s).requiresGrad_() }));
  /** Step t (from 0): step 1 (t = 1) has an inf gradient; parameter p1 has none in step 0. */
  const step = (opt: O.Optimizer, ps: O.NamedParam[], t: number) => {
    ps.forEach((p, i) => {
      const g = Float32Array.from(f32(p.param.size, 500 + 10 * t + i));
      if (t === 1 && i === 1) g[0] = Infinity;
      p.param.grad = i === 1 && t === 0 ? null : E.tensor(g, [...p.param.shape]);
    });
    opt.step();
    opt.zeroGrad();
  };
  const copy = async (ps: O.NamedParam[]) => Promise.all(ps.map(async (p) => ({ name: p.name, param: E.tensor(await p.param.toArray(), [...p.param.shape]).requiresGrad_() })));
  const read = (ps: O.NamedParam[]) => Promise.all(ps.map(async (p) => Array.from(await p.param.toArray())));

  for (const kind of ['adamw', 'adam-amsgrad', 'sgd'] as const) {
    it(`${kind}: saved after a skipped step (on disk), loaded into a fresh optimizer, continues bit for bit`, async () => {
      const a = params();
      const optA = make(kind, a);
      for (let t = 0; t < 3; t++) step(optA, a, t);
      await O.saveOptimizer(dir, optA, kind);
      const b = await copy(a);
      const optB = make(kind, b);
      O.loadOptimizer(dir, optB, kind);
      expect(await optB.skippedSteps()).toBe(1);
      for (let t = 3; t < 7; t++) {
        step(optA, a, t);
        step(optB, b, t);
      }
      expect(await read(b)).toEqual(await read(a));
    });
  }

  it('the counts matter: dropping them (no skip known) gives another trajectory', async () => {
    const a = params();
    const optA = make('adamw', a);
    for (let t = 0; t < 3; t++) step(optA, a, t);
    const sd = optA.stateDict();
    const b = await copy(a);
    const optB = make('adamw', b);
    optB.loadStateDict({ json: sd.json, tensors: new Map([...sd.tensors].filter(([k]) => k.startsWith('state.')).map(([k, t]) => [k, t.contiguousCopy()] as const)) });
    expect(await optB.skippedSteps()).toBe(0);
    step(optA, a, 3);
    step(optB, b, 3);
    expect(await read(b)).not.toEqual(await read(a));
  });

  it('state from before per-parameter counts (only finiteSteps) loads with each count = its steps − skipped steps', async () => {
    // Every parameter has a gradient in every step here, so that default is exact.
    const full = (ps: O.NamedParam[], t: number) => {
      ps.forEach((p, i) => {
        const g = Float32Array.from(f32(p.param.size, 700 + 10 * t + i));
        if (t === 1) g[0] = NaN;
        p.param.grad = E.tensor(g, [...p.param.shape]);
      });
    };
    const a = params();
    const optA = make('adamw', a);
    for (let t = 0; t < 3; t++) (full(a, t), optA.step(), optA.zeroGrad());
    const sd = optA.stateDict();
    const json = JSON.parse(JSON.stringify(sd.json));
    delete json.finiteParamOrder;
    const b = await copy(a);
    const optB = make('adamw', b);
    optB.loadStateDict({ json, tensors: new Map([...sd.tensors].filter(([k]) => k !== 'finiteParamSteps').map(([k, t]) => [k, t.contiguousCopy()] as const)) });
    expect(await optB.skippedSteps()).toBe(1);
    for (let t = 3; t < 5; t++) {
      full(a, t);
      optA.step();
      full(b, t);
      optB.step();
    }
    expect(await read(b)).toEqual(await read(a));
  });
});
