// Fused causal attention: out = softmax(q·kᵀ/√D, causal)·v in one kernel (no T×T matrix), with a
// backward written in engine ops so that it can be differentiated again (exact HVPs).
//
// The backward recomputes the probabilities P from q and k (flash-attention style) using the
// forward's saved row logsumexp L. A saved L treated as a constant would give correct first
// derivatives but wrong second ones (L depends on q and k), so each backward wraps L in a graph
// node whose own derivative is that of logsumexp: ∂L/∂z = P. The output O, used for the row term
// Dᵢ = Σ dOᵢ·Oᵢ, is this op's recorded result, so second derivatives flow through it too.
//
//   z  = (q/√D)·kᵀ            P  = mask ⊙ exp(z − L)
//   dV = Pᵀ·dO                dP = dO·vᵀ
//   dZ = P ⊙ (dP − D)         dQ = dZ·k/√D        dK = dZᵀ·(q/√D)
import * as raw from '../../tensor/ops.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { record } from '../graph.ts';
import { exp, mul, sub, where } from './elementwise.ts';
import { matmul } from './matmul.ts';
import { sum } from './reduce.ts';
import { transpose } from './views.ts';

/** A lazy [T, T] mask, 1 where key position ≤ query position (costs no buffer). */
export function causalMask(T: number): Tensor {
  return raw.binary('ge', raw.indexAlong([T, T], 0), raw.indexAlong([T, T], 1));
}

/** Causal scaled-dot-product attention over q, k, v [B, H, T, D] in one fused forward kernel. */
export function fusedCausalAttention(q: Tensor, k: Tensor, v: Tensor): Tensor {
  const { out, lse } = raw.causalAttention(q, k, v);
  const [B, H, T, D] = q.shape;
  const scale = 1 / Math.sqrt(D);
  const result: Tensor = record(out, 'causalAttention', [q, k, v], (dO, needs) => {
    const mask = causalMask(T);
    const qs = mul(q, scale);
    const z = matmul(qs, transpose(k));
    const probs = (L: Tensor) => where(mask, exp(sub(z, L)), 0);
    // A fresh view per backward: the node records this call's z.
    const L: Tensor = record(raw.reshape(lse, [B, H, T, 1]), 'attentionLogsumexp', [z], (g) => [mul(g, probs(L))]);
    const P = probs(L);
    const dV = needs[2] ? matmul(transpose(P), dO) : null;
    if (!needs[0] && !needs[1]) return [null, null, dV];
    const dZ = mul(P, sub(matmul(dO, transpose(v)), sum(mul(dO, result), -1, true)));
    return [needs[0] ? mul(matmul(dZ, k), scale) : null, needs[1] ? matmul(transpose(dZ), qs) : null, dV];
  });
  return result;
}
