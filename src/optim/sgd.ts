// SGD with momentum, dampening, Nesterov and (coupled) weight decay: torch.optim.SGD's update.
//   g ← ∇ + λθ;  b ← g (first step) or μb + (1−τ)g;  g ← g + μb (Nesterov) or b;  θ ← θ − ηg
// "First step" is the parameter's first step that was not skipped (nonFinite: 'skip', decided on
// the GPU from the step table's count), as with torch's GradScaler.
import * as ops from '../autograd/ops/index.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { checkRange, Optimizer, type BaseOptions, type NamedParam, type ParamGroup } from './optimizer.ts';

export interface SGDOptions extends BaseOptions {
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
}

export class SGD extends Optimizer {
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;

  constructor(params: readonly NamedParam[] | readonly ParamGroup[], opts: SGDOptions) {
    super(params, opts);
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.nesterov = opts.nesterov ?? false;
    checkRange('momentum', this.momentum, 0, 1, { hiOpen: true });
    checkRange('dampening', this.dampening, 0, 1);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) throw new RangeError('SGD: Nesterov momentum requires momentum > 0 and dampening = 0');
  }

  protected override hyperparameters(): Record<string, unknown> {
    return { momentum: this.momentum, dampening: this.dampening, nesterov: this.nesterov };
  }

  protected update(p: NamedParam, grad: Tensor, lr: number, wd: number, finite: Tensor | null, t: number): void {
    let g = wd !== 0 ? ops.add(grad, ops.mul(p.param, wd)) : grad;
    if (this.momentum === 0) {
      this.write([[p.param, ops.sub(p.param, ops.mul(g, lr))]], finite);
      return;
    }
    const b = this.buf(p, 'momentum');
    // torch initialises the buffer with the parameter's first gradient (no dampening then).
    const later = ops.add(ops.mul(b, this.momentum), ops.mul(g, 1 - this.dampening));
    const count = this.stepValue(p, 'count');
    const b1 = count ? ops.where(ops.eq(count, 1), g, later) : t === 1 ? g : later;
    g = this.nesterov ? ops.add(g, ops.mul(b1, this.momentum)) : b1;
    this.write(
      [
        [b, b1],
        [p.param, ops.sub(p.param, ops.mul(g, lr))],
      ],
      finite,
    );
  }
}
