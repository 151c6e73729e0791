// softmax and log-softmax, composed: the max shift, exp, sum and divide fuse into two kernels
// (one reduction for the max, one for the sum) and their derivatives of any order come from
// the pieces.
import { noGrad } from '../graph.ts';
import * as raw from '../../tensor/ops.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { div, exp, sub } from './elementwise.ts';
import { logsumexp, sum } from './reduce.ts';

export function softmax(x: Tensor, axis = -1): Tensor {
  const m = noGrad(() => raw.reduce('max', x, axis, true));
  const e = exp(sub(x, m));
  return div(e, sum(e, axis, true));
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return sub(x, logsumexp(x, axis, true));
}
