// Every op's forward pass against the float64 reference.
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as E from '../../src/index.ts';
import * as R from '../../src/reference/ndarray.ts';
import { gpu, randomArray, ref, toGpu, expectClose, type Backend } from '../helpers.ts';

beforeAll(async () => {
  await E.init();
});

// f32 elementwise results are within a few ulps of the rounded f64 result.
const RTOL = 2e-6;
const ATOL = 1e-6;

async function same<X>(f: <Y>(o: Backend<Y>, ...xs: Y[]) => Y, inputs: R.NDArray[], rtol = RTOL, atol = ATOL) {
  const expected = f(ref, ...inputs);
  const actual = f(gpu, ...inputs.map(toGpu));
  expect(actual.shape).toEqual(expected.shape);
  expectClose(await actual.toArray(), expected.data, rtol, atol, 'forward');
}

describe('elementwise', () => {
  const x = randomArray([3, 4], 1);
  const pos = randomArray([3, 4], 2, 0.1, 3);
  const unary = ['neg', 'exp', 'tanh', 'abs', 'sin', 'cos', 'sigmoid', 'relu', 'square'] as const;
  for (const op of unary) it(op, () => same((o, a) => o[op](a), [x]));
  for (const op of ['log', 'sqrt', 'rsqrt'] as const) it(op, () => same((o, a) => o[op](a), [pos]));
  it('tanh saturates without NaN', () => same((o, a) => o.tanh(o.mul(a, 100)), [x]));
  it('expm1', () => same((o, a) => o.expm1(a), [x]));
  it('expm1 keeps its relative precision near 0 and is exp − 1 far from it', async () => {
    // exp(x) − 1 in f32 would be off by up to 6e-8/|x| relative here (6e-5 at 1e-3).
    const xs = [-1e-7, 3e-6, -1e-3, 2.5e-3, -0.02, 0.3, -0.999, 1.001, -3, 5, -30, -Infinity];
    const got = await E.expm1(E.tensor(xs)).toArray();
    got.forEach((v, i) => expect(Math.abs(v - Math.expm1(Math.fround(xs[i]))), `x = ${xs[i]}`).toBeLessThanOrEqual(4e-7 * Math.abs(Math.expm1(Math.fround(xs[i])))));
  });
  const binary = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'gt', 'lt', 'eq'] as const;
  for (const op of binary) it(op, () => same((o, a, b) => o[op](a, b), [x, randomArray([3, 4], 3)]));
  it('pow with positive base and real exponent', () => same((o, a, b) => o.pow(a, b), [pos, randomArray([3, 4], 4, -2, 2)], 1e-5));
  it('pow of negative base with integer exponents (like PyTorch)', () => same((o, a) => o.pow(a, 3), [x], 1e-5));
  it('where', () => same((o, c, a, b) => o.where(o.gt(c, 0), a, b), [x, randomArray([3, 4], 5), randomArray([4], 6)]));
  it('scalars on either side', () => same((o, a) => o.sub(2, o.mul(a, 0.5)), [x]));
  it('a long fused chain (GELU, tanh form)', () =>
    same((o, a) => o.mul(o.mul(a, 0.5), o.add(1, o.tanh(o.mul(Math.sqrt(2 / Math.PI), o.add(a, o.mul(0.044715, o.pow(a, 3))))))), [x], 1e-5));
});

describe('broadcasting', () => {
  it('agrees with the reference for random compatible shapes (property)', async () => {
    const dims = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 4 });
    await fc.assert(
      fc.asyncProperty(
        dims,
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 3 }),
        fc.boolean(),
        fc.integer(),
        async (shape, aOnes, bOnes, drop, swap, seed) => {
          // Both sides broadcast: a is the full rank with some dims set to 1 ([3,1] against [1,4]),
          // b a suffix of the shape with some (other) dims set to 1; either may come first.
          const aShape = shape.map((d, i) => (aOnes[i] ? 1 : d));
          const bShape = shape.slice(Math.min(drop, shape.length)).map((d, i) => (bOnes[i] ? 1 : d));
          const [x, y] = [randomArray(aShape, seed), randomArray(bShape, seed + 1)];
          await same((o, a, b) => o.add(o.mul(a, b), b), swap ? [y, x] : [x, y]);
          await same((o, a, b) => o.where(o.gt(a, b), a, b), swap ? [y, x] : [x, y]);
        },
      ),
      { numRuns: 40 },
    );
  });
  it('names the op and both shapes on mismatch', () => {
    expect(() => E.add(E.zeros([2, 3]), E.zeros([4]))).toThrow(/add: shapes \[2, 3\] and \[4\] cannot be broadcast/);
  });
});

describe('reductions', () => {
  const x = randomArray([2, 3, 5], 7);
  for (const op of ['sum', 'mean', 'max', 'min', 'logsumexp'] as const) {
    it(`${op} over all / single / multiple / negative axes, keepdims`, async () => {
      for (const [axes, keep] of [[undefined, false], [0, false], [2, true], [[0, 2], false], [-1, true], [[1, 2], true]] as const) {
        await same((o, a) => o[op](a, axes as never, keep), [x], 1e-5, 1e-6);
      }
    });
  }
  it('long rows (tree reduction) keep f32 accuracy', () => same((o, a) => o.sum(a, -1), [randomArray([3, 5000], 8)], 1e-5, 1e-5));
  it('softmax and logSoftmax', async () => {
    await same((o, a) => o.softmax(a), [x], 1e-5);
    await same((o, a) => o.logSoftmax(o.mul(a, 30), 1), [x], 1e-5, 1e-5);
  });
  it('max over an empty axis is an error', () => {
    expect(() => E.max(E.zeros([0, 3]), 0)).toThrow(/empty/);
  });
});

describe('views and assembly', () => {
  const x = randomArray([2, 3, 4], 9);
  it('reshape (view and copy cases)', async () => {
    await same((o, a) => o.reshape(a, [6, 4]), [x], 0, 0);
    await same((o, a) => o.reshape(o.transpose(a, 0, 2), [4, -1]), [x], 0, 0);
  });
  it('permute / transpose', () => same((o, a) => o.permute(a, [2, 0, 1]), [x], 0, 0));
  it('slice', () => same((o, a) => o.slice(a, [null, [1, 3], [-3, -1]]), [x], 0, 0));
  it('expand', () => same((o, a) => o.expand(o.slice(a, [[0, 1], null, null]), [5, 3, 4]), [x], 0, 0));
  it('views of lazy expressions', () => same((o, a) => o.slice(o.permute(o.exp(a), [1, 2, 0]), [[1, 2], null, null]), [x], 2e-6));
  it('concat and split', async () => {
    await same((o, a, b) => o.concat([a, b, a], 1), [x, randomArray([2, 1, 4], 10)], 0, 0);
    const parts = E.split(toGpu(x), [1, 2], 1);
    expect(parts.map((p) => p.shape)).toEqual([[2, 1, 4], [2, 2, 4]]);
    expectClose(await parts[1].toArray(), R.slice(x, [null, [1, 3], null]).data, 0, 0, 'split');
  });
  it('matmul: plain, transposed, batched, broadcast batch', async () => {
    await same((o, a, b) => o.matmul(a, b), [randomArray([5, 7], 11), randomArray([7, 3], 12)], 1e-5, 1e-5);
    await same((o, a, b) => o.matmul(o.transpose(a), b), [randomArray([7, 5], 13), randomArray([7, 3], 14)], 1e-5, 1e-5);
    await same((o, a, b) => o.matmul(a, b), [randomArray([2, 3, 5, 7], 15), randomArray([7, 6], 16)], 1e-5, 1e-5);
    await same((o, a, b) => o.matmul(a, o.transpose(b)), [randomArray([2, 1, 5, 7], 17), randomArray([3, 6, 7], 18)], 1e-5, 1e-5);
  });
  it('matmul names both shapes on mismatch', () => {
    expect(() => E.matmul(E.zeros([2, 3]), E.zeros([4, 5]))).toThrow(/matmul: inner dimensions differ: \[2, 3\] @ \[4, 5\]/);
  });
});

describe('indexing', () => {
  const table = randomArray([6, 4], 19);
  const ids = [5, 0, 2, 2, 5, 1];
  it('indexSelect (embedding lookup)', async () => {
    const out = E.indexSelect(toGpu(table), E.tensor(new Int32Array(ids), [2, 3]));
    expect(out.shape).toEqual([2, 3, 4]);
    expectClose(await out.toArray(), R.indexSelect(table, ids).data, 0, 0, 'indexSelect');
  });
  it('indices given as views: a slice of rows (nonzero offset), a transpose, and the gradient back through them', async () => {
    const idx = E.tensor(new Int32Array(ids), [2, 3]);
    // Row 1 of the ids starts 3 elements into their buffer: [2, 5, 1], not [5, 0, 2].
    const row1 = E.slice(idx, [[1, 2], null]);
    expectClose(await E.indexSelect(toGpu(table), row1).toArray(), R.indexSelect(table, ids.slice(3)).data, 0, 0, 'slice of ids');
    const colMajor = E.transpose(idx); // [[5, 2], [0, 5], [2, 1]]
    expectClose(await E.indexSelect(toGpu(table), colMajor).toArray(), R.indexSelect(table, [5, 2, 0, 5, 2, 1]).data, 0, 0, 'transposed ids');
    // The embedding's gradient (scatter-add) through the same sliced ids.
    const w = toGpu(table);
    const [g] = E.grad((t: E.Tensor) => E.sum(E.mul(E.indexSelect(t, row1), E.tensor(Float32Array.from({ length: 12 }, (_, i) => i + 1), [1, 3, 4]))))(w);
    const want = new Float64Array(24);
    [2, 5, 1].forEach((id, p) => { for (let c = 0; c < 4; c++) want[id * 4 + c] += p * 4 + c + 1; });
    expectClose(await g.toArray(), want, 0, 0, 'gradient through sliced ids');
  });
  it('scatterAdd sums repeated rows', async () => {
    const src = randomArray([6, 4], 20);
    const out = E.scatterAdd(toGpu(src), E.tensor(new Int32Array(ids)), 7);
    expectClose(await out.toArray(), R.scatterAdd(src, ids, 7).data, 1e-6, 1e-7, 'scatterAdd');
  });
  it('takeAlongLastAxis', async () => {
    const x = randomArray([2, 3, 5], 21);
    const t = [4, 0, 1, 2, 3, 4];
    const out = E.takeAlongLastAxis(toGpu(x), E.tensor(new Int32Array(t), [2, 3]));
    expectClose(await out.toArray(), R.takeAlongLastAxis(x, t).data, 0, 0, 'take');
  });
  it('scatterAdd with indices computed on the GPU (no host copy) gives the same bits, ignoring out-of-range ids', async () => {
    const src = randomArray([6, 4], 20);
    const host = E.scatterAdd(toGpu(src), E.tensor(new Int32Array(ids)), 7);
    const onGpu = E.cast(E.tensor(ids.map((i) => i + 0.25)), 'i32'); // computed by a kernel: no host indices
    const dev = E.scatterAdd(toGpu(src), onGpu, 7);
    expect(Array.from(await dev.toArray())).toEqual(Array.from(await host.toArray()));
    const outside = E.cast(E.tensor([5, 0, 9, 2, -3, 1]), 'i32');
    const inRange = [0, 1, 3, 5]; // positions whose id is in [0, 7)
    const rows = new R.NDArray(Float64Array.from(inRange.flatMap((p) => Array.from(src.data.slice(4 * p, 4 * p + 4)))), [4, 4]);
    const kept = R.scatterAdd(rows, [5, 0, 2, 1], 7).data;
    expectClose(await E.scatterAdd(toGpu(src), outside, 7).toArray(), kept, 1e-6, 1e-7, 'ids 9 and −3 dropped');
  });
  it('out-of-range ids are rejected where the host knows them', () => {
    expect(() => E.scatterAdd(E.zeros([2, 4]), E.tensor(new Int32Array([0, 9])), 3)).toThrow(/index 9 is out of range \[0, 3\)/);
  });
});

describe('sign and comparisons', () => {
  it('sign, lt, le, gt, ge, eq, ne match the reference, ties and broadcasting included', async () => {
    // Values on a coarse grid, so ties (a = b) really occur; b broadcasts along the rows.
    const a = R.NDArray.from(Array.from({ length: 12 }, (_, i) => ((i * 7) % 5) - 2), [3, 4]);
    const b = R.NDArray.from([-1, 0, 1, 2], [4]);
    expect(Array.from(await E.sign(toGpu(a)).toArray())).toEqual(Array.from(R.sign(a).data, (x) => x + 0)); // -0 → 0
    for (const op of ['lt', 'le', 'gt', 'ge', 'eq', 'ne'] as const) {
      const got = await (E[op] as (x: E.Tensor, y: E.Tensor) => E.Tensor)(toGpu(a), toGpu(b)).toArray();
      expect(Array.from(got), op).toEqual(Array.from(R[op](a, b).data));
    }
    expect(Array.from(await E.ge(toGpu(a), 0).toArray())).toEqual(Array.from(R.ge(a, 0).data));
  });
});

describe('creation and random numbers', () => {
  it('zeros / ones / full / arange', async () => {
    expect(Array.from(await E.arange(2, 7, 2).toArray())).toEqual([2, 4, 6]);
    expect(Array.from(await E.full([2, 2], 3.5).toArray())).toEqual([3.5, 3.5, 3.5, 3.5]);
  });
  it('Philox uniforms are bit-identical to the CPU reference', async () => {
    const { uniform, normal } = await import('../../src/reference/philox.ts');
    const g = new E.Generator(1234);
    const u = await g.rand([1001]).toArray();
    expect(Array.from(u)).toEqual(Array.from(uniform(1001, 1234, 0)));
    const n = await g.randn([999]).toArray();
    expectClose(n, normal(999, 1234, Math.ceil(1001 / 4)), 1e-5, 1e-5, 'normal');
  });
  it('bernoulli and Rademacher draws are the reference uniforms thresholded, bit for bit', async () => {
    const { uniform } = await import('../../src/reference/philox.ts');
    const g = new E.Generator(99);
    const b = await g.bernoulli([4, 257], 0.3).toArray();
    expect(Array.from(b)).toEqual(Array.from(uniform(4 * 257, 99, 0), (u) => (u < 0.3 ? 1 : 0)));
    const r = await g.rademacher([513]).toArray();
    expect(Array.from(r)).toEqual(Array.from(uniform(513, 99, Math.ceil((4 * 257) / 4)), (u) => (u < 0.5 ? 1 : -1)));
  });
  it('Philox counters run past 2³² blocks: no repeat, still the reference (uniform, normal, both samplers)', async () => {
    const { uniform, normal } = await import('../../src/reference/philox.ts');
    const at = (counter: number) => {
      const g = new E.Generator(5);
      g.state = { seed: 5, counter };
      return g;
    };
    const high = 2 ** 32 - 3; // the draw's blocks straddle 2³²
    expect(Array.from(await at(high).rand([64]).toArray())).toEqual(Array.from(uniform(64, 5, high)));
    expectClose(await at(high).randn([64]).toArray(), normal(64, 5, high), 1e-5, 1e-5, 'normal past 2³²');
    const wrapped = await at(2 ** 32).rand([16]).toArray();
    expect(Array.from(wrapped)).not.toEqual(Array.from(await at(0).rand([16]).toArray()));
    const logits = E.zeros([64, 300]);
    for (const method of ['inverse-cdf', 'gumbel'] as const) {
      const s0 = await E.categorical(logits, at(0), { method }).toArray();
      const s1 = await E.categorical(logits, at(2 ** 32), { method }).toArray();
      expect(Array.from(s1), method).not.toEqual(Array.from(s0));
    }
  });
  it('same seed, same numbers; different seed, different numbers', async () => {
    const a = await new E.Generator(7).randn([64]).toArray();
    const b = await new E.Generator(7).randn([64]).toArray();
    const c = await new E.Generator(8).randn([64]).toArray();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
  });
  it('normal draws have the right moments', async () => {
    const n = await new E.Generator(3).randn([40000], 2, 3).toArray();
    const mean = n.reduce((s, v) => s + v, 0) / n.length;
    const sd = Math.sqrt(n.reduce((s, v) => s + (v - mean) ** 2, 0) / n.length);
    expect(Math.abs(mean - 2)).toBeLessThan(0.05);
    expect(Math.abs(sd - 3)).toBeLessThan(0.05);
  });
  it('rademacher probes are ±1 with both signs', async () => {
    const r = await new E.Generator(5).rademacher([1000]).toArray();
    expect(r.every((v) => v === 1 || v === -1)).toBe(true);
    const pos = r.filter((v) => v === 1).length;
    expect(pos).toBeGreaterThan(400);
    expect(pos).toBeLessThan(600);
  });
});

describe('in-place assign', () => {
  it('p ← p − lr·g reads and writes the same buffer correctly', async () => {
    const p = E.tensor([1, 2, 3, 4]);
    const g = E.tensor([0.5, 0.5, 1, 1]);
    E.assign(p, E.sub(p, E.mul(g, 0.1)));
    expectClose(await p.toArray(), [0.95, 1.95, 2.9, 3.9], 1e-6, 1e-7, 'sgd step');
  });
  it('writes through a strided view and handles reads of other elements (transpose)', async () => {
    const a = E.tensor([1, 2, 3, 4], [2, 2]);
    E.assign(a, E.transpose(a));
    expect(Array.from(await a.toArray())).toEqual([1, 3, 2, 4]);
    const b = E.zeros([2, 3]);
    E.assign(E.slice(b, [null, [1, 2]]), E.tensor([7, 8], [2, 1]));
    expect(Array.from(await b.toArray())).toEqual([0, 7, 0, 0, 8, 0]);
  });
  it('refuses to write into a tensor that requires grad while recording', () => {
    const w = E.tensor([1]).requiresGrad_();
    expect(() => E.assign(w, 0)).toThrow(/noGrad/);
    E.noGrad(() => E.assign(w, 0));
  });
});

describe('views share storage', () => {
  it('reshape, permute, transpose, slice and expand of a realised tensor use its buffer: no dispatch, no new buffer', async () => {
    const x = E.tensor(Float32Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);
    const before = { dispatches: E.runtime.stats.dispatches, buffers: E.memoryStats().liveBuffers };
    const views = [
      E.reshape(x, [6, 4]),
      E.permute(x, [2, 0, 1]),
      E.transpose(x),
      E.slice(x, [null, [1, 3], [0, 2]]),
      E.expand(E.slice(x, [[0, 1], null, null]), [5, 3, 4]),
    ];
    for (const v of views) {
      expect(v.isLazy).toBe(false);
      expect(v.layout().storage).toBe(x.layout().storage);
    }
    expect(E.runtime.stats.dispatches).toBe(before.dispatches);
    expect(E.memoryStats().liveBuffers).toBe(before.buffers);
    // ...and they read the right elements.
    expect(Array.from(await E.slice(x, [null, [1, 3], [0, 2]]).toArray())).toEqual([4, 5, 8, 9, 16, 17, 20, 21]);
    expect(Array.from(await E.permute(x, [2, 0, 1]).toArray()).slice(0, 6)).toEqual([0, 4, 8, 12, 16, 20]);
  });
});
