// What every optimizer shares: named parameters in groups with their own options, lazily created
// per-parameter state, a learning rate a schedule can set, skipping steps with non-finite
// gradients on the GPU (no readback), and state dicts for checkpoints.
import * as ops from '../autograd/ops/index.ts';
import { noGrad } from '../autograd/graph.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { keep } from '../tensor/scope.ts';

export interface NamedParam {
  name: string;
  param: Tensor;
}

export interface GroupOptions {
  weightDecay?: number;
  /** Multiplies the optimizer's learning rate for this group (1 by default). */
  lrScale?: number;
}

export interface ParamGroup {
  params: NamedParam[];
  options: GroupOptions;
}

/**
 * What a step does when some gradient holds NaN or ±inf. 'skip' (default): the whole update is
 * masked on the GPU (parameters and state keep their values) and the step is counted as skipped,
 * with no readback; call `checkFinite()` (one readback) to stop a run instead. 'update': no check.
 */
export type NonFinitePolicy = 'skip' | 'update';

export interface BaseOptions {
  lr: number;
  weightDecay?: number;
  nonFinite?: NonFinitePolicy;
  /** Compute the global gradient norm in every step, for diagnostics() (one reduction, no readback). */
  trackGradNorm?: boolean;
}

/** Thrown by checkFinite() when steps were skipped because of non-finite gradients. */
export class NonFiniteGradientError extends Error {
  constructor(readonly skipped: number, readonly steps: number) {
    super(`non-finite gradients: ${skipped} of ${steps} optimizer steps were skipped (parameters and state were left unchanged)`);
    this.name = 'NonFiniteGradientError';
  }
}

/** Lazy diagnostics of the last step: 0-d tensors, read only when asked (readDiagnostics). */
export interface Diagnostics {
  lr: number;
  step: number;
  /** Global L2 norm of the gradients the last step saw (with trackGradNorm). */
  gradNorm: Tensor | null;
  /** Steps skipped so far because of non-finite gradients (nonFinite: 'skip'). */
  skippedSteps: Tensor | null;
  /** Sophia: fraction of coordinates not clipped in the last step. */
  winRate?: Tensor | null;
  /** Sophia: per-parameter mean and max of h. */
  hStats?: Map<string, { mean: Tensor; max: Tensor }>;
}

export function checkRange(what: string, v: number, lo: number, hi: number, opts: { loOpen?: boolean; hiOpen?: boolean } = {}): void {
  const ok = Number.isFinite(v) && (opts.loOpen ? v > lo : v >= lo) && (opts.hiOpen ? v < hi : v <= hi);
  if (!ok) throw new RangeError(`${what} must be in ${opts.loOpen ? '(' : '['}${lo}, ${hi}${opts.hiOpen ? ')' : ']'}, got ${v}`);
}

/** Puts 1-D parameters (biases, LayerNorm) in a group without weight decay, as nanoGPT does. */
export function defaultParamGroups(named: readonly NamedParam[] | readonly [string, Tensor][], weightDecay: number): ParamGroup[] {
  const list = named.map((n) => (Array.isArray(n) ? { name: n[0], param: n[1] } : (n as NamedParam)));
  return [
    { params: list.filter((p) => p.param.rank >= 2), options: { weightDecay } },
    { params: list.filter((p) => p.param.rank < 2), options: { weightDecay: 0 } },
  ].filter((g) => g.params.length > 0);
}

/**
 * A realised 0-d tensor: 1 when every gradient of `params` is finite, else 0 (decided on the GPU,
 * nothing read back); null when none has a gradient. The optimizers' skip check and GradScaler's.
 */
export function gradsAllFinite(params: readonly Tensor[]): Tensor | null {
  let finite: Tensor | null = null;
  for (const p of params) {
    if (!p.grad) continue;
    const f = ops.min(ops.isFinite(p.grad));
    finite = finite ? ops.minimum(finite, f) : f;
  }
  return finite ? finite.realize() : null;
}

export abstract class Optimizer {
  readonly groups: ParamGroup[];
  private _lr = 0;
  readonly nonFinite: NonFinitePolicy;
  readonly trackGradNorm: boolean;
  /** Global gradient norm seen by the last step (trackGradNorm), a 0-d tensor. */
  private gradNorm: Tensor | null = null;
  /** Skipped-step count already reported by checkFinite(). */
  private reportedSkips = 0;
  /** Steps taken (including skipped ones). */
  stepCount = 0;
  /** Per parameter: steps in which it had a gradient (torch's per-parameter state['step']). */
  protected readonly paramSteps = new Map<string, number>();
  /** Per-parameter state tensors, created on first use: state.get(name).get('m'). */
  protected readonly state = new Map<string, Map<string, Tensor>>();
  /** 1 for each step whose gradients were all finite, summed lazily on the GPU. */
  private finiteSteps: Tensor | null = null;
  /** The last step's verdict (0-d, 1 = all gradients finite), for a loss scaler to reuse. */
  private lastFinite: Tensor | null = null;

  constructor(params: readonly NamedParam[] | readonly ParamGroup[], opts: BaseOptions) {
    checkRange('lr', opts.lr, 0, Infinity);
    checkRange('weightDecay', opts.weightDecay ?? 0, 0, Infinity);
    this._lr = opts.lr;
    this.nonFinite = opts.nonFinite ?? 'skip';
    if (this.nonFinite !== 'skip' && this.nonFinite !== 'update') throw new RangeError(`nonFinite must be 'skip' or 'update', got '${String(this.nonFinite)}'`);
    this.trackGradNorm = opts.trackGradNorm ?? false;
    const groups = params.length > 0 && 'params' in params[0] ? (params as ParamGroup[]) : [{ params: params as NamedParam[], options: {} }];
    this.groups = groups.map((g) => ({ params: g.params, options: { weightDecay: opts.weightDecay ?? 0, lrScale: 1, ...g.options } }));
    const seen = new Set<string>();
    for (const g of this.groups)
      for (const p of g.params) {
        if (seen.has(p.name)) throw new Error(`optimizer: parameter '${p.name}' appears twice`);
        seen.add(p.name);
      }
  }

  /** The base learning rate (each group multiplies it by its lrScale); a schedule sets it. */
  get lr(): number {
    return this._lr;
  }
  set lr(v: number) {
    checkRange('lr', v, 0, Infinity);
    this._lr = v;
  }

  get namedParams(): NamedParam[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** The state tensor `key` of a parameter, zero-initialised on first use. */
  protected buf(p: NamedParam, key: string): Tensor {
    let s = this.state.get(p.name);
    if (!s) this.state.set(p.name, (s = new Map()));
    let t = s.get(key);
    // keep(): optimizer state outlives any tidy() the step runs in.
    if (!t) s.set(key, (t = keep(ops.zeros([...p.param.shape]))));
    return t;
  }

  /**
   * Writes each `next` into its `target` in one kernel (assignMany), unless this step was found
   * non-finite (then every target keeps its value). All `next` values see the state from before
   * the step; build θ's new value from the new m (the lazy tensor), not from the buffer m.
   * `sums` (diagnostics such as Sophia's unclipped count) are added up by the same kernel.
   */
  protected write(updates: readonly (readonly [target: Tensor, next: Tensor])[], finite: Tensor | null, sums: readonly Tensor[] = []): Tensor[] {
    return ops.assignMany(
      updates.map(([target, next]) => [target, this.kept(target, next, finite)] as const),
      sums,
    );
  }

  /** What `target` holds after a step that writes `next`: `next`, or itself when the step is skipped. */
  protected kept(target: Tensor, next: Tensor, finite: Tensor | null): Tensor {
    return finite ? ops.where(finite, next, target) : next;
  }

  /** A 0-d tensor: 1 when every gradient is finite, else 0 (decided on the GPU). */
  protected allFinite(): Tensor | null {
    return this.nonFinite === 'skip' ? gradsAllFinite(this.namedParams.map((p) => p.param)) : null;
  }

  /** One update of every parameter that has a gradient. Records GPU work only; never waits. */
  step(): void {
    noGrad(() => {
      this.stepCount++;
      if (this.trackGradNorm) {
        this.gradNorm?.dispose();
        const grads = this.namedParams.flatMap((p) => (p.param.grad ? [p.param.grad] : []));
        this.gradNorm = grads.length ? keep(ops.sqrt(grads.map((g) => ops.sum(ops.mul(g, g))).reduce((a, b) => ops.add(a, b))).realize()) : null;
      }
      const finite = this.allFinite();
      if (finite) {
        const prev = this.finiteSteps;
        this.finiteSteps = keep(prev ? ops.add(prev, finite).realize() : finite);
        prev?.dispose();
      }
      for (const g of this.groups) {
        const lr = this.lr * (g.options.lrScale ?? 1);
        for (const p of g.params) {
          if (!p.param.grad) continue;
          const t = (this.paramSteps.get(p.name) ?? 0) + 1;
          this.paramSteps.set(p.name, t);
          this.update(p, p.param.grad, lr, g.options.weightDecay ?? 0, finite, t);
        }
      }
      this.lastFinite?.dispose();
      this.lastFinite = finite ? keep(finite === this.finiteSteps ? ops.add(finite, 0).realize() : finite) : null;
    });
  }

  /**
   * A 0-d tensor, 1 when the last step's gradients were all finite (and it was taken), 0 when it
   * was skipped; null with nonFinite: 'update'. Stays on the GPU (GradScaler.update reads it there).
   */
  lastStepFinite(): Tensor | null {
    return this.lastFinite;
  }

  /** Steps skipped because of non-finite gradients (reads one number back). */
  async skippedSteps(): Promise<number> {
    return this.finiteSteps ? this.stepCount - (await this.finiteSteps.item()) : 0;
  }

  /**
   * Throws NonFiniteGradientError if steps were skipped since the last call (one readback: call
   * it at log intervals, or after every step to stop at the first bad one).
   */
  async checkFinite(): Promise<void> {
    const skipped = await this.skippedSteps();
    if (skipped > this.reportedSkips) {
      this.reportedSkips = skipped;
      throw new NonFiniteGradientError(skipped, this.stepCount);
    }
  }

  /** Lazy diagnostics of the last step (no GPU work, no readback). */
  diagnostics(): Diagnostics {
    return {
      lr: this.lr,
      step: this.stepCount,
      gradNorm: this.gradNorm,
      skippedSteps: this.finiteSteps ? ops.sub(this.stepCount, this.finiteSteps) : null,
    };
  }

  /** Reads diagnostics() back as numbers (one readback for all of them). */
  async readDiagnostics(): Promise<Record<string, number | null>> {
    const d = this.diagnostics();
    const entries: [string, Tensor | null][] = [
      ['gradNorm', d.gradNorm],
      ['skippedSteps', d.skippedSteps],
      ['winRate', d.winRate ?? null],
    ];
    for (const [name, st] of d.hStats ?? []) entries.push([`h.${name}.mean`, st.mean], [`h.${name}.max`, st.max]);
    const present = entries.filter((e): e is [string, Tensor] => e[1] !== null);
    const vals = present.length ? await ops.concat(present.map(([, t]) => ops.reshape(t, [1]))).toArray() : new Float32Array();
    const out: Record<string, number | null> = { lr: d.lr, step: d.step };
    for (const [name, t] of entries) out[name] = t === null ? null : vals[present.findIndex((e) => e[0] === name)];
    return out;
  }

  /** Updates one parameter; `t` counts the steps in which this parameter had a gradient (1 first). */
  protected abstract update(p: NamedParam, grad: Tensor, lr: number, weightDecay: number, finite: Tensor | null, t: number): void;

  zeroGrad(): void {
    for (const { param } of this.namedParams) {
      param.grad?.dispose();
      param.grad = null;
    }
  }

  /** Hyperparameters and counters (JSON) plus state tensors named `state.<param>.<key>`. */
  stateDict(): { json: Record<string, unknown>; tensors: Map<string, Tensor> } {
    const tensors = new Map<string, Tensor>();
    for (const [name, s] of this.state) for (const [k, t] of s) tensors.set(`state.${name}.${k}`, t);
    if (this.finiteSteps) tensors.set('finiteSteps', this.finiteSteps);
    return { json: { kind: this.constructor.name, lr: this.lr, stepCount: this.stepCount, paramSteps: Object.fromEntries(this.paramSteps), ...this.extraState() }, tensors };
  }

  loadStateDict(d: { json: Record<string, unknown>; tensors: Map<string, Tensor> }): void {
    if (d.json.kind !== this.constructor.name) throw new Error(`loadStateDict: state is for ${String(d.json.kind)}, this optimizer is ${this.constructor.name}`);
    this.lr = d.json.lr as number;
    this.reportedSkips = 0;
    this.stepCount = d.json.stepCount as number;
    this.paramSteps.clear();
    // State written before per-parameter counts existed: every parameter took every step.
    const steps = (d.json.paramSteps ?? Object.fromEntries(this.namedParams.map((p) => [p.name, this.stepCount]))) as Record<string, number>;
    for (const [name, t] of Object.entries(steps)) this.paramSteps.set(name, t);
    this.loadExtraState(d.json);
    const known = new Set(this.namedParams.map((p) => p.name));
    for (const [key, t] of d.tensors) {
      if (key === 'finiteSteps') {
        this.finiteSteps = keep(t);
        continue;
      }
      const m = /^state\.(.+)\.([^.]+)$/.exec(key);
      if (!m || !known.has(m[1])) throw new Error(`loadStateDict: unexpected tensor '${key}'`);
      const param = this.namedParams.find((p) => p.name === m[1])!.param;
      if (t.shape.join() !== param.shape.join()) throw new Error(`loadStateDict: '${key}' has shape [${t.shape}], parameter '${m[1]}' has [${param.shape}]`);
      let s = this.state.get(m[1]);
      if (!s) this.state.set(m[1], (s = new Map()));
      s.get(m[2])?.dispose();
      s.set(m[2], keep(t));
    }
  }

  protected extraState(): Record<string, unknown> {
    return {};
  }
  protected loadExtraState(_json: Record<string, unknown>): void {}
}
