// Deterministic row scatter-add for indices on the GPU: out[id, :] = Σ src[p, :] over the
// positions p with ids[p] = id, summed in ascending p (order[] from scatter_rank.wgsl). One
// invocation per (slot, column); only the first slot of each id's run sums the run and writes.
// Rows outside this output window [P(3), P(3) + P(4)) are left to another dispatch; ids outside
// the table are ignored.
// P: 0 count n, 1 width, 2 src offset, 3 first row of the window, 4 rows in the window,
//    5 element where the window's binding starts
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<{{SRC_TYPE}}>; // f32 or f16; the sums are f32
@group(0) @binding(3) var<storage, read> ids: array<i32>;
@group(0) @binding(4) var<storage, read> order: array<i32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let flat = gid.x + gid.y * nwg.x * 64u;
  let n = P(0u);
  let width = P(1u);
  if (flat >= n * width) { return; }
  let slot = flat / width;
  let col = flat % width;
  let id = ids[order[slot]];
  if (slot > 0u && ids[order[slot - 1u]] == id) { return; }
  let row = id - i32(P(3u));
  if (row < 0 || u32(row) >= P(4u)) { return; }
  var acc = 0.0;
  for (var s = slot; s < n && ids[order[s]] == id; s++) {
    acc += f32(src[P(2u) + u32(order[s]) * width + col]);
  }
  out[u32(id) * width + col - P(5u)] = acc;
}
