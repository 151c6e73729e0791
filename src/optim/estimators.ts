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

/** Mean cross-entropy of logits [..., V] against i32 labels [...] (the default GNB loss). */
export function meanCrossEntropy(logits: Tensor, labels: Tensor): Tensor {
  return ops.mean(ops.sub(ops.logsumexp(logits, -1), ops.takeAlongLastAxis(logits, labels)));
}

/**
 * Gauss-Newton-Bartlett from a closure that returns the model's logits [..., V] for the
 * estimator minibatch: labels ŷ are sampled from softmax(logits) with `gen` (on the GPU, by the
 * Gumbel-max trick), ĝ = ∇ of the MEAN loss on ŷ (`loss`, default mean cross-entropy), and
 * ĥ = B·ĝ⊙ĝ ('paper') or ĝ⊙ĝ ('official'), with B = the number of sampled tokens (the logits'
 * rows). Returns ĥ and B, ready for Sophia.updateHessian (or as Sophia's `estimator`).
 */
export function gnbFromLogits(
  logits: (...params: Tensor[]) => Tensor,
  params: readonly NamedParam[],
  gen: ops.Generator,
  opts: { form: SophiaForm; loss?: (logits: Tensor, labels: Tensor) => Tensor },
): { hhat: Map<string, Tensor>; batchTokens: number } {
  let batchTokens = 0;
  const lossFn = opts.loss ?? meanCrossEntropy;
  const sampledLoss = (...ps: Tensor[]) => {
    const z = logits(...ps);
    if (z.rank < 1) throw new Error('gnbFromLogits: the closure must return logits [..., V]');
    batchTokens = z.size / z.shape[z.rank - 1];
    return lossFn(z, ops.categorical(ops.detach(z), gen));
  };
  const g = grad(sampledLoss)(...params.map((p) => p.param));
  const scale = opts.form === 'paper' ? batchTokens : 1;
  const hhat = noGrad(() => new Map(params.map((p, i) => [p.name, ops.mul(ops.mul(g[i], g[i]), scale).realize()])));
  g.forEach((t) => t.dispose());
  return { hhat, batchTokens };
}

/**
 * GNB on a training step's own minibatch, sharing its forward and gradient (GPT2.lossWithGnbDelta):
 * ĝ = g + ∇D, where g = ∇L is the step's gradient of its mean loss on that minibatch (null: the
 * parameter got none) and D = L̂ − L. Returns ĥ = B·ĝ⊙ĝ ('paper') or ĝ⊙ĝ ('official') as lazy
 * expressions, so Sophia.updateHessian computes each in the kernel that updates h.
 */
export function gnbFromDelta(
  g: readonly (Tensor | null)[],
  gDelta: readonly Tensor[],
  params: readonly NamedParam[],
  batchTokens: number,
  form: SophiaForm,
): Map<string, Tensor> {
  const scale = form === 'paper' ? batchTokens : 1;
  return noGrad(
    () =>
      new Map(
        params.map((p, i) => {
          const gi = g[i];
          const ghat = gi ? ops.add(gi, gDelta[i]) : gDelta[i];
          return [p.name, ops.mul(ops.mul(ghat, ghat), scale)];
        }),
      ),
  );
}

export type Probe = 'rademacher' | 'gaussian';

/**
 * Hutchinson: u ~ Rademacher (±1) or N(0, 1), ĥ = u⊙(H·u) with H·u the exact Hessian-vector
 * product of `loss` at the current parameters (double backward). E[ĥ] = diag(H). With
 * `samples` > 1, the mean of that many independent probes.
 */
export function hutchinsonEstimate(
  loss: (...params: Tensor[]) => Tensor,
  params: readonly NamedParam[],
  gen: ops.Generator,
  probe: Probe = 'rademacher',
  samples = 1,
): Map<string, Tensor> {
  if (probe !== 'rademacher' && probe !== 'gaussian') throw new RangeError(`probe must be 'rademacher' or 'gaussian', got '${String(probe)}'`);
  if (!Number.isInteger(samples) || samples < 1) throw new RangeError(`samples must be an integer ≥ 1, got ${samples}`);
  let acc: Tensor[] | null = null;
  for (let s = 0; s < samples; s++) {
    const u = params.map((p) => (probe === 'rademacher' ? gen.rademacher([...p.param.shape]) : gen.randn([...p.param.shape])).realize());
    const hu = hvp(loss, params.map((p) => p.param), u);
    const prev: Tensor[] | null = acc;
    acc = noGrad(() => u.map((ui, i) => (prev ? ops.add(prev[i], ops.mul(ui, hu[i])) : ops.mul(ui, hu[i])).realize()));
    prev?.forEach((t) => t.dispose());
    u.forEach((t) => t.dispose());
    hu.forEach((t) => t.dispose());
  }
  const sum = acc!;
  if (samples === 1) return new Map(params.map((p, i) => [p.name, sum[i]]));
  const out = noGrad(() => new Map(params.map((p, i) => [p.name, ops.mul(sum[i], 1 / samples).realize()])));
  sum.forEach((t) => t.dispose());
  return out;
}
