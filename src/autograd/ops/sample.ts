// Sampling from categorical distributions on the GPU, composed from engine ops (no readback):
// the Gumbel-max trick, argmax(logits + G) with G = −log(−log U), draws exactly from
// softmax(logits).
import * as raw from '../../tensor/ops.ts';
import { Tensor } from '../../tensor/tensor.ts';
import { categoricalIcdfKernel, categoricalKernel, GUMBEL_U_RANGE } from '../../tensor/kernels/random.ts';
import { noGrad } from '../graph.ts';
import type { Generator } from './creation.ts';

/** Index of the largest entry along `axis` (default the last; the first on ties), as i32. */
export function argmax(x: Tensor, axis = -1): Tensor {
  if (!Number.isInteger(axis) || axis < -x.rank || axis >= x.rank) throw new RangeError(`argmax: axis ${axis} is out of range for a tensor of rank ${x.rank}`);
  const ax = axis < 0 ? axis + x.rank : axis;
  return noGrad(() => {
    const n = x.shape[ax];
    const best = raw.expandView(raw.reduce('max', x, ax, true), x.shape);
    // Positions that hold the max keep their index, the rest get n; the min is the first argmax.
    const idx = raw.where(raw.binary('eq', x, best), raw.indexAlong(x.shape, ax), raw.scalar(n));
    return raw.cast(raw.reduce('min', idx, ax, false), 'i32');
  });
}

/**
 * One sample per row of `logits` [..., V] from softmax(logits), as i32 ids [...]. Long rows use
 * one fused pass (no noise tensor); both Gumbel-max paths draw the same uniforms, so they give the
 * same ids. `method: 'inverse-cdf'` draws one uniform per row instead and returns the first index
 * whose cumulative probability exceeds it: the same distribution, about a third of the cost on a
 * CPU adapter, different ids (Sophia's GNB labels use it).
 */
export function categorical(logits: Tensor, gen: Generator, opts: { fused?: boolean; method?: 'gumbel' | 'inverse-cdf' } = {}): Tensor {
  const V = logits.shape[logits.rank - 1];
  const icdf = opts.method === 'inverse-cdf';
  if (icdf || (opts.fused ?? V >= 256)) {
    return noGrad(() => {
      const c = logits.isContiguous() ? logits : logits.contiguousCopy();
      const { storage, offset } = c.layout();
      const rows = c.size / V;
      const ids = icdf ? categoricalIcdfKernel(storage, offset, rows, V, gen.seed, gen.reserveUniform(4 * rows)) : categoricalKernel(storage, offset, rows, V, gen.seed, gen.reserveUniform(c.size));
      if (c !== logits) c.dispose();
      return Tensor.owning(ids, logits.shape.slice(0, -1));
    });
  }
  return noGrad(() => {
    const u = gen.rand([...logits.shape]);
    // U in [0, 1) → clamp into (0, 1) so both logs stay finite.
    const [lo, hi] = GUMBEL_U_RANGE;
    const uc = raw.binary('min', raw.binary('max', u, raw.scalar(lo)), raw.scalar(hi));
    const gumbel = raw.unary('neg', raw.unary('log', raw.unary('neg', raw.unary('log', uc))));
    return argmax(raw.binary('add', logits, gumbel));
  });
}
