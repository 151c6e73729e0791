// Realises a fused elementwise expression: out[index(flat)] = expr(flat).
// EXPR (generated from the expression tree) defines `fn expr(flat: u32) -> f32`.
// Params: P(0) = element count, P(1) = output offset, then the expression's words,
// then (strided output only) the output strides.
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> out: array<{{OUT_TYPE}}>;
{{EXPR}}
fn one(flat: u32, c: array<u32, {{RANK}}>) {
{{OUT_INDEX}}
  out[o] = {{OUT_TYPE}}(exprAt(flat, c));
}

// Four elements per invocation: fewer invocations amortise the per-lane setup on CPU adapters.
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = (gid.x + gid.y * nwg.x * 64u) * 4u;
  let n = P(0u);
  // Coordinates once per invocation, then advanced with a carry (no division per element).
  var c = array<u32, {{RANK}}>();
  if (EXPR_USES_COORDS) { c = coords(first); }
  if (first + 3u < n) {
    one(first, c);
    c = nextCoords(c);
    one(first + 1u, c);
    c = nextCoords(c);
    one(first + 2u, c);
    c = nextCoords(c);
    one(first + 3u, c);
  } else {
    for (var f = first; f < n; f++) {
      one(f, c);
      c = nextCoords(c);
    }
  }
}
