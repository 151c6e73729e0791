// Packs the left operand A of a batched matmul into the rgba32float texture that matmul_tex.wgsl
// reads (see that file for why operands go through textures on lavapipe).
//
// Layout: one texel = 4 consecutive k of one row. Rows are grouped in tiles of {{R}} (the rows one
// subgroup of matmul_tex computes); inside a tile the texels run [k4][row], so the 8 lanes of the
// matmul kernel fetch 8 adjacent texels and one tile is a single sequential stream. Texel
//   t = batch * P(7) + rowTile * (K4 * {{R}}) + k4 * {{R}} + r,   at (t & 8191, t >> 13).
// Rows ≥ M and k ≥ K are zeros, so the matmul loop needs no bounds checks. (A plain row-major copy
// of A, which copyBufferToTexture could make, measured 15–20 % slower in the matmul loop: 32 rows
// K·4 bytes apart per fetch instead of one stream.)
// A is read through its strides (either may be 1: Aᵀ operands arrive as strides; the batch stride
// may be 0). load4 is either a strided gather or, when rows are contiguous and 16-byte aligned with
// K % 4 == 0, one vec4 load (matmul.ts picks the variant). Each invocation writes 4 texels (k4 =
// 4·(x / {{R}}) + j, j < 4, row r = x % {{R}}), amortising per-invocation overhead.
// The destination (the DST and STORE placeholders) is either the texture itself (textureStore) or a storage
// buffer of texels in the same order that matmul.ts then copies into the texture: on lavapipe a
// textureStore costs more than the buffer store and the copy together (packing a [512, 50257]
// operand: 125 ms vs 45 + 15 ms), so the buffer is used wherever it fits one binding.
// x: see above, y: row tile, z: batch within this chunk.
// P: 0 M, 1 K, 2 K4, 3 aOff, 4 aBatch, 5 aRow, 6 aCol, 7 texels per batch
{{PARAMS}}
@group(0) @binding(1) var<storage, read> src: array<{{ELEM}}>;
{{DST}}

// A[row, i0 .. i0 + 3] with zeros past K (= n); `base` is the row's first element, `cs` the k stride.
fn load4(base: u32, cs: u32, i0: u32, n: u32) -> vec4<f32> {
{{LOAD4}}
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let M = P(0u);
  let K = P(1u);
  let K4 = P(2u);
  let r = g.x % {{R}}u;
  let k4 = (g.x / {{R}}u) * 4u;
  if (k4 >= K4) { return; }
  let row = g.y * {{R}}u + r;
  let base = P(3u) + g.z * P(4u) + min(row, M - 1u) * P(5u);
  let cs = P(6u);
  var t = g.z * P(7u) + (g.y * K4 + k4) * {{R}}u + r;
  for (var j = 0u; j < 4u; j++) {
    if (k4 + j < K4) {
      var v = vec4<f32>(0.0);
      if (row < M) { v = load4(base, cs, (k4 + j) * 4u, K); }
      {{STORE}}
    }
    t += {{R}}u;
  }
}
