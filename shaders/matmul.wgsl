// Batched matmul C[b] = A[b] · B[b] over strided A [M, K] and B [K, N] (transposes are free:
// they are just strides); C is contiguous [batch, M, N]. Each lane computes a 4×4 block.
//
// The portable kernel: no subgroups, no textures, no packing pass, and it records into the
// runtime's shared batch like every other op. matmul.ts uses it for products too small or too
// thin to pay for the packed path on lavapipe (matmul_tex.wgsl) or to fill the tiled kernel's
// tiles on a GPU (matmul_tiled.wgsl). On lavapipe every load here is a per-lane scalar load with a bounds check
// (≈ 10 instructions), 8 loads per 16 FMAs, hence its ≈ 5 GFLOP/s; on a GPU it is a reasonable
// register-tiled kernel. Edge rows/columns are clamped so no load goes out of bounds.
// P: 0 M, 1 N, 2 K, 3 aOff, 4 aBatch, 5 aRow, 6 aCol, 7 bOff, 8 bBatch, 9 bRow, 10 bCol, 11 cOff
{{PARAMS}}
// Operands and C may be f16 (storage only): loads convert to f32, the sums stay f32, C is rounded once.
@group(0) @binding(1) var<storage, read_write> c: array<{{C_TYPE}}>;
@group(0) @binding(2) var<storage, read> a: array<{{A_TYPE}}>;
@group(0) @binding(3) var<storage, read> b: array<{{B_TYPE}}>;

fn store(row: u32, col0: u32, M: u32, N: u32, base: u32, v: vec4<f32>) {
  if (row >= M) { return; }
  for (var j = 0u; j < 4u; j++) {
    if (col0 + j < N) { c[base + row * N + col0 + j] = {{C_TYPE}}(v[j]); }
  }
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let M = P(0u);
  let N = P(1u);
  let K = P(2u);
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= M || col0 >= N) { return; }
  let batch = gid.z;
  let aBase = P(3u) + batch * P(4u);
  let bBase = P(7u) + batch * P(8u);
  let aRow = P(5u);
  let aCol = P(6u);
  let bRow = P(9u);
  let bCol = P(10u);
  // Clamp edge rows/columns (their results are discarded) so no load goes out of bounds.
  let a0 = aBase + min(row0, M - 1u) * aRow;
  let a1 = aBase + min(row0 + 1u, M - 1u) * aRow;
  let a2 = aBase + min(row0 + 2u, M - 1u) * aRow;
  let a3 = aBase + min(row0 + 3u, M - 1u) * aRow;
  let b0 = bBase + min(col0, N - 1u) * bCol;
  let b1 = bBase + min(col0 + 1u, N - 1u) * bCol;
  let b2 = bBase + min(col0 + 2u, N - 1u) * bCol;
  let b3 = bBase + min(col0 + 3u, N - 1u) * bCol;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k = 0u; k < K; k++) {
    let bk = k * bRow;
    let bv = vec4<f32>(f32(b[b0 + bk]), f32(b[b1 + bk]), f32(b[b2 + bk]), f32(b[b3 + bk]));
    let ak = k * aCol;
    acc0 += f32(a[a0 + ak]) * bv;
    acc1 += f32(a[a1 + ak]) * bv;
    acc2 += f32(a[a2 + ak]) * bv;
    acc3 += f32(a[a3 + ak]) * bv;
  }
  let cBase = P(11u) + batch * M * N;
  store(row0, col0, M, N, cBase, acc0);
  store(row0 + 1u, col0, M, N, cBase, acc1);
  store(row0 + 2u, col0, M, N, cBase, acc2);
  store(row0 + 3u, col0, M, N, cBase, acc3);
}
