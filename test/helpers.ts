// Test plumbing: run the same function on the GPU engine and on the float64 CPU reference.
import * as E from '../src/index.ts';
import * as R from '../src/reference/ndarray.ts';
import { NDArray } from '../src/reference/ndarray.ts';

export type T = E.Tensor;

/** The ops both backends share, with the same names and argument conventions. */
export const gpu = E as unknown as Backend<T>;
export const ref = R as unknown as Backend<NDArray>;

export interface Backend<X> {
  add(a: X | number, b: X | number): X;
  sub(a: X | number, b: X | number): X;
  mul(a: X | number, b: X | number): X;
  div(a: X | number, b: X | number): X;
  pow(a: X | number, b: X | number): X;
  maximum(a: X | number, b: X | number): X;
  minimum(a: X | number, b: X | number): X;
  where(c: X, a: X | number, b: X | number): X;
  gt(a: X | number, b: X | number): X;
  lt(a: X | number, b: X | number): X;
  eq(a: X | number, b: X | number): X;
  neg(a: X): X;
  exp(a: X): X;
  expm1(a: X): X;
  log(a: X): X;
  sqrt(a: X): X;
  rsqrt(a: X): X;
  tanh(a: X): X;
  abs(a: X): X;
  sin(a: X): X;
  cos(a: X): X;
  sigmoid(a: X): X;
  relu(a: X): X;
  square(a: X): X;
  sum(a: X, axes?: number | number[], keepdims?: boolean): X;
  mean(a: X, axes?: number | number[], keepdims?: boolean): X;
  max(a: X, axes?: number | number[], keepdims?: boolean): X;
  min(a: X, axes?: number | number[], keepdims?: boolean): X;
  logsumexp(a: X, axes?: number | number[], keepdims?: boolean): X;
  softmax(a: X, axis?: number): X;
  logSoftmax(a: X, axis?: number): X;
  matmul(a: X, b: X): X;
  reshape(a: X, shape: number[]): X;
  permute(a: X, perm: number[]): X;
  transpose(a: X, d0?: number, d1?: number): X;
  expand(a: X, shape: number[]): X;
  slice(a: X, ranges: ([number, number] | null)[]): X;
  concat(parts: X[], axis?: number): X;
}

/** Deterministic pseudo-random values (mulberry32) for test inputs. */
export function values(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  let s = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

export function randomArray(shape: number[], seed: number, lo = -1, hi = 1): NDArray {
  return new NDArray(Float64Array.from(values(R.size(shape), seed, lo, hi), (x) => Math.fround(x)), shape);
}

export const toGpu = (a: NDArray): T => E.tensor(Float32Array.from(a.data), [...a.shape]);

export async function toRef(t: T): Promise<NDArray> {
  return new NDArray(Float64Array.from(await t.toArray()), [...t.shape]);
}

/** max |a - b| / (atol + rtol·|b|) ≤ 1, with a readable failure. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, what = ''): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length} vs ${expected.length}`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < actual.length; i++) {
    const e = Math.abs(actual[i] - expected[i]) / (atol + rtol * Math.abs(expected[i]));
    if (!(e <= worst)) (worst = e), (at = i);
    if (Number.isNaN(actual[i]) !== Number.isNaN(expected[i])) (worst = Infinity), (at = i);
  }
  if (worst > 1) {
    throw new Error(`${what}: element ${at}: got ${actual[at]}, expected ${expected[at]} (error ${worst.toFixed(2)}× the tolerance rtol=${rtol}, atol=${atol})`);
  }
}

/** Central finite-difference gradient of a scalar float64 function. */
export function fdGrad(f: (x: NDArray[]) => number, xs: NDArray[], h = 1e-6): Float64Array[] {
  return xs.map((x, k) => {
    const g = new Float64Array(x.data.length);
    for (let i = 0; i < g.length; i++) {
      const orig = x.data[i];
      x.data[i] = orig + h;
      const fp = f(xs);
      x.data[i] = orig - h;
      const fm = f(xs);
      x.data[i] = orig;
      g[i] = (fp - fm) / (2 * h);
    }
    void k;
    return g;
  });
}

/** Hessian-vector product by central differences of the finite-difference gradient. */
export function fdHvp(f: (x: NDArray[]) => number, xs: NDArray[], v: NDArray[], h = 1e-4): Float64Array[] {
  const shifted = (s: number) => xs.map((x, k) => new NDArray(x.data.map((xi, i) => xi + s * h * v[k].data[i]), x.shape));
  const gp = fdGrad(f, shifted(1), 1e-5);
  const gm = fdGrad(f, shifted(-1), 1e-5);
  return gp.map((g, k) => g.map((gi, i) => (gi - gm[k][i]) / (2 * h)));
}

export const scalarOf = (a: NDArray): number => a.data[0];

/**
 * Tensors dropped without dispose() give their buffers back through a FinalizationRegistry,
 * whenever the garbage collector gets to them — possibly during any later await. Tests that
 * count live buffers across an await first collect that garbage and let the finalizers run, so
 * an earlier test's leftovers cannot be freed in the middle of the count. (vitest starts the
 * workers with --expose-gc; without it this only yields.)
 */
export async function settleGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 2; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 0)); // finalizer callbacks run as tasks
  }
}
