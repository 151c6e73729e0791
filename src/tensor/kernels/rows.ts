// Row kernels over a contiguous [rows, n] matrix: one-pass log-sum-exp, a per-row take and
// LayerNorm's row statistics.
import { ctx } from '../../gpu/device.ts';
import { pipeline, runtime } from '../../gpu/runtime.ts';
import { fillTemplate, paramsBlock } from '../../gpu/shaders.ts';
import { Storage } from '../storage.ts';
import { grid } from './launch.ts';

// Both keep x's dtype (f32 or f16; f16 is computed in f32).
export function logsumexpRows(x: Storage, offset: number, rows: number, n: number): Storage {
  const out = Storage.allocate(rows, x.dtype);
  if (rows === 0) return out;
  const words = [rows, n, offset];
  const pipe = pipeline(fillTemplate('logsumexp', { PARAMS: paramsBlock(words.length), X_TYPE: x.dtype }), 'logsumexp');
  runtime.dispatch(pipe, Uint32Array.from(words), [{ buffer: out.buffer }, { buffer: x.buffer }], grid(rows, 1));
  return out;
}

export function takeRows(x: Storage, offset: number, rows: number, n: number, ids: Storage, idsOffset: number): Storage {
  const out = Storage.allocate(rows, x.dtype);
  if (rows === 0) return out;
  const words = [rows, n, offset];
  const pipe = pipeline(fillTemplate('take', { PARAMS: paramsBlock(words.length), X_TYPE: x.dtype }), 'take');
  const idsBinding = { buffer: ids.buffer, offset: idsOffset * 4, size: Math.max(4, rows * 4) };
  if (idsOffset % 64 !== 0) throw new Error('internal: take needs 256-byte aligned ids');
  runtime.dispatch(pipe, Uint32Array.from(words), [{ buffer: out.buffer }, { buffer: x.buffer }, idsBinding], grid(rows));
  return out;
}

/** LayerNorm's per-row mean and 1/√(var + eps) of a contiguous f32 [rows, n] matrix (shaders/layernorm_stats.wgsl). */
export function layerNormStatsRows(x: Storage, offset: number, rows: number, n: number, eps: number): { mean: Storage; rstd: Storage } {
  const mean = Storage.allocate(rows, 'f32');
  const rstd = Storage.allocate(rows, 'f32');
  if (rows === 0) return { mean, rstd };
  const words = new Uint32Array([rows, n, offset, 0]);
  new Float32Array(words.buffer, 12, 1)[0] = eps;
  // As for reductions (reduce.ts): one lane per row where rows alone fill a CPU adapter.
  const serial = n <= 32 || (ctx().isCpu && rows >= 16);
  const pipe = pipeline(fillTemplate(serial ? 'layernorm_stats_serial' : 'layernorm_stats', { PARAMS: paramsBlock(words.length) }), 'layernorm-stats');
  runtime.dispatch(pipe, words, [{ buffer: mean.buffer }, { buffer: rstd.buffer }, { buffer: x.buffer }], grid(rows, serial ? 64 : 1));
  return { mean, rstd };
}
