// Reduces the last `inner` elements of a fused expression viewed as [rows, inner].
// One workgroup per output row; 64 lanes stride over the row, then a tree in shared memory
// (pairwise partial sums keep f32 sums accurate). P(0) = rows, P(1) = inner.
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> out: array<{{OUT_TYPE}}>;
{{EXPR}}
fn combine(a: f32, b: f32) -> f32 { return {{COMBINE}}; }
var<workgroup> partial: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  let rows = P(0u);
  let inner = P(1u);
  var infBits = 0x7f800000u;
  var acc: f32 = {{INIT}};
  if (row < rows) {
    for (var j = lid.x; j < inner; j += 64u) {
      acc = combine(acc, expr(row * inner + j));
    }
  }
  partial[lid.x] = acc;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s >> 1u) {
    if (lid.x < s) { partial[lid.x] = combine(partial[lid.x], partial[lid.x + s]); }
    workgroupBarrier();
  }
  if (lid.x == 0u && row < rows) { out[P(2u) + row] = {{OUT_TYPE}}(partial[0]); }
}
