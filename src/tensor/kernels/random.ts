import { pipeline, runtime } from '../../gpu/runtime.ts';
import { fillTemplate, paramsBlock } from '../../gpu/shaders.ts';
import { Storage } from '../storage.ts';
import { grid } from './launch.ts';

export type RandomKind = 'uniform' | 'normal' | 'bernoulli';
const KIND = { uniform: 0, normal: 1, bernoulli: 2 } as const;

/** Fills a new storage with `count` draws; (seed, counter) fully determine the bits. */
export function randomKernel(count: number, kind: RandomKind, seed: number, counter: number, a: number, b: number): Storage {
  const out = Storage.allocate(count, 'f32');
  if (count === 0) return out;
  const f = new Float32Array([a, b]);
  const fw = new Uint32Array(f.buffer);
  const words = [count, seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0, counter >>> 0, KIND[kind], fw[0], fw[1]];
  const source = fillTemplate('philox', { PARAMS: paramsBlock(words.length) });
  runtime.dispatch(pipeline(source, 'philox'), new Uint32Array(words), [{ buffer: out.buffer }], grid(count));
  return out;
}
