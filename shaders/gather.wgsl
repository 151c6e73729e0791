// Row gather (embedding lookup / index_select on axis 0): out[i, :] = src[idx[i], :].
// src rows are `width` long with row stride P(3); out-of-range ids read as 0.
// P: 0 count of out elements, 1 width, 2 rows of src, 3 src row stride, 4 src offset
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read> idx: array<i32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let flat = gid.x + gid.y * nwg.x * 64u;
  if (flat >= P(0u)) { return; }
  let width = P(1u);
  let row = idx[flat / width];
  if (row < 0 || u32(row) >= P(2u)) { out[flat] = 0.0; return; }
  out[flat] = src[P(4u) + u32(row) * P(3u) + flat % width];
}
