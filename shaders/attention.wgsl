// Causal attention forward, flash-attention style: out = softmax(q·kᵀ·scale, causal)·v and the
// per-row logsumexp of the scaled, masked scores, without a T×T matrix in global memory.
//
// One workgroup = one 8-lane subgroup = {{ROWS}} consecutive query rows of one (batch, head): lane
// l owns rows 8r + l (r < {{R}}) of the block, each with its pre-scaled q and its output
// accumulator in registers ({{D4}} vec4s each). Keys and values are visited in blocks of 8: lane l
// loads key/value row j0 + l, and each of the 8 rows is handed to all lanes with subgroupShuffle.
//
// Why this shape (measured on lavapipe, 2-core EPYC, B=8 H=4 T=128 D=32, GFLOP/s per second of
// worker CPU): every storage load is a scalar load per lane with a bounds check, so loads, not
// FMAs, set the speed. 1 row per lane with scalar loads 12.9; loads removed altogether 23 (so
// loads were ~45 %); vec4 loads 14.2; 2 rows per lane (each loaded k/v value feeds 16 rows) 16.3,
// with vec4 loads 19.3; 4 rows 20.7–22 but twice the (cold) shader compile time, which grows with
// the unrolled code (D=64: ≈ 20 s for 1–2 rows under load). Shuffles cost nothing measurable, and
// unrolling the 8 keys with constant-lane broadcasts was no faster than this loop.
//
// Online softmax with a lazy rescale: the running max m of a row only moves when a score exceeds
// it by more than 8 (subgroup-uniform test), so the accumulator rescale and its exp() are rare;
// probabilities exp(s − m) stay ≤ e⁸ in between. The result is the same, out = acc / l.
//
// D ({{D}}) is a compile-time constant: the per-element code is unrolled by the host
// (src/tensor/kernels/attention.ts), elements past D are literal zeros.
enable subgroups;
// The parameter words P(i) and the bindings out, lse, q, k, v: ioBlock in src/tensor/kernels/attention.ts.
{{IO}}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let T = P(0u);
  let bh = P(15u) + wid.y;
  let b = bh / P(1u);
  let h = bh % P(1u);
  let qb = P(2u) + b * P(3u) + h * P(4u);
  let kb = P(6u) + b * P(7u) + h * P(8u);
  let vb = P(10u) + b * P(11u) + h * P(12u);
  let scale = PF(14u);
  // Per row r: i_r (its position; lanes past T−1 compute row T−1 again and store nothing),
  // q_r, acc_r, running max m_r and sum l_r.
{{INIT_ROWS}}
  // Keys 0 … (last row of this block): the loop bound is the same for all 8 lanes.
  let kEnd = min(wid.x * {{ROWS}}u + {{ROWS}}u, T);
  for (var j0 = 0u; j0 < kEnd; j0 += 8u) {
    let jr = min(j0 + lane, T - 1u);
    let kr = kb + jr * P(9u);
    let vr = vb + jr * P(13u);
{{LOAD_KV}}
    for (var jj = 0u; jj < 8u; jj++) {
{{PER_KEY}}
    }
  }
{{STORE}}
}
