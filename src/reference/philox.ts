// Philox 4x32-10 on the CPU, bit-identical to shaders/philox.wgsl: the reference for random ops.

function mulhilo(a: number, b: number): [number, number] {
  const p = BigInt(a >>> 0) * BigInt(b >>> 0);
  return [Number(p >> 32n) >>> 0, Number(p & 0xffffffffn) >>> 0];
}

export function philox(counter: [number, number, number, number], key: [number, number]): [number, number, number, number] {
  let [c0, c1, c2, c3] = counter.map((x) => x >>> 0);
  let [k0, k1] = key.map((x) => x >>> 0);
  for (let r = 0; r < 10; r++) {
    const [hi0, lo0] = mulhilo(0xd2511f53, c0);
    const [hi1, lo1] = mulhilo(0xcd9e8d57, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + 0x9e3779b9) >>> 0;
    k1 = (k1 + 0xbb67ae85) >>> 0;
  }
  return [c0, c1, c2, c3];
}

/** Block `off` after the 64-bit counter `base` (an integer below 2⁵³), as the shaders' ctr64. */
export function counter64(base: number, off: number): [number, number, number, number] {
  const c = base + off;
  return [c >>> 0, Math.floor(c / 2 ** 32) >>> 0, 0, 0];
}

const unit = (x: number) => (x >>> 8) * (1 / 16777216);
const keyOf = (seed: number): [number, number] => [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0];

/** The same numbers as the GPU's uniform draw of `n` values at (seed, counter). */
export function uniform(n: number, seed: number, counter: number, low = 0, high = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = philox(counter64(counter, Math.floor(i / 4)), keyOf(seed));
    out[i] = low + (high - low) * unit(r[i & 3]);
  }
  return out;
}

/** Box–Muller on the same bits as the GPU (equal up to transcendental rounding, ~1e-6). */
export function normal(n: number, seed: number, counter: number, mean = 0, std = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = philox(counter64(counter, Math.floor(i / 2)), keyOf(seed));
    const [a, b] = i & 1 ? [r[2], r[3]] : [r[0], r[1]];
    const u1 = 1 - unit(a);
    const u2 = unit(b);
    out[i] = mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  return out;
}
