// Batched matmul over strided operands. Batch dims must flatten to one stride per operand
// (true for contiguous tensors, their transposes and broadcasts of a single matrix).
import { pipeline, runtime } from '../../gpu/runtime.ts';
import { fillTemplate, paramsBlock } from '../../gpu/shaders.ts';
import { Storage } from '../storage.ts';

export interface MatOperand {
  storage: Storage;
  offset: number;
  batchStride: number;
  rowStride: number;
  colStride: number;
}

export function matmulKernel(a: MatOperand, b: MatOperand, batch: number, M: number, N: number, K: number): Storage {
  const out = Storage.allocate(batch * M * N, 'f32');
  if (batch * M * N === 0) return out;
  const words = [M, N, K, a.offset, a.batchStride, a.rowStride, a.colStride, b.offset, b.batchStride, b.rowStride, b.colStride, 0];
  const source = fillTemplate('matmul', { PARAMS: paramsBlock(words.length) });
  const gx = Math.ceil(N / 32);
  const gy = Math.ceil(M / 32);
  // wid.z carries the batch; more than 65,535 matrices are split into several dispatches.
  for (let b0 = 0; b0 < batch; b0 += 65535) {
    const nb = Math.min(65535, batch - b0);
    const w = [...words];
    w[3] = a.offset + b0 * a.batchStride;
    w[7] = b.offset + b0 * b.batchStride;
    w[11] = b0 * M * N;
    runtime.dispatch(pipeline(source, 'matmul'), new Uint32Array(w), [out, a.storage, b.storage].map((s) => ({ buffer: s.buffer })), [gx, gy, nb]);
  }
  return out;
}
