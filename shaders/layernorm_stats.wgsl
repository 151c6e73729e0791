// LayerNorm's row statistics over a contiguous [rows, n] matrix in one kernel: the mean and
// 1/√(biased variance + eps). Two passes over the row (the second subtracts the mean, as
// torch.nn.LayerNorm's result does, rather than E[x²] − E[x]², which cancels badly for rows far
// from zero); each pass sums in every lane, then merges the lanes in a tree.
// P: 0 rows, 1 n, 2 offset of the input, 3 eps (f32 bits)
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> meanOut: array<f32>;
@group(0) @binding(2) var<storage, read_write> rstdOut: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
var<workgroup> partial: array<f32, 64>;

// The sum of every lane's `v` (all 64 lanes call it; every lane gets the result).
fn workgroupSum(lane: u32, v: f32) -> f32 {
  partial[lane] = v;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k = k >> 1u) {
    if (lane < k) { partial[lane] += partial[lane + k]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier(); // everyone has read partial[0] before it is reused
  return total;
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  let rows = P(0u);
  let n = P(1u);
  let live = row < rows; // uniform per workgroup: every lane reaches every barrier
  let base = P(2u) + select(0u, row, live) * n;
  var s = 0.0;
  if (live) {
    for (var j = lid.x; j < n; j += 64u) { s += x[base + j]; }
  }
  let mean = workgroupSum(lid.x, s) / f32(n);
  var q = 0.0;
  if (live) {
    for (var j = lid.x; j < n; j += 64u) {
      let d = x[base + j] - mean;
      q += d * d;
    }
  }
  let variance = workgroupSum(lid.x, q) / f32(n);
  if (live && lid.x == 0u) {
    meanOut[row] = mean;
    rstdOut[row] = inverseSqrt(variance + bitcast<f32>(P(3u)));
  }
}
