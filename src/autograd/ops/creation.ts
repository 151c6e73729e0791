// Creating tensors. Random draws come from a counter-based generator (Philox 4x32-10): the
// numbers depend only on (seed, draw order), on every adapter and in the CPU reference.
import * as raw from '../../tensor/ops.ts';
import type { Shape } from '../../tensor/shape.ts';
import type { DType } from '../../tensor/storage.ts';
import type { Tensor } from '../../tensor/tensor.ts';

export function tensor(data: raw.ArrayData, shape?: Shape, dtype?: DType): Tensor {
  return raw.fromArray(data, shape, dtype);
}
export const zeros = (shape: Shape): Tensor => raw.full(shape, 0);
export const ones = (shape: Shape): Tensor => raw.full(shape, 1);
export const full = (shape: Shape, value: number): Tensor => raw.full(shape, value);
export const arange = (start: number, end?: number, step = 1): Tensor => raw.arange(start, end, step);
export const scalar = (value: number): Tensor => raw.scalar(value);

/** A stream of random tensors. Each draw advances the Philox counter past the blocks it used. */
export class Generator {
  private counter = 0;
  constructor(readonly seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`Generator: seed must be a non-negative integer, got ${seed}`);
  }
  /** Saved/restored with checkpoints so a resumed run draws the same numbers. */
  get state(): { seed: number; counter: number } {
    return { seed: this.seed, counter: this.counter };
  }
  set state(s: { seed: number; counter: number }) {
    if (s.seed !== this.seed) throw new Error(`Generator: state is for seed ${s.seed}, this generator has seed ${this.seed}`);
    this.counter = s.counter;
  }
  /** Reserves the Philox blocks of a uniform draw of `n` values (for fused kernels); returns its counter. */
  reserveUniform(n: number): number {
    const c = this.counter;
    this.counter += Math.ceil(n / 4);
    return c;
  }
  private draw(shape: Shape, kind: 'uniform' | 'normal' | 'bernoulli', a: number, b: number): Tensor {
    const n = shape.reduce((x, y) => x * y, 1);
    const t = raw.random(shape, kind, this.seed, a, b, this.counter);
    this.counter += Math.ceil(n / (kind === 'normal' ? 2 : 4));
    return t;
  }
  /** Uniform on [low, high). */
  rand(shape: Shape, low = 0, high = 1): Tensor {
    return this.draw(shape, 'uniform', low, high);
  }
  /** Normal with the given mean and standard deviation (Box–Muller). */
  randn(shape: Shape, mean = 0, std = 1): Tensor {
    return this.draw(shape, 'normal', mean, std);
  }
  /** 1 with probability p, else 0. */
  bernoulli(shape: Shape, p: number): Tensor {
    if (!(p >= 0 && p <= 1)) throw new Error(`bernoulli: p must be in [0, 1], got ${p}`);
    return this.draw(shape, 'bernoulli', p, 0);
  }
  /** ±1 with equal probability (Hutchinson probes). */
  rademacher(shape: Shape): Tensor {
    const u = this.draw(shape, 'bernoulli', 0.5, 0);
    return raw.binary('sub', raw.binary('mul', u, raw.scalar(2)), raw.scalar(1));
  }
}

let defaultGenerator = new Generator(0);
export function manualSeed(seed: number): Generator {
  defaultGenerator = new Generator(seed);
  return defaultGenerator;
}
export const rand = (shape: Shape, low = 0, high = 1) => defaultGenerator.rand(shape, low, high);
export const randn = (shape: Shape, mean = 0, std = 1) => defaultGenerator.randn(shape, mean, std);
export const bernoulli = (shape: Shape, p: number) => defaultGenerator.bernoulli(shape, p);
