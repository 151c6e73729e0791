// Deferred kernels (Storage.deferred, gpu/hazards.ts): a product asked for with { defer: true }
// runs only when read, never when freed unread, and sees its inputs as they were when it was
// asked for even if they are overwritten in place first.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import * as raw from '../../src/tensor/ops.ts';
import { watchedReaders } from '../../src/gpu/hazards.ts';
import * as R from '../../src/reference/ndarray.ts';
import { expectClose, randomArray, toGpu } from '../helpers.ts';

beforeAll(async () => {
  await E.init();
});

const dispatches = () => E.runtime.stats.dispatches;

describe('deferred matmul', () => {
  it('gives the eager product when read, and records nothing until then', async () => {
    const [a, b] = [randomArray([33, 20], 1), randomArray([20, 17], 2)];
    const [ga, gb] = [toGpu(a), toGpu(b)];
    const before = dispatches();
    const c = raw.matmul(ga, gb, { defer: true });
    expect(c.layout().storage.isDeferred).toBe(true);
    expect(dispatches()).toBe(before);
    // Views and lazy expressions over it do not run it either.
    const t = raw.permuteView(c, [1, 0]);
    const lazy = raw.binary('mul', t, raw.scalar(2));
    expect(dispatches()).toBe(before);
    expectClose(await lazy.toArray(), R.map(R.transpose(R.matmul(a, b)), (q) => 2 * q).data, 1e-5, 1e-5, 'deferred product');
    expect(c.layout().storage.isDeferred).toBe(false);
    expect(watchedReaders()).toBe(0);
    [ga, gb, c, t, lazy].forEach((x) => x.dispose());
  });

  it('never runs when freed unread, and gives back every buffer', async () => {
    await E.runtime.sync();
    const live = E.memoryStats().liveBuffers;
    const ga = toGpu(randomArray([16, 16], 3));
    const before = dispatches();
    const c = raw.matmul(ga, ga, { defer: true });
    expect(watchedReaders()).toBe(1);
    c.dispose();
    expect(watchedReaders()).toBe(0);
    ga.dispose();
    expect(dispatches()).toBe(before);
    expect(E.memoryStats().liveBuffers).toBe(live);
  });

  it('reads its inputs as they were: an in-place write first records the product', async () => {
    const a = randomArray([8, 12], 4);
    const b = randomArray([12, 5], 5);
    const [ga, gb] = [toGpu(a), toGpu(b)];
    const c = raw.matmul(ga, gb, { defer: true });
    raw.assign(ga, raw.scalar(0)); // overwrites an input in place
    expect(c.layout().storage.isDeferred).toBe(false);
    expectClose(await c.toArray(), R.matmul(a, b).data, 1e-5, 1e-5, 'product of the old values');
    expect(Math.max(...(await ga.toArray()).map(Math.abs))).toBe(0);
    [ga, gb, c].forEach((x) => x.dispose());
  });

  it('a chain of deferred products runs in order when the last is read', async () => {
    const [a, b, d] = [randomArray([6, 7], 6), randomArray([7, 8], 7), randomArray([8, 3], 8)];
    const [ga, gb, gd] = [toGpu(a), toGpu(b), toGpu(d)];
    const ab = raw.matmul(ga, gb, { defer: true });
    const abd = raw.matmul(ab, gd, { defer: true }); // reading ab's buffer runs it
    expect(ab.layout().storage.isDeferred).toBe(false);
    expect(abd.layout().storage.isDeferred).toBe(true);
    expectClose(await abd.toArray(), R.matmul(R.matmul(a, b), d).data, 1e-5, 1e-5, '(a·b)·d');
    [ga, gb, gd, ab, abd].forEach((x) => x.dispose());
  });
});

describe('deferred weight gradients in a double backward', () => {
  it('an HVP through a linear layer skips the first backward’s dW and leaves no deferred kernel behind', async () => {
    const x = toGpu(randomArray([10, 6], 9));
    const w = toGpu(randomArray([6, 4], 10));
    const v = toGpu(randomArray([6, 4], 11));
    const f = (wi: E.Tensor) => E.sum(E.tanh(E.matmul(x, wi)));
    await E.runtime.sync();
    const live = E.memoryStats().liveBuffers;
    let hv!: E.Tensor;
    const report = await E.profile(() => void (hv = E.tidy(() => E.keep(E.hvp(f, [w], [v])[0]))));
    // x·W forward, then in the second pass x·v (through the first backward's dW = xᵀ·dy, whose
    // own value is never read) and xᵀ·(…) for W: three products, not four.
    const matmuls = [...report].filter(([k]) => k.startsWith('matmul')).reduce((n, [, r]) => n + r.count, 0);
    expect(matmuls, [...report.keys()].join()).toBe(3);
    // Reference: H·v of Σ tanh(x·W) is xᵀ·(tanh''(x·W) ⊙ (x·v)).
    const X = randomArray([10, 6], 9);
    const z = R.matmul(X, randomArray([6, 4], 10));
    const d2 = R.map(z, (q) => -2 * Math.tanh(q) * (1 - Math.tanh(q) ** 2));
    const want = R.matmul(R.transpose(X), R.zip([d2, R.matmul(X, randomArray([6, 4], 11))], (p, q) => p * q));
    expectClose(await hv.toArray(), want.data, 1e-4, 1e-5, 'hvp');
    expect(watchedReaders()).toBe(0);
    hv.dispose();
    await E.runtime.sync();
    expect(E.memoryStats().liveBuffers).toBe(live);
    [x, w, v].forEach((q) => q.dispose());
  });
});
