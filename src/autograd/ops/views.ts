// Differentiable views: no data moves in the forward pass; each adjoint is another view
// (or, for slice and expand, a pad or a sum).
import * as raw from '../../tensor/ops.ts';
import { fmt, inferReshape, normalizeAxes, sameShape } from '../../tensor/shape.ts';
import { Tensor } from '../../tensor/tensor.ts';
import { record } from '../graph.ts';
import { sumTo } from './reduce.ts';

export function reshape(a: Tensor, shape: readonly number[]): Tensor {
  const to = inferReshape(a.shape, shape);
  if (sameShape(to, a.shape)) return a;
  return record(raw.reshape(a, to), 'reshape', [a], (g) => [reshape(g, a.shape)]);
}

export function permute(a: Tensor, perm: readonly number[]): Tensor {
  const p = perm.map((x) => (x < 0 ? x + a.rank : x));
  const inv = p.map((_, i) => p.indexOf(i));
  return record(raw.permuteView(a, p), 'permute', [a], (g) => [permute(g, inv)]);
}

/** Swaps two axes (default: the last two). */
export function transpose(a: Tensor, d0 = -2, d1 = -1): Tensor {
  const [x, y] = [d0, d1].map((d) => normalizeAxes('transpose', d, a.rank)[0]);
  const perm = a.shape.map((_, i) => (i === x ? y : i === y ? x : i));
  return permute(a, perm);
}

export function expand(a: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(a.shape, shape)) return a;
  return record(raw.expandView(a, shape), 'expand', [a], (g) => [sumTo(g, a.shape)]);
}

/**
 * Basic slicing: `ranges[i]` is [start, end) for axis i (negative values count from the end,
 * missing axes are kept whole).
 */
export function slice(a: Tensor, ranges: readonly (readonly [number, number] | null)[]): Tensor {
  const starts: number[] = [];
  const ends: number[] = [];
  a.shape.forEach((d, i) => {
    const r = ranges[i] ?? [0, d];
    const norm = (v: number) => (v < 0 ? v + d : v);
    starts.push(norm(r[0]));
    ends.push(Math.min(d, norm(r[1])));
  });
  return record(raw.sliceView(a, starts, ends), 'slice', [a], (g) => [pad(g, a.shape, starts)]);
}

/** Places `a` at `starts` inside zeros of `shape` (slice's adjoint). */
export function pad(a: Tensor, shape: readonly number[], starts: readonly number[]): Tensor {
  if (a.rank !== shape.length) throw new Error(`pad: ${fmt(a.shape)} and ${fmt(shape)} differ in rank`);
  const ends = starts.map((s, i) => s + a.shape[i]);
  return record(raw.padInto(a, shape, starts), 'pad', [a], (g) => [slice(g, starts.map((s, i) => [s, ends[i]] as const))]);
}

/** A contiguous copy (kernels that need one call this; the gradient passes straight through). */
export function contiguous(a: Tensor): Tensor {
  if (a.isContiguous()) return a;
  return record(a.contiguousCopy(), 'contiguous', [a], (g) => [g]);
}

export function unsqueeze(a: Tensor, axis: number): Tensor {
  const ax = axis < 0 ? axis + a.rank + 1 : axis;
  return reshape(a, [...a.shape.slice(0, ax), 1, ...a.shape.slice(ax)]);
}

export function squeeze(a: Tensor, axis?: number): Tensor {
  const ax = axis === undefined ? null : normalizeAxes('squeeze', axis, a.rank)[0];
  return reshape(a, a.shape.filter((d, i) => !(d === 1 && (ax === null || i === ax))));
}

/** A new leaf with `a`'s values, cut off from its graph (no copy). */
export function detach(a: Tensor): Tensor {
  if (a.isLazy) return Tensor.lazy(a.expr(), a.shape, a.dtype);
  const { storage, offset, strides } = a.layout();
  return Tensor.view(storage, a.shape, strides, offset);
}
