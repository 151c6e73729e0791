// Rounding to IEEE binary16 in float64 arithmetic: the oracle for f16 storage. Written from the
// definition (a grid of 2^-10 steps per binade, 2^-24 below 2^-14, round to nearest with ties to
// even, overflow to ±inf past 65504) rather than from bits, so it checks the engine's bit-level
// encoder (src/tensor/half.ts) and the GPU's conversions independently.
import { map, type NDArray } from './ndarray.ts';

/** The unit roundoff of f16: a rounded value is within this relative distance of the exact one. */
export const HALF_EPS = 2 ** -11;
export const HALF_MAX = 65504;

/** `x` rounded to the nearest f16 value (ties to even). */
export function roundHalf(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; // log2 can be off by one next to powers of two
  else if (2 ** (e + 1) <= a) e++;
  const step = 2 ** (Math.max(e, -14) - 10); // the f16 grid spacing around a (subnormals: 2^-24)
  const q = a / step; // exact: division by a power of two
  const f = Math.floor(q);
  const r = q - f > 0.5 || (q - f === 0.5 && f % 2 === 1) ? f + 1 : f;
  const v = r * step;
  return Math.sign(x) * (v > HALF_MAX ? Infinity : v);
}

/** Every element rounded to f16 (the reference's cast to f16 and back). */
export const toHalf = (a: NDArray): NDArray => map(a, roundHalf);
