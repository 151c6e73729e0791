import { bindingLimit, pipeline, runtime } from '../../gpu/runtime.ts';
import { fillTemplate, paramsBlock, shaderTemplate } from '../../gpu/shaders.ts';
import { Storage } from '../storage.ts';
import { grid } from './launch.ts';

/** A counter (an integer below 2⁵³) as the (low, high) 32-bit words the shaders add to. */
const words64 = (x: number) => [x >>> 0, Math.floor(x / 2 ** 32) >>> 0] as const;

export type RandomKind = 'uniform' | 'normal' | 'bernoulli';
const KIND = { uniform: 0, normal: 1, bernoulli: 2 } as const;

/** Fills a new storage with `count` draws; (seed, counter) fully determine the bits. */
export function randomKernel(count: number, kind: RandomKind, seed: number, counter: number, a: number, b: number): Storage {
  const out = Storage.allocate(count, 'f32');
  if (count === 0) return out;
  const f = new Float32Array([a, b]);
  const fw = new Uint32Array(f.buffer);
  const pipe = pipeline(fillTemplate('philox', { PARAMS: paramsBlock(9), PHILOX: shaderTemplate('philox_core') }), 'philox');
  // Windows of whole 256-byte blocks when the output is larger than one binding.
  const per = out.buffer.size <= bindingLimit() ? count : Math.floor(bindingLimit() / 256) * 64;
  for (let start = 0; start < count; start += per) {
    const n = Math.min(per, count - start);
    const words = [n, ...words64(seed), words64(counter)[0], KIND[kind], fw[0], fw[1], start, words64(counter)[1]];
    runtime.dispatch(pipe, new Uint32Array(words), [{ buffer: out.buffer, offset: start * 4, size: n * 4 }], grid(n));
  }
  return out;
}

/** Clamp of u into (0, 1) before −log(−log u): the same f32 bounds as the composed sampler. */
export const GUMBEL_U_RANGE: readonly [number, number] = [1e-10, 1 - 1e-7];

/**
 * Fused Gumbel-max sampling over the rows of contiguous logits [rows, n]; the uniforms are those
 * of a uniform draw over [rows, n] at (seed, counter), so it agrees with the composed sampler.
 */
export function categoricalKernel(x: Storage, offset: number, rows: number, n: number, seed: number, counter: number): Storage {
  const out = Storage.allocate(rows, 'i32');
  if (rows === 0) return out;
  const f = new Uint32Array(new Float32Array(GUMBEL_U_RANGE).buffer);
  const words = [rows, n, offset, ...words64(seed), words64(counter)[0], f[0], f[1], words64(counter)[1]];
  const pipe = pipeline(fillTemplate('categorical', { PARAMS: paramsBlock(words.length), X_TYPE: x.dtype, PHILOX: shaderTemplate('philox_core') }), 'categorical');
  runtime.dispatch(pipe, Uint32Array.from(words), [{ buffer: out.buffer }, { buffer: x.buffer }], grid(rows, 1));
  return out;
}

/**
 * One sample per row of x [rows, n] by inverse CDF (categorical_icdf.wgsl): one uniform per row,
 * from Philox blocks counter … counter + rows − 1.
 */
export function categoricalIcdfKernel(x: Storage, offset: number, rows: number, n: number, seed: number, counter: number): Storage {
  const out = Storage.allocate(rows, 'i32');
  if (rows === 0) return out;
  const words = [rows, n, offset, ...words64(seed), ...words64(counter)];
  const pipe = pipeline(fillTemplate('categorical_icdf', { PARAMS: paramsBlock(words.length), X_TYPE: x.dtype, PHILOX: shaderTemplate('philox_core') }), 'categorical_icdf');
  runtime.dispatch(pipe, Uint32Array.from(words), [{ buffer: out.buffer }, { buffer: x.buffer }], grid(rows, 1));
  return out;
}
