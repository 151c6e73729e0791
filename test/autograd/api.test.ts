// backward()/.grad accumulation, noGrad/detach, memory accounting and error messages.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import { clipGradNorm } from '../../src/optim/clip.ts';
import { settleGarbage } from '../helpers.ts';

beforeAll(async () => {
  await E.init();
});

describe('backward() and leaves', () => {
  it('accumulates into .grad across calls, like PyTorch', async () => {
    const w = E.tensor([1, 2, 3]).requiresGrad_();
    E.sum(E.mul(w, w)).backward();
    expect(Array.from(await w.grad!.toArray())).toEqual([2, 4, 6]);
    E.sum(E.mul(w, 3)).backward();
    expect(Array.from(await w.grad!.toArray())).toEqual([5, 7, 9]);
  });
  it('a tensor used twice gets both contributions', async () => {
    const x = E.tensor([2]).requiresGrad_();
    E.sum(E.add(E.mul(x, x), E.exp(x))).backward();
    expect(await x.grad!.item()).toBeCloseTo(4 + Math.exp(2), 4);
  });
  it("two leaves added together get gradients of their own (add's backward hands both the same tensor)", async () => {
    const a = E.tensor([1, 2]).requiresGrad_();
    const b = E.tensor([3, 4]).requiresGrad_();
    const c = E.tensor([5, 6]);
    E.sum(E.mul(E.add(a, b), c)).backward();
    E.sum(E.mul(E.add(a, b), c)).backward(); // accumulating into both: neither .grad was freed by the other
    expect(a.grad).not.toBe(b.grad);
    expect(Array.from(await a.grad!.toArray())).toEqual([10, 12]);
    expect(Array.from(await b.grad!.toArray())).toEqual([10, 12]);
    // Clipping scales each gradient in place exactly once.
    clipGradNorm([a, b], 1);
    const n = Math.hypot(10, 12, 10, 12);
    expect(Array.from(await a.grad!.toArray()).map((x) => +x.toFixed(5))).toEqual([10 / n, 12 / n].map((x) => +x.toFixed(5)));
    expect(Array.from(await b.grad!.toArray()).map((x) => +x.toFixed(5))).toEqual([10 / n, 12 / n].map((x) => +x.toFixed(5)));
    // A seed passed straight through does not become a leaf's .grad.
    const x = E.tensor([1, 1]).requiresGrad_();
    const y = E.tensor([1, 1]).requiresGrad_();
    const seed = E.tensor([7, 8]);
    E.add(x, y).backward(seed);
    expect(x.grad).not.toBe(seed);
    expect(y.grad).not.toBe(seed);
    expect(x.grad).not.toBe(y.grad);
    clipGradNorm([x, y], 1e-3);
    expect(Array.from(await seed.toArray())).toEqual([7, 8]);
  });
  it('noGrad and detach cut the graph', async () => {
    const x = E.tensor([1, 2]).requiresGrad_();
    const y = E.noGrad(() => E.mul(x, 2));
    expect(y.requiresGrad).toBe(false);
    expect(E.mul(x, 2).detach().requiresGrad).toBe(false);
    const [g] = E.grad((a) => E.sum(E.mul(a, E.detach(a))))(x);
    expect(Array.from(await g.toArray())).toEqual([1, 2]);
  });
  it('backward on a non-scalar without a seed says so', () => {
    const x = E.tensor([1, 2]).requiresGrad_();
    expect(() => E.mul(x, 2).backward()).toThrow(/shape \[2\]; pass a seed gradient/);
  });
  it('a seed gradient of the wrong shape says so', () => {
    const x = E.tensor([1, 2]).requiresGrad_();
    expect(() => E.mul(x, 2).backward(E.ones([3]))).toThrow(/seed gradient shape \[3\] does not match output shape \[2\]/);
  });
  it('grad of a function that ignores its input is zero', async () => {
    const [g] = E.grad(() => E.sum(E.ones([2])))(E.tensor([1, 2, 3]));
    expect(Array.from(await g.toArray())).toEqual([0, 0, 0]);
  });
  it('nested grad: grad(grad(f)) gives the second derivative', async () => {
    const d2 = E.grad((x) => E.sum(E.grad((y) => E.sum(E.mul(E.mul(y, y), y)), { createGraph: true })(x)[0]));
    const [g] = d2(E.tensor([1, 2]));
    expect(Array.from(await g.toArray())).toEqual([6, 12]);
  });
});

describe('memory', () => {
  it('a training-style step leaks nothing: forward, backward and update inside tidy()', async () => {
    const w = E.tensor(new Float32Array(64).fill(0.1), [8, 8]).requiresGrad_();
    const x = E.tensor(new Float32Array(32).fill(1), [4, 8]);
    const step = () => {
      E.tidy(() => {
        E.sum(E.tanh(E.matmul(x, w))).backward();
      });
      w.grad!.dispose();
      w.grad = null;
    };
    step();
    await E.runtime.sync();
    await settleGarbage();
    const before = E.memoryStats();
    for (let i = 0; i < 3; i++) step();
    await E.runtime.sync();
    const after = E.memoryStats();
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.created).toBe(before.created); // everything came from the pool
  });
  it('tidy keeps returned tensors and frees the rest; pool reuse stops allocation', async () => {
    await settleGarbage();
    const a = E.tensor([1, 2, 3]);
    const base = E.memoryStats().liveBuffers;
    const r = E.tidy(() => E.add(E.exp(a), E.sum(E.mul(a, a))).realize());
    expect(E.memoryStats().liveBuffers).toBe(base + 1);
    expect(Array.from(await r.toArray()).map((v) => Math.round(v * 1000) / 1000)).toEqual([16.718, 21.389, 34.086]);
    r.dispose();
    expect(E.memoryStats().liveBuffers).toBe(base);
    const created = E.memoryStats().created;
    for (let i = 0; i < 5; i++) E.tidy(() => void E.add(E.exp(a), 1).realize());
    expect(E.memoryStats().created).toBe(created);
  });
  it('using a disposed tensor says so', () => {
    const a = E.tensor([1, 2]);
    a.dispose();
    expect(() => E.exp(a)).toThrow(/it was disposed/);
  });
  it('lazy views keep their source alive after the source is disposed', async () => {
    const a = E.tensor([1, 2, 3, 4], [2, 2]);
    const t = E.exp(E.transpose(a));
    a.dispose();
    expect(Array.from(await t.toArray()).map(Math.log).map((v) => Math.round(v))).toEqual([1, 3, 2, 4]);
  });
});

describe('errors from the device layer', () => {
  it('the no-adapter error names the set-up command', () => {
    const e = new E.NoAdapterError('Dawn found no adapter');
    expect(e.message).toMatch(/npm run setup/);
  });
});
