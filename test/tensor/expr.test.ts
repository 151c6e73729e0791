// The expression compiler's row hoisting: values that do not change along the last axis are
// computed in rowValues(c), once per row, and must stay right where rows end inside one
// invocation's four elements (row lengths 2, 3, 5, 9 below) and under in-place updates.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import { compileExpr, exprStorages as exprStoragesOf, type Expr } from '../../src/tensor/expr.ts';
import type { Storage } from '../../src/tensor/storage.ts';
import * as raw from '../../src/tensor/ops.ts';
import { ctx } from '../../src/gpu/device.ts';
import { expectClose } from '../helpers.ts';

beforeAll(async () => {
  await E.init();
});

// The compiler reads only a storage's id and dtype.
const storages = new Map<number, Storage>();
const fakeStorage = (id: number) => storages.get(id) ?? storages.set(id, { id, dtype: 'f32' } as unknown as Storage).get(id)!;
const leaf = (id: number, strides: number[]): Expr => ({ k: 'leaf', storage: fakeStorage(id), offset: 0, strides });

describe('row hoisting in the expression compiler', () => {
  it('hoists per-row and scalar values, never per-element ones or a destination read in place', () => {
    // x [4, 6] per element, b [4, 1] per row, s [] scalar: (x − b)·exp(s·b), then in place into x.
    const x = leaf(1, [6, 1]);
    const b = leaf(2, [1, 0]);
    const s = leaf(3, [0, 0]);
    // (x − b)·exp(s·b)·(2 + 3): the last factor is constants alone (a causal mask's offset is).
    const constants: Expr = { k: 'bin', op: 'add', a: { k: 'const', value: 2 }, b: { k: 'const', value: 3 } };
    const e: Expr = {
      k: 'bin',
      op: 'mul',
      a: { k: 'bin', op: 'mul', a: { k: 'bin', op: 'sub', a: x, b }, b: { k: 'un', op: 'exp', a: { k: 'bin', op: 'mul', a: s, b } } },
      b: constants,
    };
    const { code } = compileExpr(e, [4, 6], 2, 2, undefined, { hoist: true });
    const rowValues = code.slice(code.indexOf('fn rowValues'), code.indexOf('fn exprAt'));
    const exprAt = code.slice(code.indexOf('fn exprAt'));
    expect(rowValues).toMatch(/exp\(/); // exp(s·b) is a per-row value
    expect(rowValues).not.toMatch(/flat/);
    expect(exprAt).not.toMatch(/exp\(/);
    expect(code).toMatch(/ROW_VALUES_PER_ROW = true/);
    // The same expression written into x (its storage aliased as `out`): x is read per element.
    const inPlace = compileExpr(e, [4, 6], 2, 2, fakeStorage(1), { hoist: true }).code;
    expect(inPlace.slice(inPlace.indexOf('fn exprAt'))).toMatch(/out\[/);
    // Without the option (the reduction kernels, which never call rowValues) nothing is hoisted,
    // not even a value computed from constants alone.
    const plain = compileExpr(e, [4, 6], 2, 2).code;
    expect(plain.slice(plain.indexOf('fn rowValues'), plain.indexOf('const ROW_VALUES'))).not.toMatch(/h\d+ =/);
    expect(plain.slice(plain.indexOf('fn exprAt'))).toMatch(/exp\(/);
  });

  it('computes the same values as the CPU where rows end inside an invocation', async () => {
    for (const shape of [[7, 5], [3, 2, 3], [5, 2], [2, 9], [1, 13]]) {
      const n = shape.reduce((a, d) => a * d, 1);
      const rowShape = [...shape.slice(0, -1), 1];
      const rows = n / shape[shape.length - 1];
      const xs = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 2);
      const bs = Float32Array.from({ length: rows }, (_, i) => Math.cos(i * 3) + 0.5);
      const x = E.tensor(xs, shape);
      const b = E.tensor(bs, rowShape);
      // (x − b)·exp(0.5·b) + row index along axis 0 (a coordinate read in rowValues).
      const y = E.add(E.mul(E.sub(x, b), E.exp(E.mul(b, 0.5))), raw.indexAlong(shape, 0));
      const got = await y.toArray();
      const last = shape[shape.length - 1];
      const inner = n / shape[0];
      const want = Array.from(xs, (v, i) => {
        const r = Math.floor(i / last);
        return (v - bs[r]) * Math.exp(0.5 * bs[r]) + Math.floor(i / inner);
      });
      expectClose(got, want, 1e-6, 1e-6, `shape ${shape}`);
      // In place: x ← x·b + b (x is the destination and an input).
      E.assign(x, E.add(E.mul(x, b), b));
      expectClose(await x.toArray(), Array.from(xs, (v, i) => v * bs[Math.floor(i / last)] + bs[Math.floor(i / last)]), 1e-6, 1e-6, `in place ${shape}`);
    }
  });
});

describe('fusion within the binding limit', () => {
  it('operands reading too many buffers together are realised first; the result is exact', async () => {
    // Sums of 6 distinct buffers each (the most one lazy expression keeps): where(c, a, b) would
    // read 18, over what one kernel may bind on an adapter with 16 storage bindings (or 8).
    // Each input is i + k·0.125 at element i, so every sum is known exactly.
    const n = 37;
    const width = 6;
    const inputs = (k0: number) => Array.from({ length: width }, (_, k) => E.tensor(Float32Array.from({ length: n }, (_, i) => i + (k0 + k) * 0.125), [n]));
    const sumOf = (ts: E.Tensor[]) => ts.reduce((acc, t) => raw.binary('add', acc, t));
    const [xs, ys, cs] = [inputs(0), inputs(width), inputs(2 * width)];
    const reads = (t: E.Tensor) => (t.isLazy ? exprStoragesOf(t.expr()).size : 1);
    const max = ctx().limits.maxStorageBuffersPerShaderStage;
    const a = sumOf(xs);
    const b = sumOf(ys);
    const c = raw.binary('gt', sumOf(cs), raw.scalar(width * 30));
    const lazyBefore = [a, b, c].filter((t) => t.isLazy).length;
    const pick = raw.where(c, a, b);
    if (3 * Math.min(width, max - 4) > max - 4) expect([a, b, c].filter((t) => t.isLazy).length).toBeLessThan(lazyBefore);
    expect(reads(pick)).toBeLessThanOrEqual(max - 4);
    const prod = raw.binary('mul', a, b);
    expect(reads(prod)).toBeLessThanOrEqual(max - 4);
    const sum = (k0: number) => (i: number) => width * i + 0.125 * (width * k0 + (width * (width - 1)) / 2);
    const [sA, sB, sC] = [sum(0), sum(width), sum(2 * width)];
    expectClose(await prod.toArray(), Array.from({ length: n }, (_, i) => sA(i) * sB(i)), 1e-6, 0, 'a·b');
    expectClose(await pick.toArray(), Array.from({ length: n }, (_, i) => (sC(i) > width * 30 ? sA(i) : sB(i))), 0, 0, 'where');
    [...xs, ...ys, ...cs, a, b, c, prod, pick].forEach((t) => t.dispose());
  });
});
