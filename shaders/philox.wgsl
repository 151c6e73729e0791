// Counter-based random numbers: Philox 4x32-10 (Salmon et al., SC'11). Element i of a draw uses
// the 64-bit counter counterBase + i / 4 (as (low, high, 0, 0)) and key (seedLo, seedHi); lane i % 4 of the block.
// Integer-exact, so every adapter (and src/tensor/reference/philox.ts) gives the same bits.
// P: 0 count, 1 seedLo, 2 seedHi, 3 counter base (low word), 4 kind (0 uniform, 1 normal, 2 bernoulli), 5 a (f32), 6 b (f32),
//    7 index of out[0] in the whole draw (outputs larger than one binding are filled in windows),
//    8 counter base (high word)
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

{{PHILOX}}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let local = gid.x + gid.y * nwg.x * 64u;
  if (local >= P(0u)) { return; }
  let i = local + P(7u);
  let kind = P(4u);
  let a = PF(5u);
  let b = PF(6u);
  let key = vec2<u32>(P(1u), P(2u));
  if (kind == 1u) {
    // Box–Muller: element i uses the pair of lanes (2·(i%2), 2·(i%2)+1) of block i/2.
    let r = philox(ctr64(P(3u), P(8u), i / 2u), key);
    let pair = select(vec2<u32>(r.x, r.y), vec2<u32>(r.z, r.w), (i & 1u) == 1u);
    let u1 = 1.0 - unit(pair.x); // (0, 1]: log is finite
    let u2 = unit(pair.y);
    out[local] = a + b * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    return;
  }
  let r = philox(ctr64(P(3u), P(8u), i / 4u), key);
  let lane = i & 3u;
  let bits = select(select(select(r.w, r.z, lane == 2u), r.y, lane == 1u), r.x, lane == 0u);
  let u = unit(bits);
  if (kind == 2u) { out[local] = select(0.0, 1.0, u < a); return; }
  out[local] = a + (b - a) * u;
}
