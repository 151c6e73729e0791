import { bindingLimit, pipeline, runtime } from '../../gpu/runtime.ts';
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
  const pipe = pipeline(fillTemplate('philox', { PARAMS: paramsBlock(8) }), 'philox');
  // Windows of whole 256-byte blocks when the output is larger than one binding.
  const per = out.buffer.size <= bindingLimit() ? count : Math.floor(bindingLimit() / 256) * 64;
  for (let start = 0; start < count; start += per) {
    const n = Math.min(per, count - start);
    const words = [n, seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0, counter >>> 0, KIND[kind], fw[0], fw[1], start];
    runtime.dispatch(pipe, new Uint32Array(words), [{ buffer: out.buffer, offset: start * 4, size: n * 4 }], grid(n));
  }
  return out;
}
