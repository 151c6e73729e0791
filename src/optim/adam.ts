// Adam and AdamW, exactly torch.optim.Adam / AdamW:
//   Adam:  g ← ∇ + λθ (coupled decay)      AdamW: θ ← θ(1 − ηλ) (decoupled)
//   m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  (amsgrad: v̂ ← max(v̂, v))
//   θ ← θ − η/(1−β1ᵗ) · m / (√v / √(1−β2ᵗ) + ε)
// t is the parameter's step count. With nonFinite: 'skip' a skipped step does not count (as with
// torch's GradScaler, which skips optimizer.step()): t comes from the GPU step table, and the bias
// corrections are computed there once per step as −expm1(t·ln β) (no cancellation at small t),
// within a few f32 ulps of torch's float64 1 − βᵗ. With 'update', t counts every step on the CPU.
import * as ops from '../autograd/ops/index.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { checkRange, Optimizer, type BaseOptions, type NamedParam, type ParamGroup } from './optimizer.ts';

export interface AdamOptions extends BaseOptions {
  betas?: [number, number];
  eps?: number;
  amsgrad?: boolean;
}

export class Adam extends Optimizer {
  readonly betas: [number, number];
  readonly eps: number;
  readonly amsgrad: boolean;
  protected readonly decoupled: boolean = false;

  constructor(params: readonly NamedParam[] | readonly ParamGroup[], opts: AdamOptions) {
    super(params, opts);
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.amsgrad = opts.amsgrad ?? false;
    checkRange('beta1', this.betas[0], 0, 1, { hiOpen: true });
    checkRange('beta2', this.betas[1], 0, 1, { hiOpen: true });
    checkRange('eps', this.eps, 0, Infinity);
  }

  protected override hyperparameters(): Record<string, unknown> {
    return { betas: this.betas, eps: this.eps, amsgrad: this.amsgrad, decoupled: this.decoupled };
  }

  /** 1 − β1ᵗ and √(1 − β2ᵗ) at each parameter's finite-step count t, once per step (step table). */
  protected override stepValues(t: Tensor): Record<string, Tensor | number> {
    const [b1, b2] = this.betas;
    const bc2 = oneMinusPow(b2, t);
    return { bc1: oneMinusPow(b1, t), sqrtBc2: typeof bc2 === 'number' ? Math.sqrt(bc2) : ops.sqrt(bc2) };
  }

  protected update(p: NamedParam, grad: Tensor, lr: number, wd: number, finite: Tensor | null, t: number): void {
    const [b1, b2] = this.betas;
    let theta: Tensor = p.param;
    let g = grad;
    if (wd !== 0) {
      if (this.decoupled) theta = ops.mul(theta, 1 - lr * wd);
      else g = ops.add(g, ops.mul(theta, wd));
    }
    const m = this.buf(p, 'm');
    const v = this.buf(p, 'v');
    const m1 = ops.add(ops.mul(m, b1), ops.mul(g, 1 - b1));
    const v1 = ops.add(ops.mul(v, b2), ops.mul(ops.mul(g, g), 1 - b2));
    const updates: [Tensor, Tensor][] = [
      [m, m1],
      [v, v1],
    ];
    let second = v1;
    if (this.amsgrad) {
      const vmax = this.buf(p, 'vmax');
      second = ops.maximum(vmax, v1);
      updates.push([vmax, second]);
    }
    // The bias corrections at this parameter's finite-step count (on the GPU), or at t.
    const bc1 = this.stepValue(p, 'bc1') ?? 1 - b1 ** t;
    const sqrtBc2 = this.stepValue(p, 'sqrtBc2') ?? Math.sqrt(1 - b2 ** t);
    const denom = ops.add(ops.div(ops.sqrt(second), sqrtBc2), this.eps);
    const stepSize = typeof bc1 === 'number' ? lr / bc1 : ops.div(lr, bc1);
    // One kernel per parameter: m, v (and v̂) are computed in registers and used by θ's update.
    updates.push([p.param, ops.sub(theta, ops.mul(ops.div(m1, denom), stepSize))]);
    this.write(updates, finite);
  }
}

/** 1 − βᵗ for a tensor of counts t, as −expm1(t·ln β) (1 for β = 0). */
function oneMinusPow(beta: number, t: Tensor): Tensor | number {
  return beta === 0 ? 1 : ops.neg(ops.expm1(ops.mul(t, Math.log(beta))));
}

export class AdamW extends Adam {
  protected override readonly decoupled: boolean = true;
  constructor(params: readonly NamedParam[] | readonly ParamGroup[], opts: AdamOptions) {
    super(params, { weightDecay: 0.01, ...opts });
  }
}
