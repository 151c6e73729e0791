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
  /**
   * Refresh Sophia's h by GNB on this step's first micro-batch before the update, sharing its
   * forward pass (labels sampled with `gen`; see GPT2.lossWithGnbDelta). f32 only.
   */
  gnb?: { sophia: O.Sophia; gen: E.Generator } | null;
}

/** Forward/backward over the micro-batches, then clip and step. Returns the mean loss and the pre-clip gradient norm (0-d). */
export function trainStep(model: GPT2, opt: O.Optimizer, micro: readonly Batch[], o: StepOptions): { loss: Tensor; gradNorm: Tensor } {
  if (o.precision === 'f16' && !o.scaler) throw new Error('trainStep: f16 needs a GradScaler (small f16 gradients flush to zero without loss scaling)');
  const scaler = o.precision === 'f16' ? o.scaler : null;
  let total: Tensor | null = null;
  micro.forEach((b, i) => {
    const ids = E.tensor(b.inputs, o.shape, 'i32');
    const targets = E.tensor(b.targets, o.shape, 'i32');
    const gnb = i === 0 ? o.gnb : null;
    const { loss, delta } = gnb ? gnbForward(model, ids, targets, gnb.gen, o.precision) : { loss: autocast(o.precision, () => model.loss(ids, targets)), delta: null };
    const part = micro.length > 1 ? E.mul(loss, 1 / micro.length) : loss;
    E.backward(scaler ? scaler.scaleLoss(part) : part);
    if (gnb && delta) refreshGnb(model, gnb.sophia, delta, micro.length, o.shape[0] * o.shape[1]);
    const l = E.detach(loss);
    total = total ? E.add(total, l) : l;
  });
  scaler?.unscale(model.parameters());
  const gradNorm = O.clipGradNorm(model.parameters(), o.gradClip > 0 ? o.gradClip : Infinity);
  opt.step();
  scaler?.update(opt.lastStepFinite() ?? O.GradScaler.allFinite(model.parameters()));
  opt.zeroGrad();
  return { loss: E.mul(total!, 1 / micro.length).realize(), gradNorm };
}

function gnbForward(model: GPT2, ids: Tensor, targets: Tensor, gen: E.Generator, precision: Precision): { loss: Tensor; delta: Tensor } {
  if (precision !== 'f32') throw new Error("trainStep: the shared-forward GNB estimate runs in f32 only; under --precision f16 estimate on a separate minibatch (hessBatch: 'separate')");
  if (model.parameters().some((p) => p.grad)) throw new Error('trainStep: gradients must be zero before a step that refreshes GNB (call opt.zeroGrad() first)');
  return model.lossWithGnbDelta(ids, targets, gen);
}

/**
 * After the first micro-batch's backward, each parameter's .grad holds g/accum (they were zero):
 * ĝ = g + ∇D is GNB's gradient on that micro-batch, and h is refreshed before the step.
 */
function refreshGnb(model: GPT2, sophia: O.Sophia, delta: Tensor, accum: number, batchTokens: number): void {
  const named = model.namedParameters().map(([name, param]) => ({ name, param }));
  const gDelta = E.gradOf(delta, named.map((p) => p.param));
  const g = named.map((p) => (p.param.grad ? (accum > 1 ? E.mul(p.param.grad, accum) : p.param.grad) : null));
  sophia.updateHessian(O.gnbFromDelta(g, gDelta, named, batchTokens, sophia.form), batchTokens);
  gDelta.forEach((t) => t.dispose());
}
