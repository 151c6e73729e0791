// Diagonal Hessian estimators for Sophia (paper §2.3, Algorithms 1 and 2).
import { grad, hvp } from '../autograd/functional.ts';
import { noGrad } from '../autograd/graph.ts';
import * as ops from '../autograd/ops/index.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { NamedParam } from './optimizer.ts';
import type { SophiaForm } from './sophia.ts';

/**
 * Gauss-Newton-Bartlett. `sampledLoss(params)` must return the MEAN cross-entropy of the model
 * on labels ŷ sampled from its own softmax (see GPT2.sampledLoss), over B tokens. Then
 * ĝ = ∇ sampledLoss and ĥ = B·ĝ⊙ĝ ('paper' form) or ĝ⊙ĝ ('official' form, which applies B in
 * the step). Each ĥ is ≥ 0 by construction.
 */
export function gnbEstimate(
  sampledLoss: (...params: Tensor[]) => Tensor,
  params: readonly NamedParam[],
  batchTokens: number,
  form: SophiaForm,
): Map<string, Tensor> {
  const g = grad(sampledLoss)(...params.map((p) => p.param));
  const scale = form === 'paper' ? batchTokens : 1;
  return noGrad(() => new Map(params.map((p, i) => [p.name, ops.mul(ops.mul(g[i], g[i]), scale).realize()])));
}

export type Probe = 'rademacher' | 'gaussian';

/**
 * Hutchinson: u ~ Rademacher (±1) or N(0, 1), ĥ = u⊙(H·u) with H·u the exact Hessian-vector
 * product of `loss` at the current parameters (double backward). E[ĥ] = diag(H).
 */
export function hutchinsonEstimate(
  loss: (...params: Tensor[]) => Tensor,
  params: readonly NamedParam[],
  gen: ops.Generator,
  probe: Probe = 'rademacher',
): Map<string, Tensor> {
  const u = params.map((p) => (probe === 'rademacher' ? gen.rademacher([...p.param.shape]) : gen.randn([...p.param.shape])).realize());
  const hu = hvp(loss, params.map((p) => p.param), u);
  return noGrad(() => new Map(params.map((p, i) => [p.name, ops.mul(u[i], hu[i]).realize()])));
}
