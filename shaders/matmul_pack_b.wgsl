// Packs the right operand B of a batched matmul into the rgba32float texture that matmul_tex.wgsl
// reads (see that file for why operands go through textures on lavapipe).
//
// Layout: one texel = 4 consecutive columns of one k row. Columns are grouped in panels of 64 (the
// columns one subgroup of matmul_tex computes: 8 lanes × 2 texels); inside a panel the texels run
// [k][16], so a panel is one sequential stream and the 8 lanes fetch adjacent texels. Texel
//   t = batch * P(7) + panel * (Kp * 16) + k * 16 + j,   at (t & 8191, t >> 13),
// with Kp = K rounded up to a multiple of 4. Columns ≥ N and k ≥ K are zeros. (A row-major B,
// which a plain copy could make, measured 20–40 % slower in the matmul loop.)
// B is read through its strides (either may be 1: Bᵀ operands arrive as strides; the batch stride
// may be 0). load4 is a strided gather or, for contiguous 16-byte-aligned rows with N % 4 == 0, one
// vec4 load. Each invocation writes 4 texels: k = 4·(x / 16) + m (m < 4), j = x % 16, to the
// texture or to a storage buffer copied into it afterwards (the DST and STORE placeholders: see
// matmul_pack_a.wgsl for why).
// x: see above, y: panel, z: batch within this chunk.
// P: 0 N, 1 K, 2 Kp, 3 bOff, 4 bBatch, 5 bRow, 6 bCol, 7 texels per batch
{{PARAMS}}
@group(0) @binding(1) var<storage, read> src: array<{{ELEM}}>;
{{DST}}

// B[k, i0 .. i0 + 3] with zeros past N (= n); `base` is the row's first element, `cs` the column stride.
fn load4(base: u32, cs: u32, i0: u32, n: u32) -> vec4<f32> {
{{LOAD4}}
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let N = P(0u);
  let K = P(1u);
  let Kp = P(2u);
  let k0 = (g.x >> 4u) * 4u;
  if (k0 >= Kp) { return; }
  let n0 = g.y * 64u + (g.x & 15u) * 4u;
  let cs = P(6u);
  var t = g.z * P(7u) + (g.y * Kp + k0) * 16u + (g.x & 15u);
  for (var m = 0u; m < 4u; m++) {
    let k = k0 + m;
    var v = vec4<f32>(0.0);
    if (k < K && n0 < N) { v = load4(P(3u) + g.z * P(4u) + k * P(5u), cs, n0, N); }
    {{STORE}}
    t += 16u;
  }
}
