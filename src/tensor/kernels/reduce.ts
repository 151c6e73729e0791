// Row reductions of a fused expression: the expression is viewed as [rows, inner] and each
// row is reduced to one f32. Callers permute the reduced axes to the end first.
import { ctx } from '../../gpu/device.ts';
import { pipeline, runtime } from '../../gpu/runtime.ts';
import { fillTemplate, paramsBlock } from '../../gpu/shaders.ts';
import { compileExpr, type Expr } from '../expr.ts';
import { Storage } from '../storage.ts';
import { contiguousStrides, numel } from '../shape.ts';
import { grid } from './launch.ts';
import { planChunks } from './windows.ts';

export type ReduceOp = 'sum' | 'max' | 'min';

const COMBINE: Record<ReduceOp, [string, string]> = {
  sum: ['a + b', '0.0'],
  // ±inf cannot be a WGSL constant; `infBits` is a var the template sets to 0x7f800000.
  max: ['max(a, b)', '-bitcast<f32>(infBits)'],
  min: ['min(a, b)', 'bitcast<f32>(infBits)'],
};

/** Reduces `e` (of `shape` = [...row dims (rowDims of them), ...inner dims]) into a new [rows] storage. */
export function reduceRows(e: Expr, shape: readonly number[], rowDims: number, op: ReduceOp, outDtype: 'f32' | 'f16' = 'f32'): Storage {
  const rows = numel(shape.slice(0, rowDims));
  const inner = numel(shape.slice(rowDims));
  const out = Storage.allocate(rows, outDtype);
  if (rows === 0) return out;
  const compiled = compileExpr(e, shape, 3, 2);
  const words = [rows, inner, 0, ...compiled.words];
  // One invocation per row beats a workgroup tree wherever rows alone fill the machine on a CPU
  // adapter (lavapipe: 3–5× at [512, 128] … [8192, 768], where barriers dominate the tree).
  const serial = inner <= 32 || (ctx().isCpu && rows >= 16);
  const [combine, init] = COMBINE[op];
  const source = fillTemplate(serial ? 'reduce_serial' : 'reduce', {
    PARAMS: paramsBlock(words.length),
    EXPR: compiled.code,
    COMBINE: combine,
    INIT: init,
    OUT_TYPE: outDtype,
  });
  const pipe = pipeline(source, `reduce_${op}`);
  // Chunks split dim 0; with no row dims (a total reduction) dim 0 is reduced and cannot be
  // split, so planChunks is given a 1-row view then (ops.reduce pre-reduces huge inputs).
  const rowsPerDim0 = rowDims > 0 ? rows / shape[0] : 1;
  const outStrides = contiguousStrides(shape.slice(0, rowDims)).concat(shape.slice(rowDims).map(() => 0));
  const planShape = rowDims > 0 ? shape : [1, ...shape];
  const outAccess = { storage: out, offset: 0, strides: rowDims > 0 ? outStrides : [0, ...outStrides] };
  const leaves = compiled.leafOffsets.map((l) => (rowDims > 0 ? l : { ...l, strides: [0, ...l.strides] }));
  for (const c of planChunks(planShape, [outAccess, ...leaves])) {
    const w = Uint32Array.from(words);
    const n = (c.r1 - c.r0) * rowsPerDim0;
    w[0] = n;
    w[2] = c.r0 * rowsPerDim0 - c.base.get(out)!;
    if (compiled.dim0Word >= 0 && rowDims > 0) w[compiled.dim0Word] = c.r1 - c.r0;
    w[compiled.base0Word] = c.r0;
    for (const l of compiled.leafOffsets) w[l.word] = l.offset + c.r0 * (l.strides[0] ?? 0) - c.base.get(l.storage)!;
    runtime.dispatch(pipe, w, [out, ...compiled.storages].map((s) => c.bindings.get(s)!), serial ? grid(n) : grid(n, 1));
  }
  return out;
}
