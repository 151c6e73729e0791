// assignMany: several in-place writes of one shape in one kernel, every value computed from the
// buffers' contents before the call (checked against the float64 reference).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import * as R from '../../src/reference/ndarray.ts';
import { runtime } from '../../src/gpu/runtime.ts';
import { setBindingLimit } from '../../src/tensor/kernels/windows.ts';
import { expectClose, randomArray, toGpu } from '../helpers.ts';

beforeAll(async () => {
  await E.init();
});
afterAll(() => setBindingLimit(null));

/** An Adam-like update: m and v are new values that θ's value uses in registers. */
function adamLike(theta: E.Tensor, m: E.Tensor, v: E.Tensor, g: E.Tensor): void {
  const m1 = E.add(E.mul(m, 0.9), E.mul(g, 0.1));
  const v1 = E.add(E.mul(v, 0.99), E.mul(E.mul(g, g), 0.01));
  E.assignMany([
    [m, m1],
    [v, v1],
    [theta, E.sub(theta, E.mul(E.div(m1, E.add(E.sqrt(v1), 1e-3)), 0.05))],
  ]);
}

function adamLikeRef(theta: R.NDArray, m: R.NDArray, v: R.NDArray, g: R.NDArray) {
  const m1 = R.add(R.mul(m, 0.9), R.mul(g, 0.1));
  const v1 = R.add(R.mul(v, 0.99), R.mul(R.mul(g, g), 0.01));
  return { m: m1, v: v1, theta: R.sub(theta, R.mul(R.div(m1, R.add(R.sqrt(v1), 1e-3)), 0.05)) };
}

async function checkAdamLike(shape: number[], what: string): Promise<void> {
  const [th, m, v, g] = [1, 2, 3, 4].map((s) => randomArray(shape, s, s === 3 ? 0 : -1, 1));
  const T = [th, m, v, g].map(toGpu);
  adamLike(T[0], T[1], T[2], T[3]);
  const want = adamLikeRef(th, m, v, g);
  expectClose(await T[1].toArray(), want.m.data, 2e-6, 1e-7, `${what} m`);
  expectClose(await T[2].toArray(), want.v.data, 2e-6, 1e-7, `${what} v`);
  expectClose(await T[0].toArray(), want.theta.data, 2e-6, 1e-7, `${what} θ`);
}

describe('assignMany', () => {
  it('writes several outputs in one dispatch, matching the float64 reference', async () => {
    const shape = [37, 29];
    const [th, m, v, g] = [1, 2, 3, 4].map((s) => toGpu(randomArray(shape, s, 0, 1)));
    await th.toArray(); // flush the uploads' own work
    const before = runtime.stats.dispatches;
    adamLike(th, m, v, g);
    expect(runtime.stats.dispatches - before).toBe(1);
    await checkAdamLike(shape, 'adam-like');
    await checkAdamLike([1001], '1-D, not a multiple of 4');
  });

  it('computes every value from the contents before the call (swap, snapshot, chained values)', async () => {
    const a = randomArray([5, 7], 1);
    const b = randomArray([5, 7], 2);
    const [x, y] = [toGpu(a), toGpu(b)];
    E.assignMany([
      [x, y],
      [y, x],
    ]);
    expectClose(await x.toArray(), b.data, 0, 0, 'swap x');
    expectClose(await y.toArray(), a.data, 0, 0, 'swap y');
    // y reads x (the old value) although x is written by the same kernel; z uses x's new value.
    const [p, q, r] = [toGpu(a), toGpu(b), toGpu(b)];
    const p1 = E.add(p, 1);
    E.assignMany([
      [p, p1],
      [q, E.mul(p, 3)],
      [r, E.mul(p1, 2)],
    ]);
    expectClose(await p.toArray(), R.add(a, 1).data, 2e-6, 1e-7, 'p');
    expectClose(await q.toArray(), R.mul(a, 3).data, 2e-6, 1e-7, 'q from the old p');
    expectClose(await r.toArray(), R.mul(R.add(a, 1), 2).data, 2e-6, 1e-7, 'r from the new p, in registers');
  });

  it('reads a destination at other elements through a copy (x ← xᵀ with y ← x)', async () => {
    const a = randomArray([6, 6], 5);
    const [x, y] = [toGpu(a), E.zeros([6, 6])];
    E.assignMany([
      [x, E.transpose(x)],
      [y, E.add(x, E.transpose(x))],
    ]);
    expectClose(await x.toArray(), R.transpose(a).data, 0, 0, 'x');
    expectClose(await y.toArray(), R.add(a, R.transpose(a)).data, 2e-6, 1e-7, 'y');
  });

  it('writes strided destinations (views) and broadcasts values', async () => {
    const big = randomArray([6, 10], 7);
    const other = randomArray([8, 6], 8);
    const row = randomArray([8], 9);
    const [B, O] = [toGpu(big), toGpu(other)];
    const s = E.slice(B, [null, [2, 10]]); // [6, 8], row stride 10
    const t = E.transpose(O); // [6, 8], strides [1, 6]
    E.assignMany([
      [s, E.add(s, toGpu(row))],
      [t, E.mul(s, E.tensor([2]))],
    ]);
    const s0 = R.slice(big, [null, [2, 10]]);
    const wantB = R.concat([R.slice(big, [null, [0, 2]]), R.add(s0, row)], 1);
    expectClose(await B.toArray(), wantB.data, 2e-6, 1e-7, 'slice destination');
    expectClose(await O.toArray(), R.transpose(R.mul(s0, 2)).data, 2e-6, 1e-7, 'transposed destination');
  });

  it('a broadcast 0-d flag gates every output (loaded once per invocation), also on one-element tensors', async () => {
    for (const shape of [[3, 5], [1], []]) {
      const a = randomArray(shape, 13);
      const b = randomArray(shape, 14);
      for (const flag of [0, 1]) {
        const [x, y, f] = [toGpu(a), toGpu(b), E.tensor([flag], [])];
        const x1 = E.add(x, y);
        E.assignMany([
          [x, E.where(f, x1, x)],
          [y, E.where(f, E.mul(x1, y), y)],
        ]);
        const keep = flag === 0;
        expectClose(await x.toArray(), keep ? a.data : R.add(a, b).data, 2e-6, 1e-7, `x, [${shape}], flag ${flag}`);
        expectClose(await y.toArray(), keep ? b.data : R.mul(R.add(a, b), b).data, 2e-6, 1e-7, `y, [${shape}], flag ${flag}`);
      }
    }
  });

  it('adds up sum expressions in the same kernel, from the values before the call', async () => {
    const a = randomArray([33, 17], 15);
    const b = randomArray([33, 17], 16);
    const [x, y] = [toGpu(a), toGpu(b)];
    const x1 = E.mul(x, 2);
    const before = runtime.stats.dispatches;
    const [count, total, ofNew] = E.assignMany([[x, x1]], [E.lt(E.abs(x), 0.5), E.mul(x, y), x1]);
    expect(runtime.stats.dispatches - before).toBe(2); // the kernel + adding up the partials
    const want = (f: (i: number) => number) => a.data.reduce((acc, _, i) => acc + f(i), 0);
    expect(await count.item()).toBe(want((i) => (Math.abs(a.data[i]) < 0.5 ? 1 : 0)));
    expectClose([await total.item()], [want((i) => a.data[i] * b.data[i])], 1e-5, 1e-5, 'Σ x·y with the old x');
    expectClose([await ofNew.item()], [want((i) => 2 * a.data[i])], 1e-5, 1e-5, 'Σ of the new x');
    expectClose(await x.toArray(), R.mul(a, 2).data, 0, 0, 'x');
    expect(() => E.assignMany([[x, 1]], [E.zeros([3])])).toThrow(/sum 0 has shape \[3\]/);
  });

  it('sums over more than 65,535 workgroups (a 2-D grid) count every element once', async () => {
    const n = 65535 * 256 + 1024; // > 65,535 workgroups of 256 elements
    const x = E.zeros([n]);
    const [ones, idx] = E.assignMany([[x, E.add(x, 1)]], [1, E.lt(x, 1)]); // old x = 0 < 1 everywhere
    expect(await ones.item()).toBe(n);
    expect(await idx.item()).toBe(n);
    expectClose(await E.slice(x, [[n - 4, n]]).toArray(), [1, 1, 1, 1], 0, 0, 'tail written');
  });

  it('splits into binding windows past the binding limit', async () => {
    setBindingLimit(4096);
    try {
      await checkAdamLike([96, 50], 'windowed');
      const big = randomArray([96, 60], 11);
      const B = toGpu(big);
      const s = E.slice(B, [null, [10, 60]]);
      const m = toGpu(randomArray([96, 50], 12));
      const m0 = await m.toArray();
      const [sumM] = E.assignMany(
        [
          [s, E.sub(s, m)],
          [m, E.mul(m, 2)],
        ],
        [m],
      );
      expectClose([await sumM.item()], [m0.reduce((a, x) => a + x, 0)], 1e-5, 1e-5, 'windowed sum of the old m');
      const wantB = R.concat([R.slice(big, [null, [0, 10]]), R.sub(R.slice(big, [null, [10, 60]]), new R.NDArray(Float64Array.from(m0), [96, 50]))], 1);
      expectClose(await B.toArray(), wantB.data, 2e-6, 1e-7, 'windowed strided destination');
      expectClose(await m.toArray(), Float64Array.from(m0, (x) => 2 * x), 0, 0, 'windowed m');
    } finally {
      setBindingLimit(null);
    }
  });

  it('rejects bad destinations with a message saying what to do', () => {
    const a = E.zeros([4, 4]);
    expect(() => E.assignMany([[a, 1], [E.zeros([4, 3]), 2]])).toThrow(/shape \[4, ?3\].*group the pairs by shape/);
    expect(() => E.assignMany([[a, 1], [E.reshape(a, [4, 4]), 2]])).toThrow(/share one buffer/);
    expect(() => E.assignMany([[E.add(a, 1), 1]])).toThrow(/lazy expression/);
    expect(() => E.assignMany([[E.expand(E.zeros([1, 4]), [4, 4]), 1]])).toThrow(/overlapping elements/);
    const w = E.zeros([4, 4]).requiresGrad_();
    expect(() => E.assignMany([[w, 1]])).toThrow(/requires grad.*noGrad/);
  });
});
