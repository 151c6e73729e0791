// Optimizer state on disk, next to the model: `<dir>/<name>.safetensors` holds the state tensors
// (`state.<param>.<key>`, e.g. state.h.0.attn.c_attn.weight.m) and `<dir>/<name>.json` the
// hyperparameters and counters (kind, lr, stepCount, Sophia's refreshes and B). Both files are
// written atomically (temporary file, fsync, rename). Uses the model's safetensors codec.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ops from '../autograd/ops/index.ts';
import { readSafetensors, writeFileAtomic, writeSafetensors, type HostTensor } from '../nn/safetensors.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { Optimizer } from './optimizer.ts';

/** Reads the optimizer's state back from the GPU and writes it to `dir` (one readback per tensor). */
export async function saveOptimizer(dir: string, opt: Optimizer, name = 'optimizer'): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const sd = opt.stateDict();
  const host = new Map<string, HostTensor>();
  for (const [key, t] of sd.tensors) {
    host.set(key, t.dtype === 'i32' ? { dtype: 'I32', shape: [...t.shape], data: await t.toInt32Array() } : { dtype: 'F32', shape: [...t.shape], data: await t.toArray() });
  }
  writeSafetensors(join(dir, `${name}.safetensors`), host, { format: 'pt', kind: String(sd.json.kind) });
  writeFileAtomic(join(dir, `${name}.json`), JSON.stringify(sd.json, null, 2) + '\n');
}

/** Loads state written by saveOptimizer into `opt` (same kind and parameter names). */
export function loadOptimizer(dir: string, opt: Optimizer, name = 'optimizer'): void {
  const jsonPath = join(dir, `${name}.json`);
  const tensorsPath = join(dir, `${name}.safetensors`);
  for (const p of [jsonPath, tensorsPath]) if (!existsSync(p)) throw new Error(`loadOptimizer: ${p} does not exist`);
  const json = JSON.parse(readFileSync(jsonPath, 'utf8')) as Record<string, unknown>;
  const tensors = new Map<string, Tensor>();
  for (const [key, t] of readSafetensors(tensorsPath).tensors) tensors.set(key, ops.tensor(t.data, t.shape, t.dtype === 'I32' ? 'i32' : 'f32'));
  opt.loadStateDict({ json, tensors });
}
