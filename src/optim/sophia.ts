// Sophia (Liu et al. 2023, "Sophia: A Scalable Stochastic Second-order Optimizer for Language
// Model Pre-training", arXiv 2305.14342), Algorithm 3, line by line:
//
//   m ← β1·m + (1−β1)·g                                  (every step)
//   every k steps: ĥ from an estimator; h ← β2·h + (1−β2)·ĥ   (updateHessian)
//   θ ← θ − η·λ·θ                                        (decoupled weight decay)
//   θ ← θ − η·clip(m / max(γ·h, ε), 1)                   (the clipped Newton-like step)
//
// Two parameterisations of the same step (count the batch size B once!):
//   'paper'    ĥ_GNB = B·ĝ⊙ĝ is stored in h; ratio = m / max(γ·h, ε)
//   'official' (the authors' SophiaG code) h stores ĝ⊙ĝ without B; step = sign(m)·min(|m| / (ρ·B·h + 1e-15), 1)
// With γ = ρ they are the same update; B is the token count of the estimator batch, never a
// hard-coded constant. Hutchinson estimates (ĥ = u⊙Hu) carry no B: use them with the paper form
// (or pass batchTokens = 1 to updateHessian in the official form). Options: clipThreshold (the
// clip's bound, default 1), biasCorrection (h / (1 − β2^refreshes)), signMomentum (h ≡ 0).
// docs/optim.md explains each variation.
//
// Skipped steps (non-finite gradients, nonFinite: 'skip'): m and θ keep their values, and nothing
// else needs to know. The refresh interval runs on the global stepCount, skipped steps included,
// as the authors' loop calls update_hessian() on iter_num whatever the GradScaler did; m has no
// bias correction; and biasCorrection's count is the number of refreshes, i.e. of EMA updates of
// h, which updateHessian() makes whether or not the next gradient step is skipped. So unlike
// Adam's t, no count here depends on the finite-step count.
import * as ops from '../autograd/ops/index.ts';
import { noGrad } from '../autograd/graph.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { keep, tidy } from '../tensor/scope.ts';
import { checkRange, Optimizer, type BaseOptions, type Diagnostics, type NamedParam, type ParamGroup } from './optimizer.ts';

export type SophiaForm = 'paper' | 'official';

export interface SophiaOptions extends BaseOptions {
  betas?: [number, number];
  /** 'paper' (γ, ε) or 'official' (ρ, B). Default 'paper'. */
  form?: SophiaForm;
  /** Paper form: γ (default 0.01). */
  gamma?: number;
  /** Paper form: ε, the floor of the denominator (default 1e-12). */
  eps?: number;
  /** Official form: ρ (default 0.04). */
  rho?: number;
  /** Refresh h every k steps (default 10); the trainer calls updateHessian then. */
  hessianEvery?: number;
  /** Divide h by (1 − β2ʳ) after r refreshes, so early steps are not all clipped. */
  biasCorrection?: boolean;
  /** Never refresh h (h stays 0): the step becomes sign-momentum, the h → 0 limit. */
  signMomentum?: boolean;
  /** The clip: each coordinate's step is clipped to [−c, c]·η (default c = 1, the paper's). */
  clipThreshold?: number;
  /**
   * Called by step() before steps 1, k+1, 2k+1, ... to produce ĥ (e.g. with gnbFromLogits or
   * hutchinsonEstimate on the estimator's own minibatch). Without it, the trainer asks
   * wantsHessian() and calls updateHessian() itself.
   */
  estimator?: HessianEstimator;
  /** Count unclipped coordinates each step for winRate() (default true; one reduction per parameter). */
  trackWinRate?: boolean;
}

/** ĥ per parameter name and the estimator batch's token count B. */
export interface HessianEstimate {
  hhat: ReadonlyMap<string, Tensor>;
  batchTokens: number;
}
export type HessianEstimator = (opt: Sophia) => HessianEstimate;

export class Sophia extends Optimizer {
  readonly betas: [number, number];
  readonly form: SophiaForm;
  readonly gamma: number;
  readonly eps: number;
  readonly rho: number;
  readonly hessianEvery: number;
  readonly biasCorrection: boolean;
  readonly signMomentum: boolean;
  readonly clipThreshold: number;
  readonly estimator: HessianEstimator | null;
  readonly trackWinRate: boolean;
  /** Refreshes of h so far, and the token count B of the last estimator batch (official form). */
  refreshes = 0;
  batchTokens = 1;
  /** Σ over coordinates of [|ratio| < 1] for the last step, and the coordinate count. */
  private unclipped: Tensor | null = null;
  private coords = 0;
  private nonFiniteHessian: Tensor | null = null;

  constructor(params: readonly NamedParam[] | readonly ParamGroup[], opts: SophiaOptions) {
    super(params, { weightDecay: 0.1, ...opts });
    this.betas = opts.betas ?? [0.965, 0.99];
    this.form = opts.form ?? 'paper';
    this.gamma = opts.gamma ?? 0.01;
    this.eps = opts.eps ?? 1e-12;
    this.rho = opts.rho ?? 0.04;
    this.hessianEvery = opts.hessianEvery ?? 10;
    this.biasCorrection = opts.biasCorrection ?? false;
    this.signMomentum = opts.signMomentum ?? false;
    this.clipThreshold = opts.clipThreshold ?? 1;
    this.estimator = opts.estimator ?? null;
    this.trackWinRate = opts.trackWinRate ?? true;
    checkRange('clipThreshold', this.clipThreshold, 0, Infinity, { loOpen: true });
    checkRange('beta1', this.betas[0], 0, 1, { hiOpen: true });
    checkRange('beta2', this.betas[1], 0, 1, { hiOpen: true });
    checkRange('gamma', this.gamma, 0, Infinity, { loOpen: true });
    checkRange('rho', this.rho, 0, Infinity, { loOpen: true });
    checkRange('eps', this.eps, 0, Infinity, { loOpen: true });
    if (!Number.isInteger(this.hessianEvery) || this.hessianEvery < 1) throw new RangeError(`hessianEvery (k) must be an integer ≥ 1, got ${this.hessianEvery}`);
    if (this.form !== 'paper' && this.form !== 'official') throw new RangeError(`form must be 'paper' or 'official', got '${String(this.form)}'`);
  }

  protected override hyperparameters(): Record<string, unknown> {
    const { betas, form, gamma, eps, rho, hessianEvery, biasCorrection, signMomentum, clipThreshold } = this;
    return { betas, form, gamma, eps, rho, hessianEvery, biasCorrection, signMomentum, clipThreshold };
  }

  /** True when the trainer should estimate ĥ before this coming step (steps 1, k+1, 2k+1, ...). */
  wantsHessian(): boolean {
    return !this.signMomentum && this.stepCount % this.hessianEvery === 0;
  }

  /**
   * h ← β2·h + (1−β2)·ĥ for each parameter (ĥ in the chosen form's scale; see the estimators).
   * `batchTokens` is the estimator batch's B (used by the official form's step).
   */
  updateHessian(hhat: ReadonlyMap<string, Tensor>, batchTokens: number): void {
    if (this.signMomentum) return;
    if (!(batchTokens >= 1)) throw new RangeError(`updateHessian: batchTokens must be ≥ 1, got ${batchTokens}`);
    noGrad(() => {
      const b2 = this.betas[1];
      let bad: Tensor | null = null;
      for (const p of this.namedParams) {
        const e = hhat.get(p.name);
        if (!e) continue;
        const h = this.buf(p, 'h');
        // A non-finite estimate must not poison h: keep the old value where ĥ is not finite.
        const ok = ops.isFinite(e);
        ops.assign(h, ops.where(ok, ops.add(ops.mul(h, b2), ops.mul(e, 1 - b2)), h));
        const n = ops.sub(e.size, ops.sum(ok));
        bad = bad ? ops.add(bad, n) : n;
      }
      this.nonFiniteHessian?.dispose();
      this.nonFiniteHessian = bad ? keep(bad.realize()) : null;
    });
    this.refreshes++;
    this.batchTokens = batchTokens;
  }

  protected update(p: NamedParam, grad: Tensor, lr: number, wd: number, finite: Tensor | null): void {
    const b1 = this.betas[0];
    const m = this.buf(p, 'm');
    const h = this.buf(p, 'h');
    const m1 = ops.add(ops.mul(m, b1), ops.mul(grad, 1 - b1));
    const theta = wd !== 0 ? ops.mul(p.param, 1 - lr * wd) : p.param;
    // One kernel per parameter writes m and θ and counts the unclipped coordinates. The clipped
    // step is built once, from the m the step leaves behind (the kept m on a skipped step, when θ
    // keeps its value anyway), so θ's update and the count share it in the kernel.
    const { ratio, step } = this.clippedStep(this.kept(m, m1, finite), h);
    const counts = this.write(
      [
        [m, m1],
        [p.param, ops.sub(theta, ops.mul(step, lr))],
      ],
      finite,
      this.trackWinRate ? [ops.lt(ops.abs(ratio), this.clipThreshold)] : [],
    );
    if (this.trackWinRate) {
      this.unclipped = this.unclipped ? ops.add(this.unclipped, counts[0]) : counts[0];
      this.coords += p.param.size;
    }
  }

  /** The per-coordinate ratio m / max(γh, ε) (or the official form's) and its clip to [−c, c]. */
  private clippedStep(m: Tensor, hBuf: Tensor): { ratio: Tensor; step: Tensor } {
    const c = this.clipThreshold;
    const b2 = this.betas[1];
    const h = this.biasCorrection && this.refreshes > 0 ? ops.div(hBuf, 1 - b2 ** this.refreshes) : hBuf;
    if (this.form === 'paper') {
      const ratio = ops.div(m, ops.maximum(ops.mul(h, this.gamma), this.eps));
      return { ratio, step: ops.minimum(ops.maximum(ratio, -c), c) };
    }
    const ratio = ops.div(ops.abs(m), ops.add(ops.mul(h, this.rho * this.batchTokens), 1e-15));
    return { ratio, step: ops.mul(ops.sign(m), ops.minimum(ratio, c)) };
  }

  override step(): void {
    if (this.estimator && this.wantsHessian()) {
      const est = tidy(() => this.estimator!(this));
      this.updateHessian(est.hhat, est.batchTokens);
      for (const t of est.hhat.values()) t.dispose();
    }
    this.unclipped?.dispose();
    this.unclipped = null;
    this.coords = 0;
    super.step();
    const u = this.unclipped as Tensor | null;
    if (u) keep(u.realize());
  }

  /** Fraction of coordinates not clipped in the last step (a lazy 0-d tensor; healthy: ~0.1–0.5). */
  winRate(): Tensor | null {
    return this.unclipped ? ops.mul(this.unclipped, 1 / this.coords) : null;
  }

  override diagnostics(): Diagnostics {
    return { ...super.diagnostics(), winRate: this.winRate(), hStats: this.hStats() };
  }

  /**
   * How many coordinates of the last refresh's ĥ were not finite, so h kept its old value there
   * (a 0-d tensor on the GPU; null before the first refresh). The trainer reports a nonzero count.
   */
  lastRefreshNonFinite(): Tensor | null {
    return this.nonFiniteHessian;
  }

  /** Per-parameter mean and max of h (lazy 0-d tensors), for diagnostics. */
  hStats(): Map<string, { mean: Tensor; max: Tensor }> {
    const out = new Map<string, { mean: Tensor; max: Tensor }>();
    for (const p of this.namedParams) {
      const h = this.state.get(p.name)?.get('h');
      if (h) out.set(p.name, { mean: ops.mean(h), max: ops.max(h) });
    }
    return out;
  }

  protected override extraState(): Record<string, unknown> {
    return { refreshes: this.refreshes, batchTokens: this.batchTokens };
  }
  protected override loadExtraState(json: Record<string, unknown>): void {
    this.refreshes = json.refreshes as number;
    this.batchTokens = json.batchTokens as number;
  }
}
