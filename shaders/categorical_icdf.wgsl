// One sample per row of logits [rows, n] from softmax(logits) by inverse CDF: one uniform u per
// row (Philox block `counter base + row`), then the first index whose cumulative probability
// exceeds u. One exp per element and no per-element random numbers, so it costs about a
// log-sum-exp pass where Gumbel-max (categorical.wgsl) draws and takes two logs per element
// (≈ 3× slower on lavapipe). Each lane owns a contiguous stretch: lanes find the row max, sum
// exp(x − max) over their stretch, every lane forms the same prefix over the 64 partial sums
// (fixed order, so the result is deterministic), and the lane whose range holds u·total walks
// its stretch again to find the index.
// P: 0 rows, 1 n, 2 logits offset, 3 seedLo, 4 seedHi, 5 counter base (low word), 6 counter base (high word)
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> out: array<i32>;
@group(0) @binding(2) var<storage, read> x: array<{{X_TYPE}}>; // f32 or f16
var<workgroup> part: array<f32, 64>;

{{PHILOX}}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  let live = row < P(0u);
  let n = P(1u);
  let per = (n + 63u) / 64u;
  let start = min(lid.x * per, n);
  let end = min(start + per, n);
  let base = P(2u) + min(row, P(0u) - 1u) * n;
  var infBits = 0x7f800000u;
  // The row max, so every exp is ≤ 1.
  var m = -bitcast<f32>(infBits);
  for (var c = start; c < end; c++) { m = max(m, f32(x[base + c])); }
  part[lid.x] = m;
  workgroupBarrier();
  var rowMax = part[0];
  for (var k = 1u; k < 64u; k++) { rowMax = max(rowMax, part[k]); }
  workgroupBarrier();
  var s = 0.0;
  for (var c = start; c < end; c++) { s += exp(f32(x[base + c]) - rowMax); }
  part[lid.x] = s;
  workgroupBarrier();
  var below = 0.0; // this lane's cumulative start
  var total = 0.0;
  for (var k = 0u; k < 64u; k++) {
    if (k == lid.x) { below = total; }
    total += part[k];
  }
  let u = unit(philox(ctr64(P(5u), P(6u), row), vec2<u32>(P(3u), P(4u))).x);
  let goal = u * total;
  // The lane whose [below, below + s) holds the goal; rounding past the end goes to the last
  // lane with mass.
  var last = 0u;
  for (var k = 0u; k < 64u; k++) { if (part[k] > 0.0) { last = k; } }
  let mine = (goal >= below && goal < below + s && s > 0.0) || (lid.x == last && goal >= total);
  if (live && mine) {
    var acc = below;
    var pick = start;
    for (var c = start; c < end; c++) {
      let p = exp(f32(x[base + c]) - rowMax);
      if (p > 0.0) { pick = c; }
      acc += p;
      if (acc > goal && p > 0.0) { break; }
    }
    out[row] = i32(pick);
  }
}
