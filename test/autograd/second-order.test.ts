// What keeps second-order products cheap: the backward pass differentiates only what leads to
// the wanted inputs, hvp seeds the backward pass with v instead of building Σ g·v, and a lazy
// matmul operand is evaluated once. Each must leave the products exact.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import { record } from '../../src/autograd/graph.ts';
import * as raw from '../../src/tensor/ops.ts';
import { expectClose } from '../helpers.ts';

beforeAll(async () => {
  await E.init();
});

/** a², recorded as its own node so the test can count how often its backward runs. */
function spySquare(a: E.Tensor, calls: { n: number }): E.Tensor {
  return record(raw.binary('mul', a, a), 'spySquare', [a], (g) => {
    calls.n++;
    return [E.mul(E.mul(g, a), 2)];
  });
}

describe('pruned backward passes', () => {
  it('jvp does not differentiate the forward graph a second time', async () => {
    const calls = { n: 0 };
    const x = [1, 2, 3];
    const t = [0.5, -1, 2];
    const { jvp } = E.jvp((a) => E.exp(spySquare(a, calls)), [E.tensor(x)], [E.tensor(t)]);
    // d/ds exp((x+st)²) = exp(x²)·2x·t
    expectClose(await jvp.toArray(), x.map((v, i) => Math.exp(v * v) * 2 * v * t[i]), 1e-5, 1e-6, 'jvp');
    expect(calls.n).toBe(1); // the first backward only; the second one never reaches this node
  });

  it('jvp of a scalar function is ∇f·t from one backward pass', async () => {
    const calls = { n: 0 };
    const x = [1, 2, 3];
    const t = [0.5, -1, 2];
    const { value, jvp } = E.jvp((a) => E.sum(E.exp(spySquare(a, calls))), [E.tensor(x)], [E.tensor(t)]);
    const expected = x.map((v, i) => Math.exp(v * v) * 2 * v * t[i]).reduce((p, q) => p + q);
    expect(jvp.shape).toEqual(value.shape);
    expect(Math.abs((await jvp.item()) - expected) / Math.abs(expected)).toBeLessThan(1e-5);
    expect(calls.n).toBe(1);
  });

  it('a gradient nobody asked for is not computed (needs = false)', async () => {
    const seen: boolean[][] = [];
    const b = E.tensor([1, 2, 3, 4], [2, 2]).requiresGrad_(); // requires grad, but is not an argument
    const spyMatmul = (a: E.Tensor) =>
      record(raw.matmul(a, b), 'spyMatmul', [a, b], (g, needs) => {
        seen.push([...needs]);
        return [needs[0] ? E.matmul(g, E.transpose(b)) : null, needs[1] ? E.matmul(E.transpose(a), g) : null];
      });
    const [ga] = E.grad((a) => E.sum(spyMatmul(a)))(E.tensor([1, 0, 0, 1], [2, 2]));
    expect(seen).toEqual([[true, false]]);
    expect(Array.from(await ga.toArray())).toEqual([3, 7, 3, 7]);
    expect(b.grad).toBeNull();
  });

  it('loss.backward() still reaches every leaf', async () => {
    const a = E.tensor([1, 2]).requiresGrad_();
    const b = E.tensor([3, 4]).requiresGrad_();
    E.sum(E.mul(a, b)).backward();
    expect(Array.from(await a.grad!.toArray())).toEqual([3, 4]);
    expect(Array.from(await b.grad!.toArray())).toEqual([1, 2]);
  });
});

describe('hvp seeds the second backward pass with v', () => {
  it('parameters whose gradient is constant or that enter linearly get exact products', async () => {
    // f = Σ a²·b + Σ 3c: H·v = (2b·va + 2a·vb, 2a·va, 0).
    const a = [1, -2, 0.5];
    const b = [0.3, 2, -1];
    const va = [1, 2, 3];
    const vb = [-1, 0.5, 2];
    const f = (x: E.Tensor, y: E.Tensor, z: E.Tensor) => E.add(E.sum(E.mul(E.mul(x, x), y)), E.sum(E.mul(z, 3)));
    const [ha, hb, hc] = E.hvp(f, [E.tensor(a), E.tensor(b), E.tensor([1, 1, 1])], [E.tensor(va), E.tensor(vb), E.tensor([5, 6, 7])]);
    expectClose(await ha.toArray(), a.map((_, i) => 2 * b[i] * va[i] + 2 * a[i] * vb[i]), 1e-6, 1e-6, 'H·v (a)');
    expectClose(await hb.toArray(), a.map((_, i) => 2 * a[i] * va[i]), 1e-6, 1e-6, 'H·v (b)');
    expect(Array.from(await hc.toArray())).toEqual([0, 0, 0]);
  });

  it('a function with a constant gradient has H·v = 0', async () => {
    const [h] = E.hvp((x) => E.sum(E.mul(x, 2)), [E.tensor([1, 2])], [E.tensor([3, 4])]);
    expect(Array.from(await h.toArray())).toEqual([0, 0]);
  });

  it('tangents of the wrong shape are rejected with the shapes named', () => {
    expect(() => E.jvp((x) => E.sum(x), [E.tensor([1, 2])], [E.tensor([1, 2, 3])])).toThrow(/tangent 0 has shape \[3\], argument 0 has \[2\]/);
  });
});

describe('matmul operands', () => {
  it('a lazy operand is evaluated once, in place, and reused by the next matmul', async () => {
    const g = E.mul(E.tensor([1, 2, 3, 4], [2, 2]), 2);
    expect(g.isLazy).toBe(true);
    const w = E.tensor([1, 0, 0, 1], [2, 2]);
    const before = E.runtime.stats.dispatches;
    const p = E.matmul(g, w);
    const first = E.runtime.stats.dispatches - before;
    expect(g.isLazy).toBe(false);
    const mid = E.runtime.stats.dispatches;
    const q = E.matmul(E.transpose(w), g);
    expect(E.runtime.stats.dispatches - mid).toBeLessThan(first); // no second evaluation of g
    expect(Array.from(await p.toArray())).toEqual([2, 4, 6, 8]);
    expect(Array.from(await q.toArray())).toEqual([2, 4, 6, 8]);
  });
});
