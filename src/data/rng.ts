// A small seeded PRNG for data order. Math.random cannot be seeded, and the loader must give
// the same batches for the same seed on every machine, so everything here is 32-bit integer
// arithmetic (Math.imul, >>> 0) with no floating point in the draws that pick data.

/** murmur3's 32-bit finaliser: a cheap, well-mixed bijection on uint32. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash a list of integers (each taken as a safe integer, split into two 32-bit halves) to uint32. */
export function hashInts(...xs: number[]): number {
  let h = 0x9e3779b9;
  for (const x of xs) {
    if (!Number.isSafeInteger(x)) throw new RangeError(`hashInts: ${x} is not a safe integer`);
    const lo = x >>> 0;
    const hi = Math.floor(x / 0x1_0000_0000) >>> 0;
    h = fmix32((h ^ lo) + 0x7f4a7c15);
    h = fmix32((h ^ hi) + 0x7f4a7c15);
  }
  return h;
}

/**
 * xoshiro128** (Blackman & Vigna): 128-bit state, period 2^128 − 1, fast in JS.
 * Seeded through splitmix32-style hashing so nearby seeds give unrelated streams.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** `keys` select an independent stream, e.g. new Rng(seed, epoch) or new Rng(seed, step, row). */
  constructor(...keys: number[]) {
    const h = hashInts(...keys);
    this.s0 = fmix32(h + 0x243f6a88);
    this.s1 = fmix32(h + 0x85a308d3);
    this.s2 = fmix32(h + 0x13198a2e);
    this.s3 = fmix32(h + 0x03707344);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** Next uniform uint32. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform integer in [0, n), exact (rejection sampling, no modulo bias); n ≤ 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x1_0000_0000) throw new RangeError(`Rng.int: bad range ${n}`);
    // Reject the top sliver of [0, 2^32) that does not divide evenly by n.
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Uniform float in [0, 1) with 32 random bits (for non-critical uses such as tests). */
  float(): number {
    return this.nextU32() / 0x1_0000_0000;
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T extends { length: number; [i: number]: number }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
