// Deterministic row scatter-add (the embedding gradient): out[rows[u], :] = Σ src[pos, :] over
// the positions of unique row u, summed in ascending position order, so results are
// bit-reproducible. The host builds the CSR lists (rowStart, positions) from the index values.
// P: 0 unique rows, 1 width, 2 src offset
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read> csr: array<i32>; // [rows(U), rowStart(U+1), positions]

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let flat = gid.x + gid.y * nwg.x * 64u;
  let unique = P(0u);
  let width = P(1u);
  if (flat >= unique * width) { return; }
  let u = flat / width;
  let col = flat % width;
  let start = u32(csr[unique + u]);
  let end = u32(csr[unique + u + 1u]);
  let posBase = 2u * unique + 1u;
  var acc = 0.0;
  for (var p = start; p < end; p++) {
    acc += src[P(2u) + u32(csr[posBase + p]) * width + col];
  }
  out[u32(csr[u]) * width + col] = acc;
}
