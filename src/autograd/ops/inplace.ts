// In-place writes (optimizer updates, buffers). Not differentiable: like PyTorch, writing into a
// tensor that requires grad is only allowed with recording off (inside noGrad).
import * as raw from '../../tensor/ops.ts';
import { assignMany as rawAssignMany } from '../../tensor/assign_many.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { isGradEnabled } from '../graph.ts';
import type { Operand } from './elementwise.ts';

/** dst ← value (broadcast), in dst's own buffer. `value` may read dst (e.g. p − lr·g). */
export function assign(dst: Tensor, value: Operand): Tensor {
  if (isGradEnabled() && dst.requiresGrad) {
    throw new Error(`assign: ${dst.name || 'tensor'} requires grad; update it inside noGrad(() => ...) (as optimizers do)`);
  }
  raw.assign(dst, typeof value === 'number' ? raw.scalar(value) : value);
  return dst;
}

/**
 * Several in-place writes of one shape in one kernel: each dst ← value, all values computed from
 * the buffers' contents before the call. A value built from another pair's (lazy) value uses it
 * as computed, without re-reading memory — so θ ← f(m') after m ← m' is one pass over θ, m, g.
 * `sums` are added up over all elements by the same kernel (from the same values), as 0-d tensors.
 */
export function assignMany(pairs: readonly (readonly [Tensor, Operand])[], sums: readonly Operand[] = []): Tensor[] {
  for (const [dst] of pairs) {
    if (isGradEnabled() && dst.requiresGrad) {
      throw new Error(`assignMany: ${dst.name || 'tensor'} requires grad; update it inside noGrad(() => ...) (as optimizers do)`);
    }
  }
  const t = (v: Operand) => (typeof v === 'number' ? raw.scalar(v) : v);
  return rawAssignMany(
    pairs.map(([dst, v]) => [dst, t(v)] as const),
    sums.map(t),
  );
}
