// One optimizer step of GPT-2, in f32 or mixed precision. Under 'f16' the forward runs in
// autocast('f16') and the loss is multiplied by the scaler's scale before backward; gradients
// (f32: the parameters are f32 master weights) are unscaled before clipping, the optimizer skips
// the step on the GPU if any is non-finite, and the scaler updates from that same verdict.
// Records GPU work only; nothing is read back.
import * as E from '../index.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { autocast, type GPT2, type Precision } from '../nn/index.ts';
import * as O from '../optim/index.ts';

export interface Batch {
  inputs: Int32Array;
  targets: Int32Array;
}

export interface StepOptions {
  precision: Precision;
  /** Required for 'f16'. */
  scaler: O.GradScaler | null;
  /** Global-norm clipping threshold (≤ 0: none). */
  gradClip: number;
  /** [batch, context] of every micro-batch. */
  shape: [number, number];
}

/** Forward/backward over the micro-batches, then clip and step. Returns the mean loss and the pre-clip gradient norm (0-d). */
export function trainStep(model: GPT2, opt: O.Optimizer, micro: readonly Batch[], o: StepOptions): { loss: Tensor; gradNorm: Tensor } {
  if (o.precision === 'f16' && !o.scaler) throw new Error('trainStep: f16 needs a GradScaler (small f16 gradients flush to zero without loss scaling)');
  const scaler = o.precision === 'f16' ? o.scaler : null;
  let total: Tensor | null = null;
  for (const b of micro) {
    const loss = autocast(o.precision, () => model.loss(E.tensor(b.inputs, o.shape, 'i32'), E.tensor(b.targets, o.shape, 'i32')));
    const part = micro.length > 1 ? E.mul(loss, 1 / micro.length) : loss;
    E.backward(scaler ? scaler.scaleLoss(part) : part);
    const l = E.detach(loss);
    total = total ? E.add(total, l) : l;
  }
  scaler?.unscale(model.parameters());
  const gradNorm = O.clipGradNorm(model.parameters(), o.gradClip > 0 ? o.gradClip : Infinity);
  opt.step();
  scaler?.update(opt.lastStepFinite() ?? O.GradScaler.allFinite(model.parameters()));
  opt.zeroGrad();
  return { loss: E.mul(total!, 1 / micro.length).realize(), gradNorm };
}
