// Batched matmul. Adjoints: dA = dC·Bᵀ, dB = Aᵀ·dC (transposes are free views), summed over
// broadcast batch dims.
import * as raw from '../../tensor/ops.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { record } from '../graph.ts';
import { gradFor } from './elementwise.ts';
import { transpose } from './views.ts';

export function matmul(a: Tensor, b: Tensor): Tensor {
  const out = raw.matmul(a, b);
  return record(out, 'matmul', [a, b], (g, needs) => [
    needs[0] ? gradFor(a, matmul(g, transpose(b))) : null,
    needs[1] ? gradFor(b, matmul(transpose(a), g)) : null,
  ]);
}
