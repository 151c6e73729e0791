// In-place writes (optimizer updates, buffers). Not differentiable: like PyTorch, writing into a
// tensor that requires grad is only allowed with recording off (inside noGrad).
import * as raw from '../../tensor/ops.ts';
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
