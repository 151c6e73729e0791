// Realising an expression into a (possibly strided) destination view.
import { pipeline, runtime } from '../../gpu/runtime.ts';
import { fillTemplate, paramsBlock } from '../../gpu/shaders.ts';
import { compileExpr, type Expr } from '../expr.ts';
import { contiguousStrides, numel } from '../shape.ts';
import type { Storage } from '../storage.ts';
import { grid } from './launch.ts';

export interface Destination {
  storage: Storage;
  offset: number;
  strides: readonly number[];
}

export function realizeExpr(e: Expr, shape: readonly number[], dst: Destination): void {
  const n = numel(shape);
  if (n === 0) return;
  const compiled = compileExpr(e, shape, 2, 2, dst.storage);
  const words = [n, dst.offset, ...compiled.words];
  const contiguous = contiguousStrides(shape).every((s, i) => shape[i] === 1 || s === dst.strides[i]);
  let outIndex = '  let o = P(1u) + flat;';
  if (!contiguous) {
    const lines = ['  var orem = flat;', '  var o = P(1u);'];
    for (let i = shape.length - 1; i >= 0; i--) {
      lines.push(`  o += (orem % ${shape[i]}u) * P(${words.length}u);`);
      words.push(dst.strides[i]);
      lines.push(`  orem = orem / ${shape[i]}u;`);
    }
    outIndex = lines.join('\n');
  }
  const source = fillTemplate('elementwise', {
    PARAMS: paramsBlock(words.length),
    OUT_TYPE: dst.storage.dtype,
    EXPR: compiled.code,
    OUT_INDEX: outIndex,
  });
  runtime.dispatch(
    pipeline(source, 'elementwise'),
    new Uint32Array(words),
    [dst.storage, ...compiled.storages].map((s) => ({ buffer: s.buffer })),
    grid(n),
  );
}
