// Backward and double backward of the indexing ops (indexSelect, scatterAdd, takeAlongLastAxis
// in both its paths), split and cast, against central finite differences of the float64
// reference. Their GPU and reference signatures differ (ids are a tensor on the GPU, an array
// in the reference), so each case spells out both sides. Every case passes its index op
// through a nonlinearity, so the HVP exercises the op's backward rule being differentiated.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import { ctx } from '../../src/gpu/device.ts';
import { NDArray } from '../../src/reference/ndarray.ts';
import * as R from '../../src/reference/ndarray.ts';
import { roundHalf } from '../../src/reference/half.ts';
import { expectClose, fdGrad, fdHvp, randomArray, scalarOf, toGpu } from '../helpers.ts';

beforeAll(async () => {
  await E.init();
});

type Case = {
  name: string;
  gpu: (...xs: E.Tensor[]) => E.Tensor; // scalar
  ref: (xs: NDArray[]) => NDArray; // scalar
  inputs: NDArray[];
};

const ids = (v: number[], shape = [v.length]) => E.tensor(Int32Array.from(v), shape, 'i32');
/** Σ w⊙y with fixed weights, so every element of y matters. */
const weigh = (y: E.Tensor, seed: number) => E.sum(E.mul(y, toGpu(randomArray([...y.shape], seed, 0.5, 1.5))));
const weighRef = (y: NDArray, seed: number) => R.sum(R.mul(y, randomArray([...y.shape], seed, 0.5, 1.5)));

// Repeated ids accumulate; row 3 of the table is never selected, so its gradient must be 0.
const rowIds = [2, 0, 2, 1, 2, 0];
const table = randomArray([5, 3], 1);
const src = randomArray([6, 3], 2);
const short = randomArray([2, 3, 7], 3); // rows < 256: the one-hot composition
const long = randomArray([3, 300], 4); // rows ≥ 256: the single-load kernel with its own rule
const shortIds = [0, 6, 3, 3, 1, 6];
const longIds = [299, 0, 137];

const cases: Case[] = [
  {
    name: 'indexSelect (embedding lookup, repeated ids, an unused row)',
    gpu: (t) => weigh(E.tanh(E.indexSelect(t, ids(rowIds, [2, 3]))), 10),
    ref: ([t]) => weighRef(R.tanh(R.indexSelect(t, rowIds, [2, 3])), 10),
    inputs: [table],
  },
  {
    name: 'scatterAdd (rows summed, an empty row)',
    gpu: (s) => weigh(E.tanh(E.scatterAdd(s, ids(rowIds), 4)), 11),
    ref: ([s]) => weighRef(R.tanh(R.scatterAdd(s, rowIds, 4)), 11),
    inputs: [src],
  },
  {
    name: 'takeAlongLastAxis, short rows (one-hot composition)',
    gpu: (x) => weigh(E.exp(E.takeAlongLastAxis(E.mul(x, x), ids(shortIds, [2, 3]))), 12),
    ref: ([x]) => weighRef(R.exp(R.takeAlongLastAxis(R.mul(x, x), shortIds)), 12),
    inputs: [short],
  },
  {
    name: 'takeAlongLastAxis, long rows (own backward rule)',
    gpu: (x) => weigh(E.exp(E.takeAlongLastAxis(E.mul(x, x), ids(longIds))), 13),
    ref: ([x]) => weighRef(R.exp(R.takeAlongLastAxis(R.mul(x, x), longIds)), 13),
    inputs: [long],
  },
  {
    name: 'split into unequal pieces (views)',
    gpu: (a) => {
      const [p, q] = E.split(a, [1, 3], 1);
      return E.add(weigh(E.exp(p), 14), weigh(E.mul(E.tanh(q), q), 15));
    },
    ref: ([a]) => {
      const p = R.slice(a, [null, [0, 1]]);
      const q = R.slice(a, [null, [1, 4]]);
      return R.add(weighRef(R.exp(p), 14), weighRef(R.mul(R.tanh(q), q), 15));
    },
    inputs: [randomArray([3, 4], 5)],
  },
];

describe('indexing ops, split: backward matches finite differences (f64 reference)', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const expected = fdGrad((xs) => scalarOf(c.ref(xs)), c.inputs);
      const grads = E.grad(c.gpu)(...c.inputs.map(toGpu));
      for (let k = 0; k < grads.length; k++) expectClose(await grads[k].toArray(), expected[k], 1e-3, 1e-4, `${c.name}: d/dx${k}`);
    });
  }
  it('indexSelect: the unselected row gets an exactly zero gradient', async () => {
    const [g] = E.grad(cases[0].gpu)(toGpu(table));
    expect(Array.from((await g.toArray()).subarray(9, 12))).toEqual([0, 0, 0]);
  });
});

describe('indexing ops, split: double backward (HVP) matches finite differences of gradients', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const v = c.inputs.map((x, k) => randomArray([...x.shape], 100 + k));
      const expected = fdHvp((xs) => scalarOf(c.ref(xs)), c.inputs, v);
      const hv = E.hvp(c.gpu, c.inputs.map(toGpu), v.map(toGpu));
      for (let k = 0; k < hv.length; k++) expectClose(await hv[k].toArray(), expected[k], 2e-3, 2e-3, `${c.name}: (Hv)${k}`);
    });
  }
});

describe('cast', () => {
  // torch's rule: the gradient of a cast is the incoming gradient cast back to the input's dtype
  // (the rounding itself has derivative 1 almost everywhere, as f16 rounding is piecewise flat).
  it('f32 → f16 → f32: the gradient is the function\'s derivative at the rounded input, in f32', async () => {
    if (!ctx().hasF16) return; // an adapter without shader-f16 has no f16 dtype
    const x = randomArray([3, 4], 6);
    const f = (t: E.Tensor) => weigh(E.tanh(E.cast(E.cast(t, 'f16'), 'f32')), 16);
    const [g] = E.grad(f)(toGpu(x));
    expect(g.dtype).toBe('f32');
    const w = randomArray([3, 4], 16, 0.5, 1.5);
    const expected = x.data.map((xi, i) => w.data[i] * (1 - Math.tanh(roundHalf(xi)) ** 2));
    expectClose(await g.toArray(), expected, 1e-3, 1e-6, 'd/dx through two casts'); // the incoming gradient is itself rounded to f16 on its way back
    // Second order: d²/dx² tanh = −2·tanh·(1 − tanh²), at the rounded input.
    const v = randomArray([3, 4], 7);
    const [hv] = E.hvp(f, [toGpu(x)], [toGpu(v)]);
    const t = x.data.map((xi) => Math.tanh(roundHalf(xi)));
    expectClose(await hv.toArray(), t.map((ti, i) => w.data[i] * -2 * ti * (1 - ti * ti) * v.data[i]), 2e-3, 1e-5, 'HVP through two casts');
  });
});

describe('ids overwritten in place', () => {
  it('scatterAdd uses the new ids, not a host copy of the ones the tensor was created with', async () => {
    const ids = E.tensor(new Int32Array([0, 0, 1]), [3], 'i32');
    E.assign(ids, E.tensor(new Int32Array([2, 2, 2]), [3], 'i32'));
    expect(Array.from(await E.scatterAdd(E.ones([3, 1]), ids, 3).toArray())).toEqual([0, 0, 3]);
  });
});
