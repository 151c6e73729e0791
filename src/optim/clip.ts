// Global-norm gradient clipping on the GPU, as torch.nn.utils.clip_grad_norm_: the total L2 norm
// over all gradients, and every gradient scaled by min(1, max_norm / (norm + 1e-6)). The norm
// never leaves the GPU unless asked for: the scale is a tensor.
import { noGrad } from '../autograd/graph.ts';
import * as ops from '../autograd/ops/index.ts';
import type { Tensor } from '../tensor/tensor.ts';

/** Returns the (pre-clipping) global norm as a 0-d tensor; clips in place when maxNorm is finite. */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): Tensor {
  if (!(maxNorm > 0)) throw new RangeError(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  return noGrad(() => {
    const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
    if (grads.length === 0) return ops.zeros([]);
    const sq = grads.map((g) => ops.sum(ops.mul(g, g))).reduce((a, b) => ops.add(a, b));
    const norm = ops.sqrt(sq).realize();
    if (Number.isFinite(maxNorm)) {
      const scale = ops.minimum(ops.div(maxNorm, ops.add(norm, 1e-6)), 1).realize();
      for (const g of grads) ops.assign(g, ops.mul(g, scale));
      scale.dispose();
    }
    return norm;
  });
}
