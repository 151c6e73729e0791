// Differentiable reductions. sum's adjoint is a broadcast (expand); expand's adjoint is sum.
import * as raw from '../../tensor/ops.ts';
import { normalizeAxes, numel, sameShape } from '../../tensor/shape.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { noGrad, record } from '../graph.ts';
import { add, div, eq, exp, log, mul, sub } from './elementwise.ts';
import { expand, reshape } from './views.ts';

export type Axes = number | readonly number[] | undefined;

const keptShape = (shape: readonly number[], axes: number[]) => shape.map((d, i) => (axes.includes(i) ? 1 : d));

export function sum(a: Tensor, axes?: Axes, keepdims = false): Tensor {
  const ax = normalizeAxes('sum', axes, a.rank);
  const out = raw.reduce('sum', a, ax, keepdims);
  return record(out, 'sum', [a], (g) => [expand(reshape(g, keptShape(a.shape, ax)), a.shape)]);
}

export function mean(a: Tensor, axes?: Axes, keepdims = false): Tensor {
  const ax = normalizeAxes('mean', axes, a.rank);
  const n = numel(ax.map((i) => a.shape[i]));
  return mul(sum(a, ax, keepdims), 1 / n);
}

/** Max over axes; ties share the gradient evenly (torch.amax). */
export function max(a: Tensor, axes?: Axes, keepdims = false): Tensor {
  return extreme('max', a, axes, keepdims);
}
export function min(a: Tensor, axes?: Axes, keepdims = false): Tensor {
  return extreme('min', a, axes, keepdims);
}

function extreme(op: 'max' | 'min', a: Tensor, axes: Axes, keepdims: boolean): Tensor {
  const ax = normalizeAxes(op, axes, a.rank);
  const out = raw.reduce(op, a, ax, keepdims);
  return record(out, op, [a], (g) => {
    const kept = keptShape(a.shape, ax);
    const mask = noGrad(() => eq(a, reshape(out, kept)));
    const count = noGrad(() => raw.reduce('sum', mask, ax, true));
    return [mul(expand(reshape(g, kept), a.shape), div(mask, count))];
  });
}

/**
 * log Σ exp. Over the last axis of a long row it is one fused kernel (one pass, online max);
 * otherwise composed, shifted by the (constant) max for stability. Either way the derivative is
 * g·exp(a − out), built from engine ops, so second derivatives flow through `out` itself.
 */
export function logsumexp(a: Tensor, axes?: Axes, keepdims = false): Tensor {
  const ax = normalizeAxes('logsumexp', axes, a.rank);
  if (ax.length === 1 && ax[0] === a.rank - 1 && a.shape[a.rank - 1] >= 256) {
    const kept = keptShape(a.shape, ax);
    const out: Tensor = record(raw.logsumexpLast(a), 'logsumexp', [a], (g) => [
      mul(expand(reshape(g, kept), a.shape), exp(sub(a, expand(reshape(out, kept), a.shape)))),
    ]);
    return keepdims ? reshape(out, kept) : out;
  }
  const m = noGrad(() => raw.reduce('max', a, ax, true));
  // An all -inf row would give -inf - -inf = NaN; shift such rows by 0 instead.
  const shift = noGrad(() => raw.where(raw.binary('eq', m, raw.scalar(-Infinity)), raw.scalar(0), m));
  const s = add(log(sum(exp(sub(a, shift)), ax, true)), shift);
  return keepdims ? s : reshape(s, a.shape.filter((_, i) => !ax.includes(i)));
}

/** Sums a broadcast gradient back down to `shape` (the adjoint of broadcasting). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes = g.shape.map((_, i) => i).filter((i) => i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1));
  const s = sum(g, axes, true);
  return reshape(s, shape);
}
