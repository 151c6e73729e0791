// Row reductions of a fused expression: the expression is viewed as [rows, inner] and each
// row is reduced to one f32. Callers permute the reduced axes to the end first.
import { pipeline, runtime } from '../../gpu/runtime.ts';
import { fillTemplate, paramsBlock } from '../../gpu/shaders.ts';
import { compileExpr, type Expr } from '../expr.ts';
import { Storage } from '../storage.ts';
import { grid } from './launch.ts';

export type ReduceOp = 'sum' | 'max' | 'min';

const COMBINE: Record<ReduceOp, [string, string]> = {
  sum: ['a + b', '0.0'],
  // ±inf cannot be a WGSL constant; `infBits` is a var the template sets to 0x7f800000.
  max: ['max(a, b)', '-bitcast<f32>(infBits)'],
  min: ['min(a, b)', 'bitcast<f32>(infBits)'],
};

/** Reduces `e` (of `shape` = [...rows dims, ...inner dims]) into a new [rows] storage. */
export function reduceRows(e: Expr, shape: readonly number[], rows: number, inner: number, op: ReduceOp): Storage {
  const out = Storage.allocate(rows, 'f32');
  if (rows === 0) return out;
  const compiled = compileExpr(e, shape, 2, 2);
  const words = [rows, inner, ...compiled.words];
  const serial = inner <= 32;
  const [combine, init] = COMBINE[op];
  const source = fillTemplate(serial ? 'reduce_serial' : 'reduce', {
    PARAMS: paramsBlock(words.length),
    EXPR: compiled.code,
    COMBINE: combine,
    INIT: init,
  });
  runtime.dispatch(
    pipeline(source, `reduce_${op}`),
    new Uint32Array(words),
    [out, ...compiled.storages].map((s) => ({ buffer: s.buffer })),
    serial ? grid(rows) : grid(rows, 1),
  );
  return out;
}
