// Realising an expression into a (possibly strided) destination view.
import { pipeline, runtime } from '../../gpu/runtime.ts';
import { fillTemplate, paramsBlock } from '../../gpu/shaders.ts';
import { compileExpr, type Expr } from '../expr.ts';
import { contiguousStrides, numel } from '../shape.ts';
import type { Storage } from '../storage.ts';
import { grid } from './launch.ts';
import { planChunks } from './windows.ts';

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
  const chunks = planChunks(shape, [dst, ...compiled.leafOffsets]);
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
