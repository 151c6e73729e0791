// Differentiable elementwise ops. Forward: a lazy expression (fused later). Backward: more
// elementwise ops, so second derivatives come for free.
import * as raw from '../../tensor/ops.ts';
import type { DType } from '../../tensor/storage.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { record } from '../graph.ts';
import { sumTo } from './reduce.ts';

export type Operand = Tensor | number;
const lift = (x: Operand): Tensor => (typeof x === 'number' ? raw.scalar(x) : x);

// Each binary backward reduces the broadcast gradient back to its input's shape.
function binaryOp(
  op: Parameters<typeof raw.binary>[0],
  a: Operand,
  b: Operand,
  back: (g: Tensor, A: Tensor, B: Tensor, out: Tensor) => [() => Tensor, () => Tensor],
): Tensor {
  const A = lift(a);
  const B = lift(b);
  const out = raw.binary(op, A, B);
  return record(out, op, [A, B], (g, needs) => {
    const [ga, gb] = back(g, A, B, out);
    return [needs[0] ? gradFor(A, ga()) : null, needs[1] ? gradFor(B, gb()) : null];
  });
}

/**
 * An input's gradient: the broadcast summed away, and in the input's own dtype (an f16 input of
 * a mixed-dtype op, e.g. f32 residual + f16 branch, gets an f16 gradient, as in PyTorch).
 */
export function gradFor(input: Tensor, g: Tensor): Tensor {
  const s = sumTo(g, input.shape);
  return s.dtype === input.dtype ? s : cast(s, input.dtype);
}

function unaryOp(op: Parameters<typeof raw.unary>[0], a: Tensor, back: (g: Tensor, a: Tensor, out: Tensor) => Tensor | null): Tensor {
  const out = raw.unary(op, a);
  return record(out, op, [a], (g) => [back(g, a, out)]);
}

export const add = (a: Operand, b: Operand): Tensor => binaryOp('add', a, b, (g) => [() => g, () => g]);
export const sub = (a: Operand, b: Operand): Tensor => binaryOp('sub', a, b, (g) => [() => g, () => neg(g)]);
export const mul = (a: Operand, b: Operand): Tensor => binaryOp('mul', a, b, (g, A, B) => [() => mul(g, B), () => mul(g, A)]);
export const div = (a: Operand, b: Operand): Tensor =>
  binaryOp('div', a, b, (g, A, B) => [() => div(g, B), () => neg(div(mul(g, A), mul(B, B)))]);

/** a ** b. d/da = b·a^(b−1); d/db = a^b·log a (0 where a = 0, as in PyTorch). */
export const pow = (a: Operand, b: Operand): Tensor =>
  binaryOp('pow', a, b, (g, A, B, out) => [
    () => mul(g, mul(B, pow(A, sub(B, 1)))),
    () => mul(g, where(eq(A, 0), 0, mul(out, log(A)))),
  ]);

/** Ties split the gradient evenly, like torch.maximum. */
export const maximum = (a: Operand, b: Operand): Tensor =>
  binaryOp('max', a, b, (g, A, B) => {
    const share = add(gt(A, B), mul(eq(A, B), 0.5));
    return [() => mul(g, share), () => mul(g, sub(1, share))];
  });
export const minimum = (a: Operand, b: Operand): Tensor =>
  binaryOp('min', a, b, (g, A, B) => {
    const share = add(lt(A, B), mul(eq(A, B), 0.5));
    return [() => mul(g, share), () => mul(g, sub(1, share))];
  });

export const neg = (a: Tensor): Tensor => unaryOp('neg', a, (g) => neg(g));
export const exp = (a: Tensor): Tensor => unaryOp('exp', a, (g, _a, out) => mul(g, out));
export const log = (a: Tensor): Tensor => unaryOp('log', a, (g, x) => div(g, x));
/** eˣ − 1, accurate near 0 (like torch.expm1). d/dx = eˣ = out + 1. */
export const expm1 = (a: Tensor): Tensor => unaryOp('expm1', a, (g, _a, out) => mul(g, add(out, 1)));
export const sqrt = (a: Tensor): Tensor => unaryOp('sqrt', a, (g, _a, out) => div(mul(g, 0.5), out));
export const rsqrt = (a: Tensor): Tensor => unaryOp('rsqrt', a, (g, x, out) => mul(g, mul(-0.5, div(out, x))));
export const tanh = (a: Tensor): Tensor => unaryOp('tanh', a, (g, _a, out) => mul(g, sub(1, mul(out, out))));
export const abs = (a: Tensor): Tensor => unaryOp('abs', a, (g, x) => mul(g, sign(x)));
export const sin = (a: Tensor): Tensor => unaryOp('sin', a, (g, x) => mul(g, cos(x)));
export const cos = (a: Tensor): Tensor => unaryOp('cos', a, (g, x) => neg(mul(g, sin(x))));
/** Piecewise constant: zero gradient almost everywhere, so none is propagated. */
export const sign = (a: Tensor): Tensor => raw.unary('sign', a);
export const square = (a: Tensor): Tensor => mul(a, a);
export const relu = (a: Tensor): Tensor => where(gt(a, 0), a, 0);
export const sigmoid = (a: Tensor): Tensor => div(1, add(1, exp(neg(a))));

export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const A = lift(a);
  const B = lift(b);
  const out = raw.where(cond, A, B);
  return record(out, 'where', [A, B], (g, needs) => [
    needs[0] ? gradFor(A, where(cond, g, 0)) : null,
    needs[1] ? gradFor(B, where(cond, 0, g)) : null,
  ]);
}

/** 1 where x is finite, 0 for NaN and ±inf (no gradient). */
export const isFinite = (a: Tensor): Tensor => raw.unary('isfinite', a);

// Comparisons return 0/1 masks and carry no gradient.
const compare = (op: 'lt' | 'le' | 'gt' | 'ge' | 'eq' | 'ne') => (a: Operand, b: Operand) => raw.binary(op, lift(a), lift(b));
export const lt = compare('lt');
export const le = compare('le');
export const gt = compare('gt');
export const ge = compare('ge');
export const eq = compare('eq');
export const ne = compare('ne');

/**
 * Converts between f32, f16 and i32 (to f16: round to nearest even, ±inf past 65504; to i32:
 * truncation; i32 → float is exact below 2^24 (f32) or 2^11 (f16)). Between floats the gradient
 * flows back cast to the input's dtype, so f32 master weights get f32 gradients.
 */
export function cast(a: Tensor, dtype: DType): Tensor {
  const out = raw.cast(a, dtype);
  if (out === a || dtype === 'i32' || a.dtype === 'i32') return out;
  return record(out, 'cast', [a], (g) => [cast(g, a.dtype)]);
}
