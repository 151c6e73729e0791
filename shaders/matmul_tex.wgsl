// Batched matmul C[b] = A[b] · B[b] for lavapipe (Mesa's CPU Vulkan driver), from operands packed
// into rgba32float textures by matmul_pack_a.wgsl / matmul_pack_b.wgsl. C is contiguous
// [batch, M, N] (P(5) is where this dispatch's first matrix starts).
//
// Why this shape (measured with Mesa 25.0.7 / LLVM 15 on a 2-core AMD EPYC):
// - lavapipe runs one invocation per SIMD lane, 8 lanes per subgroup. Every storage-buffer load
//   whose offset is not a compile-time constant becomes a per-lane loop of scalar loads, each with
//   an exec-mask test and a bounds-check branch: ≈ 10 instructions per float, vec4 or not.
// - A textureLoad of an rgba32float texel is one call into the driver's texel-fetch function, which
//   gathers the 8 lanes' 16-byte texels with plain vector loads and transposes them: ≈ 100
//   instructions for 32 floats, about 3× cheaper per float. So both operands are read as texels.
// - fma() compiles to vmulps + vaddps, and a value carried around a loop also gets a blend with the
//   loop mask, so the inner work per (row, column-vec4, k) is ≈ 2 instructions plus per-iteration
//   accumulator traffic. What is left to minimise is fetches and shuffles per FMA.
// - One subgroup (= the whole workgroup, 8 lanes) computes a {{R}} × 64 tile of C. Lane l owns
//   columns 4l..4l+3 and 32+4l..32+4l+3 of the tile (2 vec4 accumulators per row) for all {{R}} rows:
//   {{R}} × 2 vec4 accumulators per lane. Per 4-step of k a lane fetches 8 B texels
//   (4 k × 2 column quads) and {{R}}/8 A texels (row 8i + l, 4 k values); A values are shared with
//   subgroupShuffle(value, constant lane), which compiles to a single vector permute.
// - Measured on the 2-core EPYC at 1024³ … 4096·768·3072, in GFLOP/s of worker-thread CPU time:
//   R=16×64 tiles ≈ 63, R=32×64 ≈ 75–85, bigger tiles (48×64, 32×96, 64×64) lose again once the
//   unrolled loop body outgrows the CPU's micro-op cache; kk = 8 k per iteration was slower too.
// - The operands are packed in tile order (A: [row tile][k4][32 rows], B: [64-column panel][k][16
//   quads], see matmul_pack_*.wgsl), so each subgroup streams two sequential runs of texels.
//   Row-major operands (which copyBufferToTexture could make without a packing pass) measured
//   15–40 % slower here: 32 rows or 768+ k rows a page apart per fetch defeat the caches/TLB.
// - Rows are padded with zeros to {{R}}, columns to 64 and k to 4, so the loop has no bounds checks;
//   only the final stores test row < M and col < N.
// P: 0 M, 1 N, 2 K4, 3 A texels per batch (0 = broadcast), 4 B texels per batch (0 = broadcast),
//    5 C offset of this dispatch's first matrix, 6 Kp * 16 (B texels per column panel)
enable subgroups;
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> c: array<{{C_TYPE}}>;
@group(0) @binding(2) var at: texture_2d<f32>;
@group(0) @binding(3) var bt: texture_2d<f32>;

fn texel(t: texture_2d<f32>, i: u32) -> vec4<f32> {
  return textureLoad(t, vec2<u32>(i & 8191u, i >> 13u), 0);
}

fn store4(i: u32, col: u32, N: u32, v: vec4<f32>) {
  // (C may be f16: the f32 accumulators are rounded once, here.)
  if (col + 3u < N) {
    c[i] = {{C_TYPE}}(v.x);
    c[i + 1u] = {{C_TYPE}}(v.y);
    c[i + 2u] = {{C_TYPE}}(v.z);
    c[i + 3u] = {{C_TYPE}}(v.w);
  } else {
    for (var j = 0u; j < 4u; j++) {
      if (col + j < N) { c[i + j] = {{C_TYPE}}(v[j]); }
    }
  }
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let M = P(0u);
  let N = P(1u);
  let K4 = P(2u);
  let row0 = wg.y * {{R}}u;
  let col0 = wg.x * 64u + lane * 4u;
  // Texel cursors: this lane's A texel (rows 8i + lane of the tile) and B texels (columns
  // 4·lane and 32 + 4·lane of the panel) for the current 4 k.
  var ai = wg.z * P(3u) + wg.y * K4 * {{R}}u + lane;
  var bi = wg.z * P(4u) + wg.x * P(6u) + lane;
{{ACC}}
  for (var k4 = 0u; k4 < K4; k4++) {
{{LOAD}}
{{FMA}}
    ai += {{R}}u;
    bi += 64u;
  }
  // Epilogue: a real loop over the tile's rows (below M) instead of 2·{{R}} unrolled guarded stores,
  // which made the shader take ~10× longer to compile for no measurable gain.
  var tile: array<vec4<f32>, {{R2}}>;
{{STORE}}
  var i = P(5u) + wg.z * M * N + row0 * N + col0;
  for (var r = 0u; r < min({{R}}u, M - row0); r++) {
    store4(i, col0, N, tile[2u * r]);
    store4(i + 32u, col0 + 32u, N, tile[2u * r + 1u]);
    i += N;
  }
}
