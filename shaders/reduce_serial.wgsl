// Reduces each row with one lane and a plain loop: short rows, and on CPU adapters any rows
// numerous enough to fill the machine (see reduce.ts). The expression's coordinates are
// computed once per row and advanced with a carry (no division per element).
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
  let first = row * inner;
  var c = coords(first);
  for (var j = 0u; j < inner; j++) {
    acc = combine(acc, exprAt(first + j, c));
    if (EXPR_USES_COORDS) { c = nextCoords(c); }
  }
  out[P(2u) + row] = {{OUT_TYPE}}(acc);
}
