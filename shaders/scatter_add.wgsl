// Deterministic row scatter-add (the embedding gradient): out[rows[u], :] = Σ src[pos, :] over
// the positions of unique row u, summed in ascending position order, so results are
// bit-reproducible. The host builds the CSR lists (rowStart, positions) from the index values.
// An output larger than one binding is written in windows of rows.
// P: 0 unique rows in total (CSR layout), 1 width, 2 src offset, 3 first unique row of this
//    window, 4 unique rows in this window, 5 element where the window's binding starts
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<{{SRC_TYPE}}>; // f32 or f16; the sums are f32
@group(0) @binding(3) var<storage, read> csr: array<i32>; // [rows(U), rowStart(U+1), positions]

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let flat = gid.x + gid.y * nwg.x * 64u;
  let unique = P(0u);
  let width = P(1u);
  if (flat >= P(4u) * width) { return; }
  let u = flat / width + P(3u);
  let col = flat % width;
  let start = u32(csr[unique + u]);
  let end = u32(csr[unique + u + 1u]);
  let posBase = 2u * unique + 1u;
  var acc = 0.0;
  for (var p = start; p < end; p++) {
    acc += f32(src[P(2u) + u32(csr[posBase + p]) * width + col]);
  }
  out[u32(csr[u]) * width + col - P(5u)] = acc;
}
