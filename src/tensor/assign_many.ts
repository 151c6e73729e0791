// assignMany: several in-place updates of one shape in a single kernel.
//
//   assignMany([[m, m1], [v, v1], [theta, step(theta, m1, v1)]])
//
// Every value is computed from what the buffers held *before* the call, as if all values were
// evaluated first and written afterwards. A value built from another pair's lazy value (θ' from
// m1 above) reuses that subtree, computed once in registers: it is never re-read from memory.
import { readsElsewhere } from './expr.ts';
import { realizeMany } from './kernels/multi_output.ts';
import { broadcastExpr, dstElementsDistinct, full, fusable, reduce, reshape, sliceView } from './ops.ts';
import { broadcastShapes, fmt, sameShape, viewExtent } from './shape.ts';
import type { Storage } from './storage.ts';
import { Tensor } from './tensor.ts';

/**
 * Writes each pair's value into its destination in one kernel. `sums` (optional, each broadcast
 * to the destinations' shape) are added up over all elements by the same kernel, from the same
 * before-the-call values, and returned as 0-d tensors: e.g. a count of clipped coordinates
 * without a second pass over the state.
 */
export function assignMany(pairs: readonly (readonly [Tensor, Tensor])[], sums: readonly Tensor[] = []): Tensor[] {
  if (pairs.length === 0) {
    if (sums.length) throw new Error('assignMany: sums need at least one destination (they are computed over its shape)');
    return [];
  }
  const shape = pairs[0][0].shape;
  const layouts = new Map<Storage, { offset: number; strides: readonly number[] }>();
  const outs = pairs.map(([dst, value], i) => {
    if (dst.isLazy) throw new Error(`assignMany: destination ${i} is a lazy expression; destinations must be realised tensors (parameters or buffers)`);
    if (!sameShape(dst.shape, shape)) throw new Error(`assignMany: destination ${i} has shape ${fmt(dst.shape)}, destination 0 has ${fmt(shape)}; one kernel writes one shape (group the pairs by shape)`);
    const layout = dst.layout();
    if (!dstElementsDistinct(dst.shape, layout.strides)) throw new Error(`assignMany: destination ${i} of shape ${fmt(dst.shape)} has overlapping elements (an expanded view); write into a real buffer`);
    if (layouts.has(layout.storage)) throw new Error(`assignMany: destinations ${pairs.findIndex(([d]) => d.layout().storage === layout.storage)} and ${i} share one buffer; pass each buffer once (or use assign for each)`);
    layouts.set(layout.storage, layout);
    layout.storage.hostIndices = null; // overwritten: a host copy of its ids no longer holds
    return { value: fusable(value), dst: layout };
  });
  for (const [i, t] of sums.entries()) {
    let fits = false;
    try {
      fits = sameShape(broadcastShapes('assignMany', t.shape, shape), shape);
    } catch {
      fits = false;
    }
    if (!fits) throw new Error(`assignMany: sum ${i} has shape ${fmt(t.shape)}, which does not broadcast to the destinations' shape ${fmt(shape)}`);
  }
  const values = [...outs.map((o) => o.value), ...sums.map(fusable)];
  const exprs = values.map((v) => broadcastExpr(v, shape));
  // A value that reads some destination at other elements (a transpose, a shifted slice) would
  // see another invocation's write: evaluate it into a temporary first, before the kernel.
  const temps: Tensor[] = [];
  const safe = exprs.map((e, i) => {
    if (!readsElsewhere(e, layouts)) return e;
    const t = Tensor.lazy(e, shape, values[i].dtype).realize();
    temps.push(t);
    return t.expr();
  });
  const partial = realizeMany(
    outs.map((o, i) => ({ expr: safe[i], dst: o.dst })),
    shape,
    safe.slice(outs.length),
  );
  temps.forEach((t) => t.dispose());
  for (const [storage, { offset, strides }] of layouts) storage.noteWrite(...viewExtent(shape, strides, offset));
  pairs.forEach(([dst, value]) => value.rebaseOnto(dst));
  if (sums.length === 0) return [];
  if (!partial) return sums.map(() => full([], 0)); // no elements: every sum is 0
  // Per-chunk rows first (rows of [chunk][sum] split into binding windows if need be), then chunks.
  const perChunk = reduce('sum', Tensor.owning(partial.partials, partial.shape), 2, false);
  const totals = partial.shape[0] === 1 ? reshape(perChunk, [sums.length]) : reduce('sum', perChunk, 0, false);
  return sums.map((_, j) => reshape(sliceView(totals, [j], [j + 1]), []));
}

