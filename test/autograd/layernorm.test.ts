// LayerNorm's statistics kernel (ops.layerNormStats, graph nodes with their own derivatives)
// against the float64 reference: the statistics on odd row lengths and far from zero, gradients
// and exact HVPs of LayerNorm built on it (the rules of μ and r must hold to second order), and
// agreement with the fully composed LayerNorm.
import { afterAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import * as N from '../../src/nn/index.ts';
import * as R from '../../src/reference/ndarray.ts';
import { NDArray } from '../../src/reference/ndarray.ts';
import { setBindingLimit } from '../../src/gpu/runtime.ts';
import { expectClose, fdGrad, fdHvp, randomArray, toGpu } from '../helpers.ts';

await E.init();
afterAll(() => {
  N.setLayerNormStrategy('auto');
  setBindingLimit(null);
});

const eps = 1e-5;
function refLayerNorm(x: NDArray, w: NDArray, b: NDArray): NDArray {
  const xc = R.sub(x, R.mean(x, -1, true));
  return R.add(R.mul(R.div(xc, R.sqrt(R.add(R.mean(R.mul(xc, xc), -1, true), eps))), w), b);
}

describe('LayerNorm statistics kernel', () => {
  // One element; fewer than, exactly and more than the 64 lanes; GPT-2's 768; a large offset —
  // few rows take the workgroup-tree kernel, and 40 rows (enough to fill a CPU adapter) the
  // one-lane-per-row kernel there.
  for (const [rows, C, offset] of [[3, 1, 0], [5, 37, 0], [4, 64, 0], [7, 200, 0], [2, 768, 0], [3, 50, 1000], [40, 100, 0], [40, 70, 1000]] as const) {
    it(`[${rows}, ${C}]${offset ? `, rows centred at ${offset}` : ''}: mean and 1/√(var + eps) of the float64 reference`, async () => {
      const x = randomArray([rows, C], C + rows, offset - 2, offset + 2);
      const { mean, rstd } = E.layerNormStats(toGpu(x), eps);
      expect(mean.shape).toEqual([rows, 1]);
      const mu = R.mean(x, -1, true);
      const xc = R.sub(x, mu);
      const r = R.div(1, R.sqrt(R.add(R.mean(R.mul(xc, xc), -1, true), eps)));
      expectClose(await mean.toArray(), mu.data, 1e-6, 1e-6, 'mean');
      // f32 rounding of x itself (|x| ≈ offset) bounds what any f32 kernel can reach here.
      expectClose(await rstd.toArray(), r.data, offset ? 1e-3 : 1e-5, 0, 'rstd');
    });
  }
  it('reads a strided (transposed) input through a contiguous copy, and 3-D leading shapes', async () => {
    const x = randomArray([6, 2, 5], 3);
    const t = E.permute(toGpu(x), [1, 2, 0]); // [2, 5, 6], not contiguous
    const want = R.permute(x, [1, 2, 0]);
    const { mean } = E.layerNormStats(t, eps);
    expect(mean.shape).toEqual([2, 5, 1]);
    expectClose(await mean.toArray(), R.mean(want, -1, true).data, 1e-6, 1e-6, 'mean');
  });
  it('rows of length 0 give one (NaN) statistic per row, as the composed mean does', async () => {
    const { mean, rstd } = E.layerNormStats(E.zeros([3, 0]), eps);
    expect(mean.shape).toEqual([3, 1]);
    expect(Array.from(await mean.toArray()).every(Number.isNaN)).toBe(true);
    expect(await rstd.toArray()).toHaveLength(3);
  });
  it('asks for f32 input', () => {
    expect(() => E.layerNormStats(E.cast(E.zeros([2, 4]), 'i32'), eps)).toThrow(/needs an f32 tensor, got i32/);
  });
});

describe('LayerNorm on the statistics kernel: derivatives', () => {
  const [x0, w0, b0] = [randomArray([3, 7], 1, -2, 2), randomArray([7], 2), randomArray([7], 3)];
  const u = randomArray([3, 7], 4, 0.5, 1.5); // fixed weights: every output element matters
  const refLoss = ([x, w, b]: NDArray[]) => R.sum(R.mul(R.tanh(refLayerNorm(x, w, b)), u)).data[0];
  const loss = (x: E.Tensor, w: E.Tensor, b: E.Tensor) => E.sum(E.mul(E.tanh(N.layerNorm(x, w, b)), toGpu(u)));

  it('uses the kernel, and the value matches the reference', async () => {
    N.setLayerNormStrategy('stats-kernel');
    const y = N.layerNorm(toGpu(x0), toGpu(w0), toGpu(b0));
    expect(N.lastLayerNorm).toBe('stats-kernel');
    expectClose(await y.toArray(), refLayerNorm(x0, w0, b0).data, 1e-5, 1e-5, 'layerNorm');
  });
  it('gradients match central differences of the float64 reference', async () => {
    N.setLayerNormStrategy('stats-kernel');
    const expected = fdGrad(refLoss, [x0, w0, b0]);
    const grads = E.grad(loss)(toGpu(x0), toGpu(w0), toGpu(b0));
    for (let i = 0; i < 3; i++) expectClose(await grads[i].toArray(), expected[i], 1e-3, 1e-4, `d/d${'xwb'[i]}`);
  });
  it('HVP (double backward) matches finite differences of gradients', async () => {
    // A direction in x moves μ and r: rules that treated them as constants would fail here.
    N.setLayerNormStrategy('stats-kernel');
    const dir = [x0, w0, b0].map((a, i) => randomArray([...a.shape], 40 + i));
    const expected = fdHvp(refLoss, [x0, w0, b0], dir);
    const hv = E.hvp(loss, [x0, w0, b0].map(toGpu), dir.map(toGpu));
    for (let i = 0; i < 3; i++) expectClose(await hv[i].toArray(), expected[i], 2e-3, 2e-3, `(Hv)_${'xwb'[i]}`);
  });
  it('gradients and HVP equal the composed LayerNorm at GPT-2-like widths', async () => {
    const [x, w, b] = [randomArray([2, 9, 96], 5, -3, 3), randomArray([96], 6), randomArray([96], 7)].map(toGpu);
    const uu = toGpu(randomArray([2, 9, 96], 8, 0.5, 1.5));
    const dir = [[2, 9, 96], [96], [96]].map((s, i) => toGpu(randomArray(s, 60 + i)));
    const run = (strategy: 'stats-kernel' | 'composed') => {
      N.setLayerNormStrategy(strategy);
      const f = (a: E.Tensor, c: E.Tensor, d: E.Tensor) => E.sum(E.mul(E.tanh(N.layerNorm(a, c, d)), uu));
      const g = E.grad(f)(x, w, b);
      expect(N.lastLayerNorm).toBe(strategy);
      return [...g, ...E.hvp(f, [x, w, b], dir)];
    };
    const a = run('stats-kernel');
    const c = run('composed');
    for (let i = 0; i < a.length; i++) {
      const want = await c[i].toArray();
      const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expectClose(await a[i].toArray(), want, 1e-4, 1e-4 * scale, i < 3 ? `grad ${i}` : `hvp ${i - 3}`);
    }
  });
});

describe('LayerNorm strategy choice', () => {
  it('composes when x, or the buffer it views, exceeds one storage binding, with the same values', async () => {
    N.setLayerNormStrategy('auto');
    const big = randomArray([64, 32], 9); // 8 KiB
    const [w, b] = [randomArray([32], 10), randomArray([32], 11)];
    const rows = R.slice(big, [[0, 4], null]);
    setBindingLimit(4096);
    try {
      const view = E.slice(toGpu(big), [[0, 4], null]); // contiguous, but its buffer is 8 KiB
      const y = N.layerNorm(view, toGpu(w), toGpu(b));
      expect(N.lastLayerNorm).toBe('composed');
      expectClose(await y.toArray(), refLayerNorm(rows, w, b).data, 1e-5, 1e-5, 'composed');
      const own = N.layerNorm(toGpu(rows), toGpu(w), toGpu(b));
      expect(N.lastLayerNorm).toBe('stats-kernel');
      expectClose(await own.toArray(), refLayerNorm(rows, w, b).data, 1e-5, 1e-5, 'stats kernel');
    } finally {
      setBindingLimit(null);
    }
  });
});
