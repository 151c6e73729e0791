// Stable counting order of indices that live on the GPU (sampled labels): position p goes to
// slot rank(p) = #{q : ids[q] < ids[p], or ids[q] = ids[p] and q < p}, so order[] lists the
// positions grouped by id, ascending within each id. O(n²) comparisons through a workgroup tile:
// the lists here are a batch's tokens (thousands), where that is cheaper than a multi-pass sort
// and, unlike atomics, deterministic. The scatter-add then sums each group in position order.
// P: 0 count n
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> order: array<i32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;

var<workgroup> tile: array<i32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = P(0u);
  let p = (wg.x + wg.y * nwg.x) * 64u + li;
  let mine = ids[min(p, n - 1u)];
  var rank = 0u;
  for (var base = 0u; base < n; base += 64u) {
    tile[li] = ids[min(base + li, n - 1u)];
    workgroupBarrier();
    let m = min(64u, n - base);
    for (var j = 0u; j < m; j++) {
      let other = tile[j];
      rank += select(0u, 1u, other < mine || (other == mine && base + j < p));
    }
    workgroupBarrier();
  }
  if (p < n) { order[rank] = i32(p); }
}
