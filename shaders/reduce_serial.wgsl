// Reduces short rows (inner <= 32): one lane per output row, a plain loop.
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> out: array<{{OUT_TYPE}}>;
{{EXPR}}
fn combine(a: f32, b: f32) -> f32 { return {{COMBINE}}; }
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * 64u;
  let rows = P(0u);
  let inner = P(1u);
  if (row >= rows) { return; }
  var infBits = 0x7f800000u;
  var acc: f32 = {{INIT}};
  for (var j = 0u; j < inner; j++) {
    acc = combine(acc, expr(row * inner + j));
  }
  out[P(2u) + row] = {{OUT_TYPE}}(acc);
}
