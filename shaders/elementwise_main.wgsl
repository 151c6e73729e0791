// The entry point shared by the elementwise kernels (elementwise.wgsl, elementwise_multi.wgsl),
// which each define `one(flat, c)`. Four elements per invocation: fewer invocations amortise the
// per-lane setup on CPU adapters. Coordinates are computed once per invocation, then advanced
// with a carry (no division per element). Values that do not change along the last axis (scalars
// such as the optimizers' all-finite flag, per-row values such as a bias or a target id) are
// computed in the expression's rowValues(c): once, and again when a new row starts.
// FINISH: per-invocation epilogue.
fn advance(c0: array<u32, {{RANK}}>) -> array<u32, {{RANK}}> {
  let c = nextCoords(c0);
  if (ROW_VALUES_PER_ROW && c[{{LAST}}] == 0u) { rowValues(c); }
  return c;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = (gid.x + gid.y * nwg.x * 64u) * 4u;
  let n = P(0u);
  var c = array<u32, {{RANK}}>();
  if (EXPR_USES_COORDS) { c = coords(first); }
  rowValues(c);
  if (first + 3u < n) {
    one(first, c);
    c = advance(c);
    one(first + 1u, c);
    c = advance(c);
    one(first + 2u, c);
    c = advance(c);
    one(first + 3u, c);
  } else {
    for (var f = first; f < n; f++) {
      one(f, c);
      c = advance(c);
    }
  }
{{FINISH}}
}
