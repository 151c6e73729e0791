// Realising an expression into a (possibly strided) destination view.
import { pipeline, runtime } from '../../gpu/runtime.ts';
import { fillTemplate, paramsBlock } from '../../gpu/shaders.ts';
import { compileExpr, mapLeaves, type Expr } from '../expr.ts';
import { contiguousStrides, numel } from '../shape.ts';
import { BYTES, type Storage } from '../storage.ts';
import { grid } from './launch.ts';
import { bindingLimit, planChunks, tryPlanChunks, type Access } from './windows.ts';

export interface Destination {
  storage: Storage;
  offset: number;
  strides: readonly number[];
}

/**
 * WGSL statements that set `o`, the index of element `flat` in a destination view whose offset is
 * P(offsetWord), appending the parameter words they read to `words`. A contiguous view needs one
 * addition; a strided one (a view) decomposes flat into coordinates, dim 0 without a modulo so
 * chunked dispatches (which shorten dim 0) share these words.
 */
export function destinationIndex(shape: readonly number[], dst: Destination, offsetWord: number, words: number[]): string[] {
  const contiguous = contiguousStrides(shape).every((s, i) => shape[i] === 1 || s === dst.strides[i]);
  if (contiguous) return [`let o = P(${offsetWord}u) + flat;`];
  const lines = ['var orem = flat;', `var o = P(${offsetWord}u);`];
  for (let i = shape.length - 1; i >= 1; i--) {
    lines.push(`o += (orem % P(${words.length}u)) * P(${words.length + 1}u);`, `orem = orem / P(${words.length}u);`);
    words.push(shape[i], dst.strides[i]);
  }
  lines.push(`o += orem * P(${words.length}u);`);
  words.push(dst.strides[0]);
  return lines;
}

export function realizeExpr(e: Expr, shape: readonly number[], dst: Destination): void {
  const n = numel(shape);
  if (n === 0) return;
  const compiled = compileExpr(e, shape, 2, 2, dst.storage, { hoist: true });
  const accesses: Access[] = [dst, ...compiled.leafOffsets];
  const chunks = tryPlanChunks(shape, accesses);
  if (!chunks) return realizeInBlocks(e, shape, dst, accesses);
  const words = [n, dst.offset, ...compiled.words];
  const outIndex = destinationIndex(shape, dst, 1, words)
    .map((l) => `  ${l}`)
    .join('\n');
  const source = fillTemplate('elementwise', {
    PARAMS: paramsBlock(words.length),
    OUT_TYPE: dst.storage.dtype,
    EXPR: compiled.code,
    OUT_INDEX: outIndex,
    RANK: Math.max(shape.length, 1),
    MAIN: fillTemplate('elementwise_main', { RANK: Math.max(shape.length, 1), LAST: Math.max(shape.length - 1, 0), FINISH: '' }),
  });
  const pipe = pipeline(source, 'elementwise');
  const rowSize = shape.length ? n / shape[0] : 1;
  for (const c of chunks) {
    const w = Uint32Array.from(words);
    const count = (c.r1 - c.r0) * rowSize;
    w[0] = count;
    w[1] = dst.offset + c.r0 * (dst.strides[0] ?? 0) - c.base.get(dst.storage)!;
    if (compiled.dim0Word >= 0) w[compiled.dim0Word] = c.r1 - c.r0;
    w[compiled.base0Word] = c.r0;
    for (const l of compiled.leafOffsets) w[l.word] = l.offset + c.r0 * (l.strides[0] ?? 0) - c.base.get(l.storage)!;
    const bindings = [dst.storage, ...compiled.storages].map((s) => c.bindings.get(s)!);
    runtime.dispatch(pipe, w, bindings, grid(Math.ceil(count / 4)));
  }
}

/**
 * Realises `e` in halves along a second axis, where even one row along the first does not fit a
 * binding: an operand read through a transpose (a gradient accumulated from a transposed product)
 * spans its whole buffer in every row. The axis cut is the one with the largest stride in the
 * accesses whose rows are too wide, so each half spans half as much of them; each half is an
 * ordinary realisation (chunked by rows, or halved again) of the expression sliced there into the
 * destination's slice.
 */
function realizeInBlocks(e: Expr, shape: readonly number[], dst: Destination, accesses: readonly Access[]): void {
  const rowBytes = (a: Access) => (shape.reduce((sum, d, k) => (k > 0 ? sum + (d - 1) * Math.abs(a.strides[k] ?? 0) : sum), 0) + 1) * BYTES[a.storage.dtype];
  const wide = accesses.filter((a) => rowBytes(a) > bindingLimit());
  const stride = (k: number) => Math.max(...(wide.length ? wide : accesses).map((a) => Math.abs(a.strides[k] ?? 0)));
  const axis = shape.map((_, k) => k).filter((k) => k > 0 && shape[k] > 1).sort((x, y) => stride(y) - stride(x))[0];
  if (axis === undefined) return void planChunks(shape, accesses); // throws, naming the shape and the limit
  const half = Math.ceil(shape[axis] / 2);
  for (const [c0, c1] of [[0, half], [half, shape[axis]]]) {
    const expr = mapLeaves(
      e,
      (l) => ({ ...l, offset: l.offset + c0 * l.strides[axis] }),
      (i) => (i.axis === axis ? { k: 'bin', op: 'add', a: i, b: { k: 'const', value: c0 } } : i),
    );
    realizeExpr(expr, shape.map((d, k) => (k === axis ? c1 - c0 : d)), { ...dst, offset: dst.offset + c0 * dst.strides[axis] });
  }
}
