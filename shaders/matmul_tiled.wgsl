// Batched matmul C[b] = A[b] · B[b] for GPUs: workgroup-shared tiles and an {{T}}×{{T}} register
// block per invocation. Strided A [M, K] and B [K, N] (transposes are strides), contiguous C
// [batch, M, N]; the same parameter words as matmul.wgsl.
//
// The classic design (as in cuBLAS-like SGEMM kernels, written for WGSL):
// - A 16×16 workgroup computes a {{BM}}×{{BM}} tile of C, stepping through K {{BK}} at a time.
//   Each step, the 256 invocations copy a {{BM}}×{{BK}} slice of A and a {{BK}}×{{BM}} slice of B into
//   workgroup memory (zeros past the edges), then each accumulates its {{T}}×{{T}} block from there.
// - The copy walks the operand's contiguous dimension across neighbouring invocations
//   ({{A_FAST}} for A, {{B_FAST}} for B, chosen from the strides), so global loads coalesce
//   whichever operand is transposed.
// - Both slices are stored k-major as vec4s (As[k][m/4], Bs[k][n/4]). An invocation owns the row
//   quads ty, ty+16, … and the column quads tx, tx+16, …: neighbouring invocations read
//   neighbouring vec4s (no bank conflicts) and one A vec4 and one B vec4 feed 16 FMAs.
// On lavapipe workgroup memory is slow (see docs and matmul_tex.wgsl), so this kernel is for GPUs;
// tests force it there to check its numbers.
// P: 0 M, 1 N, 2 K, 3 aOff, 4 aBatch, 5 aRow, 6 aCol, 7 bOff, 8 bBatch, 9 bRow, 10 bCol, 11 cOff
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> c: array<{{C_TYPE}}>;
@group(0) @binding(2) var<storage, read> a: array<{{A_TYPE}}>;
@group(0) @binding(3) var<storage, read> b: array<{{B_TYPE}}>;

const BM = {{BM}}u; // tile rows = tile columns
const BK = {{BK}}u;
const Q = {{BM}}u / 4u; // vec4s per tile row
var<workgroup> As: array<vec4<f32>, {{BK}} * {{BM}} / 4>;
var<workgroup> Bs: array<vec4<f32>, {{BK}} * {{BM}} / 4>;

fn loadA(base: u32, m: u32, k: u32, M: u32, K: u32) -> f32 {
  if (m >= M || k >= K) { return 0.0; }
  return f32(a[base + m * P(5u) + k * P(6u)]);
}

fn loadB(base: u32, k: u32, n: u32, K: u32, N: u32) -> f32 {
  if (k >= K || n >= N) { return 0.0; }
  return f32(b[base + k * P(9u) + n * P(10u)]);
}

fn store(row: u32, col0: u32, M: u32, N: u32, base: u32, v: vec4<f32>) {
  if (row >= M) { return; }
  for (var j = 0u; j < 4u; j++) {
    if (col0 + j < N) { c[base + row * N + col0 + j] = {{C_TYPE}}(v[j]); }
  }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = P(0u);
  let N = P(1u);
  let K = P(2u);
  let batch = wid.z;
  let aBase = P(3u) + batch * P(4u);
  let bBase = P(7u) + batch * P(8u);
  let m0 = wid.y * BM;
  let n0 = wid.x * BM;
  let tx = lid.x;
  let ty = lid.y;
  let t = ty * 16u + tx;
{{ACC}}
  for (var k0 = 0u; k0 < K; k0 += BK) {
    // Copy: element e of the slice, 256 at a time; the fast index runs across invocations.
    for (var e = t; e < BM * BK; e += 256u) {
{{COPY}}
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
{{FMA}}
    }
    workgroupBarrier();
  }
  let cBase = P(11u) + batch * M * N;
{{STORE}}
}
