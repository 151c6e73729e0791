// Row gather (embedding lookup / index_select on axis 0): out[i, :] = src[idx[i], :].
// src rows are `width` long with row stride P(3). A table larger than one binding is gathered
// window by window: ids outside [P(5), P(5) + P(2)) are skipped, or written as 0 when P(6) = 1
// (the first window), so ids outside the whole table read as 0.
// P: 0 count of out elements, 1 width, 2 rows in this window, 3 src row stride, 4 src offset,
//    5 first row of the window, 6 zero-fill flag
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> out: array<{{SRC_TYPE}}>; // the table's dtype, f32 or f16
@group(0) @binding(2) var<storage, read> src: array<{{SRC_TYPE}}>;
@group(0) @binding(3) var<storage, read> idx: array<i32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let flat = gid.x + gid.y * nwg.x * 64u;
  if (flat >= P(0u)) { return; }
  let width = P(1u);
  let row = idx[flat / width] - i32(P(5u));
  if (row < 0 || u32(row) >= P(2u)) {
    if (P(6u) == 1u) { out[flat] = {{SRC_TYPE}}(0.0); }
    return;
  }
  out[flat] = src[P(4u) + u32(row) * P(3u) + flat % width];
}
