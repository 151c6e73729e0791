// LayerNorm's row statistics with one lane per row and plain loops (the two passes of
// layernorm_stats.wgsl without the workgroup tree): short rows, and on CPU adapters any rows
// numerous enough to fill the machine, where barriers cost more than the sums (see rows.ts).
// P: 0 rows, 1 n, 2 offset of the input, 3 eps (f32 bits)
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> meanOut: array<f32>;
@group(0) @binding(2) var<storage, read_write> rstdOut: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * 64u;
  let n = P(1u);
  if (row >= P(0u)) { return; }
  let base = P(2u) + row * n;
  var s = 0.0;
  for (var j = 0u; j < n; j++) { s += x[base + j]; }
  let mean = s / f32(n);
  var q = 0.0;
  for (var j = 0u; j < n; j++) {
    let d = x[base + j] - mean;
    q += d * d;
  }
  meanOut[row] = mean;
  rstdOut[row] = inverseSqrt(q / f32(n) + bitcast<f32>(P(3u)));
}
