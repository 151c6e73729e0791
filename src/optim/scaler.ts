// Dynamic loss scaling for f16 training, with torch.cuda.amp.GradScaler's semantics: the loss is
// multiplied by a scale S before backward so that small f16 gradients do not flush to zero; the
// gradients are divided by S again before clipping and the optimizer step. A step whose gradients
// hold inf/NaN (an f16 overflow) is skipped and S is multiplied by backoffFactor; after
// growthInterval consecutive good steps S is multiplied by growthFactor.
//
// S, the good-step counter and the skipped-step count live on the GPU and are updated there from
// the optimizer's own finite check (which already masks the update of a non-finite step): a step
// records work and never waits. Read them at log intervals (state()), one readback.
import { noGrad } from '../autograd/graph.ts';
import * as ops from '../autograd/ops/index.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { keep } from '../tensor/scope.ts';
import { checkRange, gradsAllFinite } from './optimizer.ts';

export interface GradScalerOptions {
  /** Initial scale (torch: 2^16). */
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  /** Consecutive finite steps before the scale grows (torch: 2000). */
  growthInterval?: number;
}

export class GradScaler {
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  /** 0-d tensors, kept across steps and updated in place. */
  private readonly scaleT: Tensor;
  private readonly goodSteps: Tensor;
  private readonly skipped: Tensor;

  constructor(opts: GradScalerOptions = {}) {
    const init = opts.initScale ?? 2 ** 16;
    this.growthFactor = opts.growthFactor ?? 2;
    this.backoffFactor = opts.backoffFactor ?? 0.5;
    this.growthInterval = opts.growthInterval ?? 2000;
    checkRange('initScale', init, 0, Infinity, { loOpen: true });
    checkRange('growthFactor', this.growthFactor, 1, Infinity, { loOpen: true });
    checkRange('backoffFactor', this.backoffFactor, 0, 1, { loOpen: true, hiOpen: true });
    if (!Number.isInteger(this.growthInterval) || this.growthInterval < 1) throw new RangeError(`growthInterval must be an integer ≥ 1, got ${this.growthInterval}`);
    [this.scaleT, this.goodSteps, this.skipped] = [init, 0, 0].map((v) => keep(ops.full([], v)));
  }

  /** The current scale as a 0-d tensor (on the GPU). */
  get scale(): Tensor {
    return this.scaleT;
  }

  /** loss · S (differentiable): backward from this instead of the loss. */
  scaleLoss(loss: Tensor): Tensor {
    return ops.mul(loss, this.scaleT);
  }

  /**
   * Divides every gradient by S in place (before clipping, so clipping sees true gradients). With
   * power-of-two scales this is exact; inf and NaN stay non-finite, so the optimizer still skips.
   */
  unscale(params: readonly Tensor[]): void {
    noGrad(() => {
      const inv = ops.div(1, this.scaleT).realize();
      for (const p of params) if (p.grad) ops.assign(p.grad, ops.mul(p.grad, inv));
      inv.dispose();
    });
  }

  /**
   * Updates S after a step from `finite` (0-d: 1 = the step's gradients were all finite), as
   * torch's _amp_update_scale_: on overflow S ← S·backoff and the counter resets; otherwise the
   * counter counts up and at growthInterval S ← S·growth (kept if that stays finite) and it resets.
   */
  update(finite: Tensor): void {
    noGrad(() => {
      const good = ops.add(this.goodSteps, 1);
      const grow = ops.ge(good, this.growthInterval);
      const grown = ops.mul(this.scaleT, this.growthFactor);
      const onGood = ops.where(grow, ops.where(ops.isFinite(grown), grown, this.scaleT), this.scaleT);
      // One kernel: every new value is computed from the counters as they were before the update.
      ops.assignMany([
        [this.scaleT, ops.where(finite, onGood, ops.mul(this.scaleT, this.backoffFactor))],
        [this.goodSteps, ops.where(finite, ops.where(grow, 0, good), 0)],
        [this.skipped, ops.add(this.skipped, ops.sub(1, finite))],
      ]);
    });
  }

  /** Finite check for optimizers that do not make one (nonFinite: 'update'): 1 if every gradient is finite. */
  static allFinite(params: readonly Tensor[]): Tensor {
    return noGrad(() => gradsAllFinite(params) ?? ops.full([], 1));
  }

  /** A [scale, skipped steps] tensor snapshot (for the metrics of the step just taken). */
  snapshot(): Tensor {
    return ops.concat([ops.reshape(this.scaleT, [1]), ops.reshape(this.skipped, [1])], 0);
  }

  /** Reads scale, good-step counter and skipped steps back (one readback). */
  async state(): Promise<{ scale: number; goodSteps: number; skippedSteps: number }> {
    const [scale, goodSteps, skippedSteps] = await ops.concat([this.scaleT, this.goodSteps, this.skipped].map((t) => ops.reshape(t, [1])), 0).toArray();
    return { scale, goodSteps, skippedSteps };
  }

  /** Tensors for a checkpoint (names without prefix). */
  stateTensors(): Map<string, Tensor> {
    return new Map([
      ['scale', this.scaleT],
      ['goodSteps', this.goodSteps],
      ['skipped', this.skipped],
    ]);
  }

  loadStateTensors(tensors: ReadonlyMap<string, Tensor>): void {
    noGrad(() => {
      for (const [name, t] of this.stateTensors()) {
        const src = tensors.get(name);
        if (!src) throw new Error(`GradScaler: the checkpoint has no '${name}' tensor`);
        ops.assign(t, src);
      }
    });
  }
}
