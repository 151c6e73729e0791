// Philox 4x32-10 (Salmon et al., SC'11) and the 24-bit uniform: shared by the random kernels
// (philox.wgsl, categorical.wgsl) so both draw identical bits for identical counters.

fn mulhilo(a: u32, b: u32) -> vec2<u32> {
  // 32×32 → 64-bit product from 16-bit halves (WGSL has no u64).
  let a0 = a & 0xffffu; let a1 = a >> 16u;
  let b0 = b & 0xffffu; let b1 = b >> 16u;
  let p00 = a0 * b0; let p01 = a0 * b1; let p10 = a1 * b0; let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
  return vec2<u32>(hi, a * b);
}

fn philox(ctr_in: vec4<u32>, key_in: vec2<u32>) -> vec4<u32> {
  var ctr = ctr_in;
  var key = key_in;
  for (var r = 0u; r < 10u; r++) {
    let m0 = mulhilo(0xD2511F53u, ctr.x);
    let m1 = mulhilo(0xCD9E8D57u, ctr.z);
    ctr = vec4<u32>(m1.x ^ ctr.y ^ key.x, m1.y, m0.x ^ ctr.w ^ key.y, m0.y);
    key = key + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
  }
  return ctr;
}

// Philox block `off` after a 64-bit counter base (lo, hi): counters run past 2³² blocks (2³⁴
// numbers, a few steps of dropout on GPT-2 small) without repeating.
fn ctr64(lo: u32, hi: u32, off: u32) -> vec4<u32> {
  let c = lo + off;
  return vec4<u32>(c, hi + select(0u, 1u, c < lo), 0u, 0u);
}

// 24 random bits → a float in [0, 1), exactly representable.
fn unit(x: u32) -> f32 { return f32(x >> 8u) * (1.0 / 16777216.0); }
