// One kernel, several outputs: realises N expressions of one shape into N destination views in a
// single dispatch (per binding window). Optimizers use it so a step reads θ, g and the state
// once and writes all of them, instead of one kernel per state tensor that re-reads the rest.
import { ctx } from '../../gpu/device.ts';
import { pipeline, runtime } from '../../gpu/runtime.ts';
import { fillTemplate, paramsBlock } from '../../gpu/shaders.ts';
import { compileExprs, type Expr } from '../expr.ts';
import { numel } from '../shape.ts';
import { Storage } from '../storage.ts';
import { destinationIndex, realizeExpr, type Destination } from './elementwise.ts';
import { grid } from './launch.ts';
import { planChunks } from './windows.ts';

/**
 * Writes `outs[i].expr` into `outs[i].dst` for every element of `shape`, all from the values the
 * buffers held before the dispatch. Callers guarantee: distinct destination storages, and leaves
 * that read a destination's storage read it exactly at that destination's layout.
 * With `sums`, the same kernel also adds up each sum expression over all elements (values from
 * before the dispatch, like the outputs): the result is a [chunks, sums, invocations] storage of
 * per-invocation partials, to be summed over axes 0 and 2.
 */
export function realizeMany(outs: readonly { expr: Expr; dst: Destination }[], shape: readonly number[], sums: readonly Expr[] = []): { partials: Storage; shape: [number, number, number] } | null {
  const n = numel(shape);
  if (n === 0 || outs.length + sums.length === 0) return null;
  const N = outs.length;
  const S = sums.length;
  const aliases = new Map<Storage, string>(outs.map((o, i) => [o.dst.storage, `out${i}`]));
  const compiled = compileExprs(
    [...outs.map((o) => o.expr), ...sums],
    shape,
    1 + N,
    1 + N,
    aliases,
    { multi: true, hoist: true },
  );
  const bindingCount = N + compiled.storages.length + (S > 0 ? 1 : 0);
  const maxBindings = ctx().limits.maxStorageBuffersPerShaderStage;
  if (bindingCount > maxBindings) {
    throw new Error(`assignMany: ${N} outputs${S ? ` and ${S} sums` : ''} reading ${compiled.storages.length} other buffers need ${bindingCount} storage bindings, but this adapter allows ${maxBindings} per kernel; split the call into fewer outputs or realise some inputs first`);
  }
  const words = [n, ...outs.map((o) => o.dst.offset), ...compiled.words];
  const stores = outs.map((o, i) =>
    ['  {', ...destinationIndex(shape, o.dst, 1 + i, words).map((l) => `    ${l}`), `    out${i}[o] = ${o.dst.storage.dtype}(r[${i}]);`, '  }'].join('\n'),
  );
  // Sums: the partials binding comes after the inputs; P(partialWord) = 0 (the chunk's slice is
  // bound at its offset), P(partialWord + 1) = the stride between sums.
  const partialWord = words.length;
  if (S > 0) words.push(0, 0);
  const acc = Array.from({ length: S }, (_, j) => `  acc[${j}] += r[${N + j}];`);
  // One partial per invocation (4 elements): a workgroup tree reduction needs barriers, which on
  // lavapipe made Sophia's step 3.5× slower; n/4 extra floats cost far less.
  const finish = [`  for (var j = 0u; j < ${S}u; j++) { partials[P(${partialWord}u) + j * P(${partialWord + 1}u) + gid.x + gid.y * nwg.x * 64u] = acc[j]; }`];
  const source = fillTemplate('elementwise_multi', {
    PARAMS: paramsBlock(words.length),
    OUT_DECLS: outs.map((o, i) => `@group(0) @binding(${1 + i}) var<storage, read_write> out${i}: array<${o.dst.storage.dtype}>;`).join('\n'),
    SUM_DECLS: S
      ? [
          `@group(0) @binding(${1 + N + compiled.storages.length}) var<storage, read_write> partials: array<f32>;`,
          `var<private> acc: array<f32, ${S}>;`,
        ].join('\n')
      : '',
    SUM_ACCUMULATE: acc.join('\n'),
    EXPR: compiled.code,
    STORES: stores.join('\n'),
    RANK: Math.max(shape.length, 1),
    MAIN: fillTemplate('elementwise_main', { RANK: Math.max(shape.length, 1), LAST: Math.max(shape.length - 1, 0), FINISH: S ? finish.join('\n') : '' }),
  });
  const pipe = pipeline(source, 'elementwise_multi');
  const rowSize = shape.length ? n / shape[0] : 1;
  const chunks = planChunks(shape, [...outs.map((o) => o.dst), ...compiled.leafOffsets]);
  // Partials are laid out [chunk][sum][invocation], each chunk binding only its own slice (so a
  // windowed dispatch stays within the binding limit); slices are padded to the longest chunk.
  const invocationsOf = (c: { r0: number; r1: number }) => {
    const [x, y] = grid(Math.ceil(((c.r1 - c.r0) * rowSize) / 4));
    return x * y * 64;
  };
  const stride = Math.max(...chunks.map(invocationsOf));
  const partials = S === 0 ? null : chunks.length === 1 ? Storage.allocate(S * stride, 'f32') : zeroFilled(chunks.length * S * stride);
  for (const [ci, c] of chunks.entries()) {
    const w = Uint32Array.from(words);
    const count = (c.r1 - c.r0) * rowSize;
    w[0] = count;
    outs.forEach((o, i) => (w[1 + i] = o.dst.offset + c.r0 * (o.dst.strides[0] ?? 0) - c.base.get(o.dst.storage)!));
    if (compiled.dim0Word >= 0) w[compiled.dim0Word] = c.r1 - c.r0;
    w[compiled.base0Word] = c.r0;
    for (const l of compiled.leafOffsets) w[l.word] = l.offset + c.r0 * (l.strides[0] ?? 0) - c.base.get(l.storage)!;
    const bindings = [...outs.map((o) => o.dst.storage), ...compiled.storages].map((s) => c.bindings.get(s)!);
    if (partials) {
      w[partialWord] = 0;
      w[partialWord + 1] = stride;
      bindings.push({ buffer: partials.buffer, offset: ci * S * stride * 4, size: S * stride * 4 });
    }
    runtime.dispatch(pipe, w, bindings, grid(Math.ceil(count / 4)));
  }
  return partials ? { partials, shape: [chunks.length, S, stride] } : null;
}

function zeroFilled(n: number): Storage {
  const s = Storage.allocate(n, 'f32');
  realizeExpr({ k: 'const', value: 0 }, [n], { storage: s, offset: 0, strides: [1] });
  return s;
}
