// Causal attention forward for GPUs, flash-attention style: out = softmax(q·kᵀ·scale, causal)·v
// and the per-row logsumexp of the scaled, masked scores, without a T×T matrix in global memory.
// The same results as attention.wgsl (the lavapipe kernel, which needs 8-lane subgroups); this one
// needs nothing beyond core WebGPU: workgroup memory and barriers.
//
// One workgroup of {{WG}} invocations = {{ROWS}} consecutive query rows of one (batch, head):
// invocation t owns rows {{WG}}·r + t (r < {{R}}) of the block, each with its pre-scaled q and its
// output accumulator in registers ({{D4}} vec4s each, unrolled by the host so that they stay
// registers). Keys and values are visited in tiles of {{BC}} rows that the whole workgroup copies
// into workgroup memory ({{BC}} × {{D4}} vec4s each for k and v: 16 KiB at D = 64, the WebGPU
// minimum limit); every invocation then reads the same tile entry at the same time (a broadcast,
// free of bank conflicts on GPUs), so each k/v value loaded from global memory feeds {{ROWS}} rows.
//
// Online softmax with a lazy rescale, as in attention.wgsl: the running max m of a row moves only
// when a score exceeds it by more than 8, so the rescale and its exp() are rare; probabilities
// exp(s − m) stay ≤ e⁸ in between, and out = acc / l is the same.
//
// Not yet tuned on a GPU (none was lent when it was written): WG, R and BC are the first guesses
// to revisit with `npm run bench:attention` there.
// The parameter words P(i) and the bindings out, lse, q, k, v: ioBlock in src/tensor/kernels/attention.ts.
{{IO}}

var<workgroup> ks: array<vec4<f32>, {{BC_D4}}>;
var<workgroup> vs: array<vec4<f32>, {{BC_D4}}>;

// Elements 4c … 4c+3 of the row starting at `base` (zeros past D).
{{CHUNK_FNS}}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let T = P(0u);
  let bh = P(15u) + wid.y;
  let b = bh / P(1u);
  let h = bh % P(1u);
  let qb = P(2u) + b * P(3u) + h * P(4u);
  let kb = P(6u) + b * P(7u) + h * P(8u);
  let vb = P(10u) + b * P(11u) + h * P(12u);
  let scale = PF(14u);
  let first = wid.x * {{ROWS}}u;
  // Per row r: i_r (its position; invocations past T−1 compute row T−1 again and store nothing),
  // q_r, acc_r, running max m_r and sum l_r.
{{INIT_ROWS}}
  // Keys 0 … (last row of this block): the same bound for the whole workgroup (barriers below).
  let kEnd = min(first + {{ROWS}}u, T);
  for (var j0 = 0u; j0 < kEnd; j0 += {{BC}}u) {
    workgroupBarrier(); // everyone is done reading the previous tile
    for (var e = t; e < {{BC_D4}}u; e += {{WG}}u) {
      let j = min(j0 + e / {{D4}}u, T - 1u);
      ks[e] = chunkK(kb + j * P(9u), e % {{D4}}u);
      vs[e] = chunkV(vb + j * P(13u), e % {{D4}}u);
    }
    workgroupBarrier();
    // This invocation's rows see keys ≤ its last row: stop there (no barrier inside).
    let jn = min(min({{BC}}u, kEnd - j0), select(0u, {{LAST_ROW}} + 1u - j0, {{LAST_ROW}} + 1u > j0));
    for (var jj = 0u; jj < jn; jj++) {
      let j = j0 + jj;
{{PER_KEY}}
    }
  }
{{STORE}}
}
