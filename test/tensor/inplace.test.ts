// In-place writes and lazy expressions. An elementwise result is an unevaluated expression over
// its inputs' buffers until something reads it; an in-place write (assign, assignMany) into one of
// those buffers must never change it silently. Like PyTorch, the value assigned stays readable
// (x ← x + 10 leaves `x + 10` holding what x now holds); anything else built from the old contents
// and read after the write fails with a message saying to realise it first. A write into one
// slice leaves expressions over other elements of the buffer valid (a KV cache fills one position
// at a time). Views of realised tensors alias their storage, as PyTorch views do.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';

beforeAll(async () => {
  await E.init();
});

const vec = (xs: number[]) => E.tensor(Float32Array.from(xs), [xs.length]);
const values = async (t: E.Tensor) => Array.from(await t.toArray());

describe('in-place writes under lazy expressions', () => {
  it('an expression over a buffer written afterwards refuses to run instead of reading the new contents', async () => {
    const x = vec([1, 2, 3]);
    const y = E.mul(x, 2);
    expect(y.isLazy).toBe(true);
    E.assign(x, E.add(x, 10));
    await expect(values(y)).rejects.toThrow(/written in place.*after it was built.*realize\(\)/);
    // Every way of using it says the same: as an operand, through a view, reshaped.
    expect(() => E.add(y, 1)).toThrow(/written in place/);
    expect(() => E.transpose(E.reshape(y, [3, 1]))).toThrow(/written in place/);
    expect(await values(x)).toEqual([11, 12, 13]);
  });

  it('realising before the write keeps the old values', async () => {
    const x = vec([1, 2, 3]);
    const y = E.mul(x, 2).realize();
    E.assign(x, 0);
    expect(await values(y)).toEqual([2, 4, 6]);
  });

  it('the assigned value itself reads what was written (x ← x + 10, then x + 10)', async () => {
    const x = vec([1, 2, 3]);
    const v = E.add(x, 10);
    E.assign(x, v);
    expect(await values(v)).toEqual([11, 12, 13]);
    // ... and is guarded like any expression when x is written again.
    E.assign(x, 0);
    expect(() => E.mul(v, 1)).toThrow(/written in place/);
  });

  it('assignMany: each value reads what its destination now holds; other expressions over them are guarded', async () => {
    const m = vec([1, 2]);
    const theta = vec([10, 20]);
    const g = vec([0.5, 0.25]);
    const m1 = E.add(E.mul(m, 0.5), g);
    const step = E.sub(theta, m1);
    const other = E.mul(theta, 3);
    E.assignMany([
      [m, m1],
      [theta, step],
    ]);
    expect(await values(m1)).toEqual([1, 1.25]);
    expect(await values(step)).toEqual([9, 18.75]);
    expect(await values(theta)).toEqual([9, 18.75]);
    await expect(values(other)).rejects.toThrow(/written in place/);
  });

  it('expressions over buffers not written stay valid, and views alias as in PyTorch', async () => {
    const x = vec([1, 2, 3, 4]);
    const a = vec([5, 6, 7, 8]);
    const fromA = E.mul(a, 2);
    const view = E.reshape(x, [2, 2]); // a view of x's buffer, not an expression
    expect(view.isLazy).toBe(false);
    E.assign(x, E.neg(x));
    expect(await values(fromA)).toEqual([10, 12, 14, 16]);
    expect(await values(view)).toEqual([-1, -2, -3, -4]);
  });

  it('a broadcast value is not rebased (its shape is not the destination’s) and goes stale', async () => {
    const x = vec([1, 2, 3]);
    const s = E.tensor(Float32Array.from([4]), [1]);
    const b = E.add(s, 0); // [1], broadcast into x
    E.assign(x, b);
    expect(await values(x)).toEqual([4, 4, 4]);
    expect(await values(b)).toEqual([4]); // reads s, which was not written
    const c = E.add(s, 1);
    E.assign(s, c);
    expect(await values(c)).toEqual([5]);
  });

  it('a write into one slice leaves expressions over other elements valid, not those over the slice', async () => {
    const cache = E.tensor(Float32Array.from({ length: 8 }, (_, i) => i), [2, 4]);
    const firstRow = E.mul(E.slice(cache, [[0, 1], null]), 10);
    const column = E.add(E.slice(cache, [null, [3, 4]]), 0.5); // reads both rows
    expect(firstRow.isLazy && column.isLazy).toBe(true);
    E.assign(E.slice(cache, [[1, 2], null]), -1);
    expect(await values(firstRow)).toEqual([0, 10, 20, 30]);
    await expect(values(column)).rejects.toThrow(/written in place/);
    expect(await values(cache)).toEqual([0, 1, 2, 3, -1, -1, -1, -1]);
  });

  it('past the writes whose ranges a buffer keeps (16), any later write makes an expression stale', async () => {
    const buf = E.tensor(Float32Array.from({ length: 40 }, (_, i) => i), [40]);
    const head = E.mul(E.slice(buf, [[0, 2]]), 2);
    for (let i = 20; i < 38; i++) E.assign(E.slice(buf, [[i, i + 1]]), 0);
    expect(() => E.add(head, 0)).toThrow(/written in place/);
    const head2 = E.mul(E.slice(buf, [[0, 2]]), 2);
    for (let i = 20; i < 30; i++) E.assign(E.slice(buf, [[i, i + 1]]), 0);
    expect(await values(head2)).toEqual([0, 2]);
  });
});
