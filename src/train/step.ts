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
   * Refresh Sophia's h on this step's first micro-batch before the update, sharing its forward
   * and backward (f32 only): 'gnb' samples labels with `gen` (GPT2.lossWithGnbDelta: one more
   * backward through the blocks); 'hutchinson' records the step's backward and seeds a second
   * one with a probe u from `gen` (Rademacher unless `probe` says 'gaussian'; H·u, exact). The gradient step itself is unchanged.
   */
  hessian?: { sophia: O.Sophia; gen: E.Generator; estimator: 'gnb' | 'hutchinson'; probe?: O.Probe } | null;
  /** Called with the accumulated (unscaled) gradients in each parameter's .grad, before clipping and the update: read them lazily or edit them. */
  onGradients?: (model: GPT2) => void;
}

/** Forward/backward over the micro-batches, then clip and step. Returns the mean loss and the pre-clip gradient norm (0-d). */
export function trainStep(model: GPT2, opt: O.Optimizer, micro: readonly Batch[], o: StepOptions): { loss: Tensor; gradNorm: Tensor } {
  if (o.precision === 'f16' && !o.scaler) throw new Error('trainStep: f16 needs a GradScaler (small f16 gradients flush to zero without loss scaling)');
  const scaler = o.precision === 'f16' ? o.scaler : null;
  let total: Tensor | null = null;
  micro.forEach((b, i) => {
    const ids = E.tensor(b.inputs, o.shape, 'i32');
    const targets = E.tensor(b.targets, o.shape, 'i32');
    const hess = i === 0 ? o.hessian : null;
    if (hess) checkSharedEstimate(model, o.precision);
    const { loss, delta } =
      hess?.estimator === 'gnb' ? model.lossWithGnbDelta(ids, targets, hess.gen) : { loss: autocast(o.precision, () => model.loss(ids, targets)), delta: null };
    const part = micro.length > 1 ? E.mul(loss, 1 / micro.length) : loss;
    const createGraph = hess?.estimator === 'hutchinson';
    E.backward(scaler ? scaler.scaleLoss(part) : part, undefined, { createGraph });
    const batchTokens = o.shape[0] * o.shape[1];
    if (hess && delta) refreshGnb(model, hess.sophia, delta, micro.length, batchTokens);
    if (hess && createGraph) refreshHutchinson(model, hess.sophia, hess.gen, micro.length, hess.probe ?? 'rademacher');
    const l = E.detach(loss);
    total = total ? E.add(total, l) : l;
  });
  scaler?.unscale(model.parameters());
  o.onGradients?.(model);
  const gradNorm = O.clipGradNorm(model.parameters(), o.gradClip > 0 ? o.gradClip : Infinity);
  opt.step();
  scaler?.update(opt.lastStepFinite() ?? O.GradScaler.allFinite(model.parameters()));
  opt.zeroGrad();
  return { loss: E.mul(total!, 1 / micro.length).realize(), gradNorm };
}

function checkSharedEstimate(model: GPT2, precision: Precision): void {
  if (precision !== 'f32') throw new Error("trainStep: a Hessian estimate sharing the step's forward runs in f32 only; under --precision f16 estimate on a separate minibatch (hessBatch: 'separate')");
  if (model.parameters().some((p) => p.grad)) throw new Error('trainStep: gradients must be zero before a step that refreshes the Hessian estimate (call opt.zeroGrad() first)');
}

const namedOf = (model: GPT2) => model.namedParameters().map(([name, param]) => ({ name, param }));

/**
 * After the first micro-batch's backward, each parameter's .grad holds g/accum (they were zero):
 * ĝ = g + ∇D is GNB's gradient on that micro-batch, and h is refreshed before the step.
 */
function refreshGnb(model: GPT2, sophia: O.Sophia, delta: Tensor, accum: number, batchTokens: number): void {
  const named = namedOf(model);
  const gDelta = E.gradOf(delta, named.map((p) => p.param));
  const g = named.map((p) => (p.param.grad ? (accum > 1 ? E.mul(p.param.grad, accum) : p.param.grad) : null));
  sophia.updateHessian(O.gnbFromDelta(g, gDelta, named, batchTokens, sophia.form), batchTokens);
  gDelta.forEach((t) => t.dispose());
}

/**
 * The first micro-batch's backward was recorded, so each .grad (g/accum) is differentiable:
 * seeding them with a probe u (Rademacher or Gaussian) gives H·u/accum, and ĥ = u⊙(H·u) (Hutchinson, no B).
 * Then each .grad becomes a plain buffer of its own again (the optimizer and clipping update
 * gradients in place; recorded ones may share storage).
 */
function refreshHutchinson(model: GPT2, sophia: O.Sophia, gen: E.Generator, accum: number, probe: O.Probe): void {
  const named = namedOf(model).filter((p) => p.param.grad);
  const params = named.map((p) => p.param);
  const u = params.map((p) => (probe === 'gaussian' ? gen.randn([...p.shape]) : gen.rademacher([...p.shape])).realize());
  const hu = E.vjpOf(params.map((p) => p.grad!), u, params);
  sophia.updateHessian(new Map(named.map((p, i) => [p.name, E.mul(E.mul(u[i], hu[i]), accum)])), 1);
  [...u, ...hu].forEach((t) => t.dispose());
  const own = E.noGrad(() => params.map((p) => E.detach(p.grad!).contiguousCopy()));
  new Set(params.map((p) => p.grad!)).forEach((g) => g.dispose());
  params.forEach((p, i) => (p.grad = own[i]));
}
