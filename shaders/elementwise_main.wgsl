// The entry point shared by the elementwise kernels (elementwise.wgsl, elementwise_multi.wgsl),
// which each define `one(flat, c)`. Four elements per invocation: fewer invocations amortise the
// per-lane setup on CPU adapters. Coordinates are computed once per invocation, then advanced
// with a carry (no division per element). Scalars every element reads (e.g. the optimizers'
// all-finite flag) load once, in the expression's loadScalars(). FINISH: per-invocation epilogue.
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = (gid.x + gid.y * nwg.x * 64u) * 4u;
  let n = P(0u);
  loadScalars();
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
{{FINISH}}
}
