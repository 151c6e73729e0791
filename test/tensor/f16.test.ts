// f16 storage against the float64 reference rounded with roundHalf (src/reference/half.ts).
//
// Tolerances come from f16's unit roundoff u = 2^-11: one rounding to f16 is within u·|x| of the
// exact value (round to nearest), so a result that the reference rounds the same way but whose
// f32 computation differs slightly (transcendentals, summation order) can land on the
// neighbouring f16 value: one f16 ulp, at most 2u relative. Sums accumulate in f32 (≈1e-7
// relative to Σ|terms|), which is far below u.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import { ctx } from '../../src/gpu/device.ts';
import { setMatmulStrategy, lastMatmulKernel } from '../../src/tensor/kernels/matmul.ts';
import { setBindingLimit } from '../../src/tensor/kernels/windows.ts';
import { HALF_EPS, roundHalf, toHalf } from '../../src/reference/half.ts';
import * as R from '../../src/reference/ndarray.ts';
import { NDArray } from '../../src/reference/ndarray.ts';
import { halfBits, halfValue } from '../../src/tensor/half.ts';
import { expectClose, randomArray } from '../helpers.ts';

const U = HALF_EPS;
/** The inputs as f16 on the GPU; tests compare against the reference of the same rounded values. */
const toGpu16 = (a: NDArray) => E.tensor(Float32Array.from(a.data), [...a.shape], 'f16');
const half = (shape: number[], seed: number, lo = -1, hi = 1) => toHalf(randomArray(shape, seed, lo, hi));

beforeAll(async () => {
  await E.init();
});
afterAll(() => {
  setMatmulStrategy('auto');
  setBindingLimit(null);
});

describe('f16 rounding (host encoder vs reference)', () => {
  const special = [1, 1 / 3, 0.1, 65504, 65519, 65520, 7e4, -7e4, 1e-8, 2 ** -24, 3 * 2 ** -26, 2 ** -25, 2 ** -14 - 2 ** -25, 1 + 2 ** -11, 1 + 3 * 2 ** -11, -0, Infinity, -Infinity];
  it('matches roundHalf exactly, ties to even, overflow to ±inf', () => {
    for (const x of [...special, ...randomArray([2000], 1, -70000, 70000).data, ...randomArray([2000], 2, -1e-3, 1e-3).data]) {
      const f = Math.fround(x); // the engine uploads through f32, as c10::Half(float) does
      expect(halfValue(halfBits(f))).toBe(roundHalf(f));
    }
    expect(roundHalf(1 + 2 ** -11)).toBe(1); // tie → even mantissa
    expect(roundHalf(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    expect(roundHalf(65520)).toBe(Infinity);
    expect(Number.isNaN(halfValue(halfBits(NaN)))).toBe(true);
  });

  it('tensor(data, shape, "f16") stores halves and toArray() decodes them (odd lengths included)', async () => {
    const t = E.tensor(special, [special.length], 'f16');
    expect(t.dtype).toBe('f16');
    expect(Array.from(await t.toArray())).toEqual(special.map((x) => roundHalf(Math.fround(x))));
    const odd = E.tensor([1.5, 2.5, 3.25], [3], 'f16');
    expect(Array.from(await E.slice(odd, [[1, 3]]).toArray())).toEqual([2.5, 3.25]); // odd offset readback
  });
});

describe('f16 elementwise', () => {
  it('cast f32 → f16 on the GPU rounds to nearest (within u), overflows to ±inf, keeps NaN', async () => {
    const x = randomArray([4096], 3, -1000, 1000);
    const h = E.cast(E.tensor(Float32Array.from(x.data), [4096]), 'f16');
    expect(h.dtype).toBe('f16');
    const got = await h.toArray();
    got.forEach((v, i) => {
      expect(roundHalf(v)).toBe(v); // an f16 value
      expect(Math.abs(v - x.data[i])).toBeLessThanOrEqual(U * Math.abs(x.data[i]) + 2 ** -25);
    });
    const s = await E.cast(E.tensor([7e4, -7e4, NaN, 65504], [4]), 'f16').realize().toArray();
    expect(Array.from(s)).toEqual([Infinity, -Infinity, NaN, 65504]);
  });

  it('fused f16 chains round after every op, like PyTorch eager f16 (one ulp of slack for exp)', async () => {
    const a = half([8, 33], 4);
    const b = half([33], 5, 0.5, 2);
    const z = E.add(E.mul(E.exp(toGpu16(a)), toGpu16(b)), 0.5); // scalars do not promote
    expect(z.dtype).toBe('f16');
    const want = toHalf(R.add(toHalf(R.mul(toHalf(R.exp(a)), b)), 0.5));
    expectClose(await z.toArray(), want.data, 2 * U, 0, 'exp·b + 0.5');
    // Realised (stored as f16) and fused give the same values.
    expect(Array.from(await z.realize().toArray())).toEqual(Array.from(await E.add(E.mul(E.exp(toGpu16(a)), toGpu16(b)), 0.5).toArray()));
  });

  it('promotes f16 with f32 to f32 (no rounding of the result)', async () => {
    const a = half([5, 7], 6);
    const b = randomArray([5, 7], 7);
    const z = E.mul(toGpu16(a), E.tensor(Float32Array.from(b.data), [5, 7]));
    expect(z.dtype).toBe('f32');
    expectClose(await z.toArray(), R.mul(a, b).data, 2e-6, 1e-7, 'f16·f32');
    expect(E.cast(z, 'f32')).toBe(z);
  });

  it('binding windows count 2-byte elements', async () => {
    const a = half([96, 50], 8);
    setBindingLimit(2048);
    try {
      const y = E.add(E.mul(toGpu16(a), 2), 1).realize();
      expectClose(await y.toArray(), toHalf(R.add(R.mul(a, 2), 1)).data, 0, 0, 'windowed f16');
      const s = E.sum(toGpu16(a), 1);
      expectClose(await s.toArray(), toHalf(R.sum(a, 1)).data, 2 * U, 1e-6, 'windowed f16 sum');
    } finally {
      setBindingLimit(null);
    }
  });
});

describe('f16 reductions, matmul, gather', () => {
  it('sum / max / logsumexp over f16 accumulate in f32 and return f16', async () => {
    const a = half([6, 300], 9, -4, 4);
    const s = E.sum(toGpu16(a), 1);
    expect(s.dtype).toBe('f16');
    expectClose(await s.toArray(), toHalf(R.sum(a, 1)).data, U, 1e-6 * 300 * 4, 'sum');
    expectClose(await E.max(toGpu16(a), 0).toArray(), R.max(a, 0).data, 0, 0, 'max');
    expectClose(await E.logsumexp(toGpu16(a), -1).toArray(), toHalf(R.logsumexp(a, -1)).data, 2 * U, 0, 'logsumexp (one-pass kernel)');
    expectClose(await E.logsumexp(toGpu16(R.slice(a, [null, [0, 20]])), -1).toArray(), R.logsumexp(R.slice(a, [null, [0, 20]]), -1).data, 4 * U, 0, 'logsumexp (composed)');
  });

  // |c − c64| ≤ 2u·|c64| (rounding the f32 sum to f16, plus one ulp when the f32 sum sits next to
  // a rounding boundary) + 1e-5·Σ|a||b| (f32 accumulation).
  const checkMatmul = async (strategy: 'simple' | 'tex' | 'tiled', transposeB: boolean) => {
    setMatmulStrategy(strategy);
    const a = half([2, 37, 48], 10);
    const b = half(transposeB ? [40, 48] : [48, 40], 11);
    const B = transposeB ? R.transpose(b) : b;
    const c = E.matmul(toGpu16(a), transposeB ? E.transpose(toGpu16(b)) : toGpu16(b));
    expect(c.dtype).toBe('f16');
    const want = R.matmul(a, B);
    const scale = R.matmul(R.abs(a), R.abs(B));
    const got = await c.toArray();
    got.forEach((v, i) => expect(Math.abs(v - want.data[i])).toBeLessThanOrEqual(2 * U * Math.abs(want.data[i]) + 1e-5 * scale.data[i]));
    return lastMatmulKernel;
  };
  it('f16 @ f16 → f16, portable kernel', async () => {
    expect(await checkMatmul('simple', false)).toBe('simple');
    await checkMatmul('simple', true);
  });
  it('f16 @ f16 → f16, tiled (GPU) kernel', async () => {
    expect(await checkMatmul('tiled', false)).toBe('tiled4(a:k,b:n)');
    expect(await checkMatmul('tiled', true)).toBe('tiled4(a:k,b:k)');
  });
  it('f16 @ f16 → f16, packed texture kernel (vec4 and gather loads)', async () => {
    const variant = await checkMatmul('tex', false);
    if (ctx().hasSubgroups) expect(variant).toBe('tex(a:vec4,b:vec4)');
    const gathered = await checkMatmul('tex', true);
    if (ctx().hasSubgroups) expect(gathered).toBe('tex(a:vec4,b:gather)');
  });
  it('f16 @ f32 promotes to f32', async () => {
    setMatmulStrategy('auto');
    const a = half([9, 16], 12);
    const b = randomArray([16, 5], 13);
    const c = E.matmul(toGpu16(a), E.tensor(Float32Array.from(b.data), [16, 5]));
    expect(c.dtype).toBe('f32');
    expectClose(await c.toArray(), R.matmul(a, b).data, 1e-5, 1e-6, 'mixed');
  });

  it('embedding gather from an f16 table is exact; its adjoint sums in f32 and rounds once', async () => {
    const table = half([50, 12], 14);
    const ids = [3, 49, 3, 0, 7, 3];
    const out = E.indexSelect(toGpu16(table), E.tensor(Int32Array.from(ids), [2, 3]));
    expect(out.dtype).toBe('f16');
    expectClose(await out.toArray(), R.indexSelect(table, ids, [2, 3]).data, 0, 0, 'gather');
    setBindingLimit(1024); // the table (1.2 KB as f16) is gathered in row windows
    try {
      expectClose(await E.indexSelect(toGpu16(table), E.tensor(Int32Array.from(ids), [6])).toArray(), R.indexSelect(table, ids).data, 0, 0, 'windowed gather');
    } finally {
      setBindingLimit(null);
    }
    const src = half([6, 12], 15);
    const back = E.scatterAdd(toGpu16(src), E.tensor(Int32Array.from(ids), [6]), 50);
    expect(back.dtype).toBe('f16');
    expectClose(await back.toArray(), toHalf(R.scatterAdd(src, ids, 50)).data, U, 1e-7, 'scatter-add');
  });
});

describe('autograd through casts', () => {
  // f(w) = Σ v ⊙ tanh(x16 @ w16) with the matmul in f16: the gradient is f32 (it flows back
  // through the cast to w's dtype) and matches the f64 gradient of the same function to f16
  // precision (a few u relative to the gradient's scale).
  it('gradient flows back cast to the input dtype and matches the f64 reference', async () => {
    const x = half([6, 10], 16);
    const w = randomArray([10, 4], 17);
    const v = randomArray([6, 4], 18);
    const wt = E.tensor(Float32Array.from(w.data), [10, 4]).requiresGrad_();
    const f = (W: E.Tensor) => E.sum(E.mul(E.cast(E.tanh(E.matmul(toGpu16(x), E.cast(W, 'f16'))), 'f32'), E.tensor(Float32Array.from(v.data), [6, 4])));
    const [g] = E.grad(f)(wt);
    expect(g.dtype).toBe('f32');
    const y = R.tanh(R.matmul(x, w));
    const want = R.matmul(R.transpose(x), R.mul(v, R.sub(1, R.mul(y, y))));
    const scale = Math.max(...want.data.map(Math.abs));
    expectClose(await g.toArray(), want.data, 0, 8 * U * scale, 'dL/dw');
  });

  it('mixed-dtype ops give each input a gradient of its own dtype; HVP through an f16 region', async () => {
    const a = E.tensor([0.5, -1, 2], [3]).requiresGrad_();
    const h = E.tensor([1, 2, 3], [3], 'f16').requiresGrad_();
    const [ga, gh] = E.grad((p, q) => E.sum(E.mul(E.add(p, q), p)))(a, h);
    expect([ga.dtype, gh.dtype]).toEqual(['f32', 'f16']);
    expect(Array.from(await gh.toArray())).toEqual([0.5, -1, 2]);
    // HVP of Σ cast(p,f16)³ (as f32): 6·p16·v, with p16 = p rounded to f16.
    const p = E.tensor([0.1, -0.7, 1.3], [3]);
    const vv = E.tensor([1, 0.5, -2], [3]);
    const [hv] = E.hvp((q) => E.sum(E.cast(E.pow(E.cast(q, 'f16'), 3), 'f32')), [p], [vv]);
    expect(hv.dtype).toBe('f32');
    const want = [0.1, -0.7, 1.3].map((q, i) => 6 * roundHalf(q) * [1, 0.5, -2][i]);
    expectClose(await hv.toArray(), want, 4 * U, 0, 'hvp');
  });
});

describe('adapters without shader-f16', () => {
  it('f16 tensors throw an error naming the missing feature', () => {
    const c = ctx();
    const had = c.hasF16;
    c.hasF16 = false;
    try {
      expect(() => E.tensor([1, 2], [2], 'f16')).toThrow(/'shader-f16'/);
      expect(() => E.cast(E.tensor([1, 2], [2]), 'f16')).toThrow(/'shader-f16'.*f32/);
    } finally {
      c.hasF16 = had;
    }
  });
});
