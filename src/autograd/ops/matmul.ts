// Batched matmul. Adjoints: dA = dC·Bᵀ, dB = Aᵀ·dC (transposes are free views), summed over
// broadcast batch dims.
import * as raw from '../../tensor/ops.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { isGradEnabled, record } from '../graph.ts';
import { gradFor } from './elementwise.ts';
import { transpose } from './views.ts';

/** `defer`: see raw.matmul; the product's kernel waits until its value is read. */
export function matmul(a: Tensor, b: Tensor, opts: { defer?: boolean } = {}): Tensor {
  const out = raw.matmul(a, b, opts);
  return record(out, 'matmul', [a, b], (g, needs) => {
    // A lazy g (the LM head's [rows, V] softmax − one-hot per chunk) is computed once for both
    // products. In a plain backward it goes to a temporary freed right after them; realised in
    // place it would live as long as g, i.e. every chunk's until the step ends. With createGraph
    // the recorded products hold g anyway, so it is realised in place (raw.matmul does that).
    const recording = isGradEnabled();
    const once = g.isLazy && !recording ? g.contiguousCopy() : g;
    // With createGraph, dB (a weight's gradient, dW = xᵀ·dy) is deferred: an HVP differentiates
    // only its graph, so its value is never needed, and the kernel (a third of the first
    // backward's matmul work) is then never run. Anything that reads it runs it then.
    const grads = [needs[0] ? gradFor(a, matmul(once, transpose(b))) : null, needs[1] ? gradFor(b, matmul(transpose(a), once, { defer: recording })) : null];
    if (once !== g) once.dispose();
    return grads;
  });
}

