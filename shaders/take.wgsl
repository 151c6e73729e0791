// out[r] = x[r, ids[r]] for a contiguous [rows, n] matrix: one load per row instead of a
// masked pass over the whole row. Ids outside [0, n) give 0 (such targets are not scored).
// P: 0 rows, 1 n, 2 offset of x
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> out: array<{{X_TYPE}}>;
@group(0) @binding(2) var<storage, read> x: array<{{X_TYPE}}>;
@group(0) @binding(3) var<storage, read> ids: array<i32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * 64u;
  if (r >= P(0u)) { return; }
  let id = ids[r];
  if (id < 0 || u32(id) >= P(1u)) { out[r] = {{X_TYPE}}(0.0); return; }
  out[r] = x[P(2u) + r * P(1u) + u32(id)];
}
