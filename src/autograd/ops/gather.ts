// Indexing ops. indexSelect (embedding lookup) and scatterAdd are each other's adjoints;
// takeAlongLastAxis is composed from a one-hot mask, so its derivatives come from where/sum.
import * as raw from '../../tensor/ops.ts';
import { fmt } from '../../tensor/shape.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { record } from '../graph.ts';
import { where } from './elementwise.ts';
import { sum } from './reduce.ts';
import { expand, reshape } from './views.ts';

/** out[..., :] = table[ids[...], :] — an embedding lookup. */
export function indexSelect(table: Tensor, ids: Tensor): Tensor {
  const out = raw.indexSelect(table, ids);
  return record(out, 'indexSelect', [table], (g) => [scatterAdd(reshape(g, [ids.size, table.shape[1]]), reshape(ids, [ids.size]), table.shape[0])]);
}

/** zeros([rows, width]) with src[p, :] added into row ids[p] (in ascending p order). */
export function scatterAdd(src: Tensor, ids: Tensor, rows: number): Tensor {
  const out = raw.scatterAdd(src, ids, rows);
  return record(out, 'scatterAdd', [src], (g) => [indexSelect(g, ids)]);
}

/** One-hot mask [..., n] of `ids` [...]: 1 where the last coordinate equals the id. */
export function oneHot(ids: Tensor, n: number): Tensor {
  const shape = [...ids.shape, n];
  return raw.binary('eq', raw.indexAlong(shape, shape.length - 1), raw.expandView(raw.reshape(ids, [...ids.shape, 1]), shape));
}

/** out[...] = x[..., ids[...]] (e.g. the log-probability of each target). */
export function takeAlongLastAxis(x: Tensor, ids: Tensor): Tensor {
  if (ids.rank !== x.rank - 1 || ids.shape.some((d, i) => d !== x.shape[i])) {
    throw new Error(`takeAlongLastAxis: ids ${fmt(ids.shape)} must match ${fmt(x.shape)} without its last axis`);
  }
  const n = x.shape[x.rank - 1];
  if (n < 256) return sum(where(oneHot(ids, n), x, 0), -1);
  // Long rows: one load per row; the adjoint scatters g back through the one-hot mask.
  return record(raw.takeLast(x, ids), 'takeAlongLastAxis', [x], (g) => [where(oneHot(ids, n), expand(reshape(g, [...ids.shape, 1]), x.shape), 0)]);
}

