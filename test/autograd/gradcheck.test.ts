// Every op's backward against central finite differences of the float64 reference, and every
// double backward (HVP) against finite differences of finite-difference gradients.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import { NDArray } from '../../src/reference/ndarray.ts';
import * as R from '../../src/reference/ndarray.ts';
import { expectClose, fdGrad, fdHvp, gpu, randomArray, ref, scalarOf, toGpu, type Backend } from '../helpers.ts';

beforeAll(async () => {
  await E.init();
});

type Case = {
  name: string;
  f: <X>(o: Backend<X>, ...xs: X[]) => X; // any output; it is reduced with fixed weights
  inputs: NDArray[];
};

// Reduce a non-scalar output with fixed random weights, so every output element matters
// (a plain sum would hide gradient errors that cancel, e.g. in softmax).
function scalarize<X>(o: Backend<X>, y: X, shape: readonly number[]): X {
  const w = randomArray([...shape], 999, 0.5, 1.5);
  const wx = (o === (ref as unknown) ? w : toGpu(w)) as X;
  return o.sum(o.mul(y, wx));
}

function loss(c: Case) {
  return <X>(o: Backend<X>, xs: X[]): X => {
    const y = c.f(o, ...xs);
    const shape = o === (ref as unknown) ? (y as NDArray).shape : (y as E.Tensor).shape;
    return scalarize(o, y, shape);
  };
}

const a34 = randomArray([3, 4], 1);
const b34 = randomArray([3, 4], 2);
const pos34 = randomArray([3, 4], 3, 0.5, 2);
const cases: Case[] = [
  { name: 'add (broadcast)', f: (o, a, b) => o.add(a, b), inputs: [a34, randomArray([4], 4)] },
  { name: 'sub', f: (o, a, b) => o.sub(a, b), inputs: [a34, b34] },
  { name: 'mul (broadcast)', f: (o, a, b) => o.mul(a, b), inputs: [a34, randomArray([3, 1], 5)] },
  { name: 'div', f: (o, a, b) => o.div(a, b), inputs: [a34, pos34] },
  { name: 'pow (both args)', f: (o, a, b) => o.pow(a, b), inputs: [pos34, b34] },
  { name: 'pow (integer exponent, negative base)', f: (o, a) => o.pow(a, 3), inputs: [a34] },
  { name: 'exp', f: (o, a) => o.exp(a), inputs: [a34] },
  { name: 'expm1', f: (o, a) => o.expm1(a), inputs: [a34] },
  { name: 'log', f: (o, a) => o.log(a), inputs: [pos34] },
  { name: 'sqrt', f: (o, a) => o.sqrt(a), inputs: [pos34] },
  { name: 'rsqrt', f: (o, a) => o.rsqrt(a), inputs: [pos34] },
  { name: 'tanh', f: (o, a) => o.tanh(a), inputs: [a34] },
  { name: 'sin·cos', f: (o, a) => o.mul(o.sin(a), o.cos(a)), inputs: [a34] },
  { name: 'sigmoid', f: (o, a) => o.sigmoid(a), inputs: [a34] },
  { name: 'abs', f: (o, a) => o.abs(a), inputs: [a34] },
  { name: 'maximum/minimum', f: (o, a, b) => o.add(o.maximum(a, b), o.mul(o.minimum(a, b), 2)), inputs: [a34, b34] },
  { name: 'maximum/minimum of smooth functions', f: (o, a, b) => o.add(o.maximum(o.tanh(a), o.exp(b)), o.mul(o.minimum(o.mul(a, a), b), 2)), inputs: [a34, b34] },
  { name: 'where', f: (o, c, a, b) => o.where(o.gt(c, 0), o.mul(a, a), o.exp(b)), inputs: [randomArray([3, 4], 6), a34, b34] },
  { name: 'sum over axes', f: (o, a) => o.sum(o.mul(a, a), [0], true), inputs: [randomArray([3, 4, 2], 7)] },
  { name: 'mean', f: (o, a) => o.mean(o.exp(a), -1), inputs: [a34] },
  { name: 'max', f: (o, a) => o.max(a, 1), inputs: [a34] },
  { name: 'max of a smooth function', f: (o, a) => o.max(o.sin(o.mul(a, 3)), 0), inputs: [a34] },
  { name: 'min (keepdims)', f: (o, a) => o.mul(o.min(a, 0, true), o.exp(a)), inputs: [a34] },
  { name: 'neg', f: (o, a) => o.mul(o.neg(a), a), inputs: [a34] },
  { name: 'logsumexp', f: (o, a) => o.logsumexp(a, -1), inputs: [a34] },
  { name: 'softmax', f: (o, a) => o.softmax(a), inputs: [a34] },
  { name: 'logsumexp, fused one-pass kernel (rows ≥ 256)', f: (o, a) => o.logsumexp(o.mul(a, 3), -1), inputs: [randomArray([2, 300], 40)] },
  { name: 'logSoftmax', f: (o, a) => o.logSoftmax(a, 0), inputs: [a34] },
  { name: 'matmul', f: (o, a, b) => o.matmul(a, b), inputs: [randomArray([3, 5], 8), randomArray([5, 2], 9)] },
  { name: 'batched matmul, transposed, broadcast', f: (o, a, b) => o.matmul(a, o.transpose(b)), inputs: [randomArray([2, 3, 4], 10), randomArray([5, 4], 11)] },
  { name: 'reshape + permute', f: (o, a) => o.mul(o.permute(o.reshape(a, [2, 2, 3]), [2, 0, 1]), o.reshape(a, [3, 2, 2])), inputs: [a34] },
  { name: 'slice', f: (o, a) => o.tanh(o.slice(a, [[1, 3], [-3, -1]])), inputs: [a34] },
  { name: 'expand', f: (o, a) => o.mul(o.expand(a, [2, 3, 4]), o.expand(a, [2, 3, 4])), inputs: [randomArray([3, 1], 12)] },
  { name: 'concat', f: (o, a, b) => o.exp(o.concat([a, b, a], 0)), inputs: [a34, randomArray([1, 4], 13)] },
  {
    name: 'layer-norm-like composite',
    f: (o, x) => {
      const mu = o.mean(x, -1, true);
      const xc = o.sub(x, mu);
      return o.mul(xc, o.rsqrt(o.add(o.mean(o.mul(xc, xc), -1, true), 1e-5)));
    },
    inputs: [a34],
  },
];

async function gpuGrads(c: Case): Promise<Float32Array[]> {
  const L = loss(c);
  const grads = E.grad((...xs: E.Tensor[]) => L(gpu, xs))(...c.inputs.map(toGpu));
  return Promise.all(grads.map((g) => g.toArray() as Promise<Float32Array>));
}

describe('backward matches finite differences (f64 reference)', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const L = loss(c);
      const expected = fdGrad((xs) => scalarOf(L(ref, xs)), c.inputs);
      const actual = await gpuGrads(c);
      actual.forEach((g, k) => expectClose(g, expected[k], 1e-3, 1e-4, `${c.name}: d/dx${k}`));
    });
  }
});

// Cases whose whole loss is piecewise linear; the composites above run their rules through curvature.
const PIECEWISE_LINEAR = new Set(['abs', 'maximum/minimum', 'max']);

describe('double backward: HVP matches finite differences of gradients', () => {
  for (const c of cases) {
    if (PIECEWISE_LINEAR.has(c.name)) continue; // H = 0 a.e. (the loss is linear in their output), checked below
    it(c.name, async () => {
      const L = loss(c);
      const v = c.inputs.map((x, k) => randomArray([...x.shape], 100 + k));
      const expected = fdHvp((xs) => scalarOf(L(ref, xs)), c.inputs, v);
      const hv = E.hvp((...xs: E.Tensor[]) => L(gpu, xs), c.inputs.map(toGpu), v.map(toGpu));
      for (let k = 0; k < hv.length; k++) expectClose(await hv[k].toArray(), expected[k], 2e-3, 2e-3, `${c.name}: (Hv)${k}`);
    });
  }
  it('piecewise-linear ops have zero Hessian', async () => {
    const x = toGpu(a34);
    const [h] = E.hvp((t) => E.sum(E.add(E.abs(t), E.max(t, 1, true))), [x], [toGpu(b34)]);
    expect(Array.from(await h.toArray()).every((v) => v === 0)).toBe(true);
  });
});

describe('HVP against an explicit Hessian', () => {
  it('f(x) = Σ tanh(Ax)² + (xᵀx)²: Hv equals the analytic Hessian times v', async () => {
    const n = 4;
    const A = randomArray([3, n], 21);
    const x0 = randomArray([n, 1], 22);
    // Analytic Hessian in f64: H = Σ_i 2 a_i a_iᵀ (1 - t_i²)(1 - 3 t_i²) + 4(xᵀx)I + 8 x xᵀ.
    const Ax = R.matmul(A, x0).data;
    const H = new Float64Array(n * n);
    const xx = x0.data.reduce((s, v) => s + v * v, 0);
    for (let i = 0; i < 3; i++) {
      const t = Math.tanh(Ax[i]);
      const w = 2 * (1 - t * t) * (1 - 3 * t * t);
      for (let p = 0; p < n; p++) for (let q = 0; q < n; q++) H[p * n + q] += w * A.data[i * n + p] * A.data[i * n + q];
    }
    for (let p = 0; p < n; p++) for (let q = 0; q < n; q++) H[p * n + q] += (p === q ? 4 * xx : 0) + 8 * x0.data[p] * x0.data[q];
    const f = (x: E.Tensor) => {
      const t = E.tanh(E.matmul(toGpu(A), x));
      const s = E.sum(E.mul(x, x));
      return E.add(E.sum(E.mul(t, t)), E.mul(s, s));
    };
    for (let j = 0; j < n; j++) {
      const e = new Float32Array(n);
      e[j] = 1;
      const [col] = E.hvp(f, [toGpu(x0)], [E.tensor(e, [n, 1])]);
      expectClose(await col.toArray(), Array.from({ length: n }, (_, p) => H[p * n + j]), 1e-4, 1e-5, `Hessian column ${j}`);
    }
  });
});

describe('jvp (forward-mode product by double VJP)', () => {
  it('matches the finite-difference directional derivative', async () => {
    const x = randomArray([3, 4], 31);
    const t = randomArray([3, 4], 32);
    const { jvp } = E.jvp((a) => E.softmax(E.mul(a, a)), [toGpu(x)], [toGpu(t)]);
    const h = 1e-6;
    const f = (s: number) => R.softmax(R.mul(R.add(x, R.mul(t, s)), R.add(x, R.mul(t, s))));
    const expected = R.div(R.sub(f(h), f(-h)), 2 * h);
    expectClose(await jvp.toArray(), expected.data, 1e-3, 1e-5, 'jvp');
  });
});
