// One sample per row of logits [rows, n] from softmax(logits), in one pass (Gumbel-max): each
// lane walks a contiguous stretch of the row, draws u from Philox (one 4-lane block per 4
// elements, numbered exactly like a uniform draw over the whole [rows, n] tensor), keeps the
// argmax of logit − log(−log u), and the lanes merge (larger value, then smaller index).
// P: 0 rows, 1 n, 2 logits offset, 3 seedLo, 4 seedHi, 5 counter base (low word), 6 u low clamp (f32), 7 u high clamp (f32),
//    8 counter base (high word)
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> out: array<i32>;
@group(0) @binding(2) var<storage, read> x: array<{{X_TYPE}}>; // f32 or f16
var<workgroup> bestV: array<f32, 64>;
var<workgroup> bestI: array<u32, 64>;

{{PHILOX}}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  let n = P(1u);
  let key = vec2<u32>(P(3u), P(4u));
  var infBits = 0x7f800000u;
  var best = -bitcast<f32>(infBits);
  var bestIdx = n;
  if (row < P(0u)) {
    let per = (n + 63u) / 64u;
    let start = lid.x * per;
    let end = min(start + per, n);
    var block = 0xffffffffu;
    var r = vec4<u32>(0u);
    for (var c = start; c < end; c++) {
      let g = row * n + c;
      let off = g / 4u;
      if (off != block) {
        r = philox(ctr64(P(5u), P(8u), off), key);
        block = off;
      }
      let u = min(max(unit(r[g & 3u]), PF(6u)), PF(7u));
      let v = f32(x[P(2u) + row * n + c]) + -log(-log(u));
      if (v > best) {
        best = v;
        bestIdx = c;
      }
    }
  }
  bestV[lid.x] = best;
  bestI[lid.x] = bestIdx;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k = k >> 1u) {
    if (lid.x < k) {
      let ov = bestV[lid.x + k];
      let oi = bestI[lid.x + k];
      if (ov > bestV[lid.x] || (ov == bestV[lid.x] && oi < bestI[lid.x])) {
        bestV[lid.x] = ov;
        bestI[lid.x] = oi;
      }
    }
    workgroupBarrier();
  }
  if (lid.x == 0u && row < P(0u)) { out[row] = i32(bestI[0]); }
}
