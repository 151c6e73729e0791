// Tensors larger than one storage binding (lavapipe: 128 MiB; GPT-2's embedding is 154 MB):
// kernels split into binding windows. A shrunken limit exercises the same code on small tensors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import * as R from '../../src/reference/ndarray.ts';
import { setBindingLimit } from '../../src/tensor/kernels/windows.ts';
import { expectClose, randomArray, toGpu } from '../helpers.ts';

beforeAll(async () => {
  await E.init();
});
afterAll(() => setBindingLimit(null));

describe('binding windows', () => {
  const a = randomArray([96, 50], 1); // 19.2 KB
  const b = randomArray([96, 50], 2);
  const withLimit = async (fn: () => Promise<void>) => {
    setBindingLimit(4096);
    try {
      await fn();
    } finally {
      setBindingLimit(null);
    }
  };
  it('elementwise chains and in-place updates', () =>
    withLimit(async () => {
      const x = toGpu(a);
      const y = E.add(E.exp(x), E.mul(toGpu(b), E.tensor([2])));
      expectClose(await y.toArray(), R.add(R.exp(a), R.mul(b, 2)).data, 2e-6, 1e-6, 'chain');
      E.assign(x, E.sub(x, E.mul(toGpu(b), 0.1)));
      expectClose(await x.toArray(), R.sub(a, R.mul(b, 0.1)).data, 2e-6, 1e-6, 'assign');
    }));
  it('an operand read through a transpose, whose every row spans its whole buffer: realised in halves along a second axis', () =>
    withLimit(async () => {
      // [50, 96]ᵀ read row by row touches all 19.2 KB; halves of the column axis touch less.
      const bt = randomArray([50, 96], 3);
      const y = E.add(E.mul(toGpu(a), 2), E.transpose(toGpu(bt)));
      expectClose(await y.toArray(), R.add(R.mul(a, 2), R.transpose(bt)).data, 2e-6, 1e-6, 'a·2 + btᵀ');
      // Three dims, the transposed operand's widest stride on the last axis.
      const c = randomArray([4, 24, 50], 4);
      const d = randomArray([50, 96], 5);
      const z = E.sub(toGpu(c), E.reshape(E.transpose(toGpu(d)), [4, 24, 50]));
      expectClose(await z.toArray(), R.sub(c, R.reshape(R.transpose(d), [4, 24, 50])).data, 2e-6, 1e-6, 'c − reshape(dᵀ)');
      // A column sum of a tensor larger than one binding: blocks of rows, then the partials.
      expectClose(await E.sum(toGpu(a), 0).toArray(), R.sum(a, 0).data, 1e-5, 1e-5, 'sum over rows');
    }));
  it('row reductions and total reductions', () =>
    withLimit(async () => {
      expectClose(await E.sum(toGpu(a), 1).toArray(), R.sum(a, 1).data, 1e-5, 1e-5, 'sum rows');
      expectClose(await E.max(E.reshape(toGpu(a), [8, 12, 50]), [1, 2]).toArray(), R.max(R.reshape(a, [8, 12, 50]), [1, 2]).data, 0, 0, 'max');
      expectClose([await E.sum(toGpu(a)).item()], [R.sum(a).data[0]], 1e-5, 1e-5, 'total');
    }));
  it('embedding lookup and its gradient over a windowed table', () =>
    withLimit(async () => {
      const ids = [95, 0, 40, 40, 7, 95, 63];
      const out = E.indexSelect(toGpu(a), E.tensor(new Int32Array(ids)));
      expectClose(await out.toArray(), R.indexSelect(a, ids).data, 0, 0, 'gather');
      const src = randomArray([7, 50], 3);
      const sc = E.scatterAdd(toGpu(src), E.tensor(new Int32Array(ids)), 96);
      expectClose(await sc.toArray(), R.scatterAdd(src, ids, 96).data, 1e-6, 1e-7, 'scatter');
    }));
  it('an embedding lookup whose output exceeds one binding gathers blocks of ids', () =>
    withLimit(async () => {
      // 60 ids × 50 floats = 12 KB of output under 4 KB; ids as a [3, 20] batch, the output [3, 20, 50].
      const ids = Array.from({ length: 60 }, (_, i) => (i * 37) % 96);
      const out = E.indexSelect(toGpu(a), E.tensor(new Int32Array(ids), [3, 20]));
      expect(out.shape).toEqual([3, 20, 50]);
      expectClose(await out.toArray(), R.indexSelect(a, ids).data, 0, 0, 'gather in blocks');
    }));
});
