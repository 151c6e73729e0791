// Several fused elementwise expressions over one shape, each stored into its own output:
// outI[indexI(flat)] = exprsAt(flat)[I]. Every output of an element is computed (all loads done)
// before any of them is stored, so an output may also be an input (θ ← f(θ, m), m ← g(m)) and
// an output that feeds another (θ' from m') uses the value computed in registers.
// Params: P(0) = element count, P(1 + I) = output I's offset, then the expressions' words,
// then (strided outputs only) their shapes and strides. Sums (optional): each invocation adds its
// elements of each sum expression and writes one partial per sum into `partials`.
{{PARAMS}}
{{OUT_DECLS}}
{{EXPR}}
{{SUM_DECLS}}
fn one(flat: u32, c: array<u32, {{RANK}}>) {
  let r = exprsAt(flat, c);
{{STORES}}
{{SUM_ACCUMULATE}}
}

// Four elements per invocation, as elementwise.wgsl (fewer invocations, cheaper on CPU adapters).
@compute @workgroup_size(64)
fn main(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
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
{{SUM_FINISH}}
}
