// log Σ exp over each row of a contiguous [rows, n] matrix in ONE pass: every lane keeps a
// running (max, sum of exp(x − max)) and rescales the sum when the max grows (the "online
// softmax" of Milakov & Gimelshein 2018); lanes then merge their pairs in a tree.
// P: 0 rows, 1 n, 2 offset of the input
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> out: array<{{X_TYPE}}>;
@group(0) @binding(2) var<storage, read> x: array<{{X_TYPE}}>; // f32 or f16 (computed in f32)
var<workgroup> wm: array<f32, 64>;
var<workgroup> ws: array<f32, 64>;

fn merge(m1: f32, s1: f32, m2: f32, s2: f32) -> vec2<f32> {
  let m = max(m1, m2);
  if (s1 == 0.0) { return vec2<f32>(m2, s2); }
  if (s2 == 0.0) { return vec2<f32>(m1, s1); }
  return vec2<f32>(m, s1 * exp(m1 - m) + s2 * exp(m2 - m));
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  let n = P(1u);
  var infBits = 0x7f800000u;
  var m = -bitcast<f32>(infBits);
  var s = 0.0;
  if (row < P(0u)) {
    let base = P(2u) + row * n;
    for (var j = lid.x; j < n; j += 64u) {
      let v = f32(x[base + j]);
      if (v > m) {
        s = s * exp(m - v) + 1.0;
        m = v;
      } else if (v > -bitcast<f32>(infBits)) {
        s += exp(v - m);
      }
    }
  }
  wm[lid.x] = m;
  ws[lid.x] = s;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k = k >> 1u) {
    if (lid.x < k) {
      let r = merge(wm[lid.x], ws[lid.x], wm[lid.x + k], ws[lid.x + k]);
      wm[lid.x] = r.x;
      ws[lid.x] = r.y;
    }
    workgroupBarrier();
  }
  if (lid.x == 0u && row < P(0u)) { out[row] = {{X_TYPE}}(wm[0] + log(ws[0])); }
}
