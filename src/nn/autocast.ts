// Mixed precision for the model code, in the manner of torch.autocast: inside autocast('f16', fn)
// the layers that gain from half precision (linear layers: their matmuls; attention's products;
// what follows them elementwise, such as GELU) compute in f16, while the numerically delicate ones
// (LayerNorm statistics, softmax, log-sum-exp, the loss) take f32, and the residual stream stays
// f32 by promotion (f32 + f16 → f32). Parameters stay f32 ("master weights"): layers cast them
// per use, and the cast's backward hands f32 gradients back, so optimizers never see f16.
import * as ops from '../autograd/ops/index.ts';
import type { Tensor } from '../tensor/tensor.ts';

export type Precision = 'f32' | 'f16';

let active: Precision = 'f32';
/**
 * Casts of the same parameter within one autocast region are shared (PyTorch's weight-cast
 * cache): the tied LM head casts wte once per step, not once per logits chunk.
 */
let castCache: Map<Tensor, Tensor> | null = null;

/** Runs `fn` with the given compute precision for autocast-aware layers ('f32': unchanged). */
export function autocast<T>(precision: Precision, fn: () => T): T {
  const prev = [active, castCache] as const;
  active = precision;
  castCache = precision === 'f16' ? new Map() : null;
  try {
    return fn();
  } finally {
    [active, castCache] = prev;
  }
}

export function autocastPrecision(): Precision {
  return active;
}

/** `t` in the low compute precision when autocast is on (f16), else unchanged. */
export function lowp(t: Tensor): Tensor {
  if (active !== 'f16' || t.dtype === 'f16') return t;
  const hit = castCache?.get(t);
  if (hit && !hit.disposed) return hit;
  const c = ops.cast(t, 'f16');
  // Only leaves (parameters) are cached, realised once: they are what several ops of a step cast again.
  if (!t.gradFn && !t.isLazy && castCache) castCache.set(t, c.realize());
  return c;
}

/** `t` in f32 (for the ops autocast keeps in full precision). */
export function fullp(t: Tensor): Tensor {
  return t.dtype === 'f16' ? ops.cast(t, 'f32') : t;
}
