// Realises a fused elementwise expression: out[index(flat)] = expr(flat).
// EXPR (generated from the expression tree) defines `fn expr(flat: u32) -> f32`.
// Params: P(0) = element count, P(1) = output offset, then the expression's words,
// then (strided output only) the output strides.
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> out: array<{{OUT_TYPE}}>;
{{EXPR}}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let flat = gid.x + gid.y * nwg.x * 64u;
  if (flat >= P(0u)) { return; }
{{OUT_INDEX}}
  out[o] = {{OUT_TYPE}}(expr(flat));
}
