// concat writes each part into one buffer; its adjoint slices the gradient back apart.
import * as raw from '../../tensor/ops.ts';
import { normalizeAxes } from '../../tensor/shape.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { record } from '../graph.ts';
import { slice } from './views.ts';

export function concat(parts: readonly Tensor[], axis = 0): Tensor {
  const out = raw.concat(parts, axis);
  const ax = normalizeAxes('concat', axis, parts[0].rank)[0];
  const starts: number[] = [];
  let s = 0;
  for (const p of parts) {
    starts.push(s);
    s += p.shape[ax];
  }
  return record(out, 'concat', parts, (g, needs) =>
    parts.map((p, i) => (needs[i] ? slice(g, p.shape.map((d, k) => (k === ax ? ([starts[i], starts[i] + d] as const) : null))) : null)),
  );
}

/** Splits along `axis` into pieces of the given sizes (or `sizes` equal pieces): views, no copy. */
export function split(a: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
  const ax = normalizeAxes('split', axis, a.rank)[0];
  const d = a.shape[ax];
  const list = typeof sizes === 'number' ? Array.from({ length: Math.ceil(d / sizes) }, (_, i) => Math.min(sizes, d - i * sizes)) : [...sizes];
  if (list.reduce((x, y) => x + y, 0) !== d) throw new Error(`split: sizes [${list.join(', ')}] do not add up to ${d} (axis ${ax} of [${a.shape.join(', ')}])`);
  let s = 0;
  return list.map((n) => {
    const r = slice(a, a.shape.map((_, k) => (k === ax ? ([s, s + n] as const) : null)));
    s += n;
    return r;
  });
}
