// IEEE 754 binary16 encoding on the host, for uploading f16 tensors and reading them back.
// Encoding goes through f32 first (as PyTorch's c10::Half(float) does), then rounds to nearest,
// ties to even; magnitudes that round past 65504 become ±inf, NaN stays NaN.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bit pattern nearest to `x`. */
export function halfBits(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf, NaN (quiet)
  const e = exp - 127 + 15; // rebiased exponent
  if (e >= 31) return sign | 0x7c00; // past the largest binade: inf
  if (e <= 0) {
    // Subnormal (or zero) in f16: shift the implicit-1 mantissa right, rounding to nearest even.
    if (e < -10) return sign; // below half the smallest subnormal: ±0
    const m = mant | 0x800000;
    const shift = 14 - e; // 24-bit significand → 10-bit subnormal field
    const q = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    return sign | (q + (rem > half || (rem === half && q & 1) ? 1 : 0));
  }
  // Normal: keep 10 of 23 mantissa bits; a carry out of the mantissa bumps the exponent (to inf at the top).
  const q = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  return sign | (q + (rem > 0x1000 || (rem === 0x1000 && q & 1) ? 1 : 0));
}

/** The value of a binary16 bit pattern. */
export function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Halves packed for upload: an even count, so the byte length is a multiple of 4 (writeBuffer's rule). */
export function encodeHalves(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length + (values.length & 1));
  for (let i = 0; i < values.length; i++) out[i] = halfBits(values[i]);
  return out;
}

export function decodeHalves(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfValue(bits[i]);
  return out;
}
