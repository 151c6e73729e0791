// What every optimizer shares: named parameters in groups with their own options, lazily created
// per-parameter state, a learning rate a schedule can set, skipping steps with non-finite
// gradients on the GPU (no readback), and state dicts for checkpoints.
//
// A skipped step is a step that never happened, as with torch.cuda.amp.GradScaler (which does not
// call optimizer.step() then): parameters and state keep their values, and the per-parameter step
// count t that Adam's bias corrections and SGD's first-step buffer use does not advance. That
// count lives on the GPU (the step table below), so skipping still needs no readback. The global
// `stepCount` (and `paramSteps`) count every step, skipped or not: schedules and Sophia's refresh
// interval run on it, as nanoGPT's and Sophia's loops run on iter_num.
import * as ops from '../autograd/ops/index.ts';
import { noGrad } from '../autograd/graph.ts';
import { indexAlong } from '../tensor/ops.ts';
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
 * masked on the GPU (parameters and state keep their values, the per-parameter step counts do not
 * advance) and the step is counted as skipped, with no readback; call `checkFinite()` (one
 * readback) to stop a run instead. 'update': no check, and t counts every step (on the CPU).
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
  /**
   * Per parameter: steps in which it had a gradient, skipped ones included (torch's per-parameter
   * state['step'] with nonFinite: 'update'; under 'skip' the table's 'count' row is that count).
   */
  protected readonly paramSteps = new Map<string, number>();
  /** Per-parameter state tensors, created on first use: state.get(name).get('m'). */
  protected readonly state = new Map<string, Map<string, Tensor>>();
  /**
   * The step table (nonFinite: 'skip'): a [rows, P + 1] tensor that one small kernel rebuilds at
   * the start of every step, a column per parameter (namedParams order) and a last one for the
   * optimizer as a whole. Rows (tableRows): 'finite', this step's verdict (1 = all gradients
   * finite); 'count', the finite steps so far in which that parameter had a gradient, this one
   * included (torch's state['step'] under GradScaler; the last column counts all finite steps);
   * then the subclass's stepValues() of that count (Adam: its bias corrections). Each parameter's
   * update kernel reads its own column: one more binding at most, no readback, no extra dispatch.
   */
  private table: Tensor | null = null;
  private tableRows: string[] = [];
  /** Each parameter's column in the step table. */
  private readonly column = new Map<string, number>();
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
    this.groups.forEach((g, i) => {
      checkRange(`group ${i} weightDecay`, g.options.weightDecay ?? 0, 0, Infinity);
      checkRange(`group ${i} lrScale`, g.options.lrScale ?? 1, 0, Infinity);
    });
    for (const g of this.groups)
      for (const p of g.params) {
        if (this.column.has(p.name)) throw new Error(`optimizer: parameter '${p.name}' appears twice`);
        this.column.set(p.name, this.column.size);
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

  /**
   * Values a subclass needs each step as functions of a parameter's finite-step count `t` (lazy
   * elementwise expressions of t, or constants); computed once per step into the step table and
   * read by update() through stepValue(). Used with nonFinite: 'skip' only.
   */
  protected stepValues(_t: Tensor): Record<string, Tensor | number> {
    return {};
  }

  /**
   * This step's value `row` of the step table for parameter `p` (a 0-d view): 'finite', 'count'
   * or one of stepValues(); null without a table (nonFinite: 'update').
   */
  protected stepValue(p: NamedParam, row: string): Tensor | null {
    if (!this.table) return null;
    const r = this.tableRows.indexOf(row);
    if (r < 0) throw new Error(`optimizer: the step table has no row '${row}' (rows: ${this.tableRows.join(', ')})`);
    const c = this.column.get(p.name)!;
    return ops.reshape(ops.slice(this.table, [[r, r + 1], [c, c + 1]]), []);
  }

  /**
   * A new step table from the previous counts ([P + 1]), this step's verdict and the columns that
   * take part (1 for all, else a [P + 1] 0/1 mask): one kernel. The old table is not read in place,
   * so the derived rows may use the new count of their column.
   */
  private buildTable(prevCount: Tensor, finite: Tensor | number, mask: Tensor | number): void {
    const count = ops.add(prevCount, ops.mul(finite, mask));
    const values: Record<string, Tensor | number> = { finite, count, ...this.stepValues(count) };
    const rows = Object.keys(values);
    const row = indexAlong([rows.length, this.column.size + 1], 0);
    let table = values[rows[rows.length - 1]];
    for (let r = rows.length - 2; r >= 0; r--) table = ops.where(ops.eq(row, r), values[rows[r]], table);
    const old = this.table;
    this.table = keep((table as Tensor).realize());
    this.tableRows = rows;
    old?.dispose();
  }

  /** The step table's 'count' row as a [P + 1] view (columns: parameters, then all). */
  private counts(): Tensor {
    const r = this.tableRows.indexOf('count');
    return ops.reshape(ops.slice(this.table!, [[r, r + 1], null]), [this.column.size + 1]);
  }

  /** Finite steps of the whole optimizer (0-d view), or null without a table. */
  private finiteSteps(): Tensor | null {
    return this.table ? ops.reshape(ops.slice(this.counts(), [[this.column.size, this.column.size + 1]]), []) : null;
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
        // Only parameters with a gradient take part in this step (torch's per-parameter counts).
        const has = this.namedParams.map((p) => (p.param.grad ? 1 : 0));
        const mask = has.every((h) => h === 1) ? 1 : ops.tensor(Float32Array.from([...has, 1]));
        const prev = this.table ? this.counts() : ops.expand(ops.scalar(0), [this.column.size + 1]);
        this.buildTable(prev, finite, mask);
        prev.dispose();
        if (typeof mask !== 'number') mask.dispose();
      }
      for (const g of this.groups) {
        const lr = this.lr * (g.options.lrScale ?? 1);
        for (const p of g.params) {
          if (!p.param.grad) continue;
          const t = (this.paramSteps.get(p.name) ?? 0) + 1;
          this.paramSteps.set(p.name, t);
          this.update(p, p.param.grad, lr, g.options.weightDecay ?? 0, finite ? this.stepValue(p, 'finite') : null, t);
        }
      }
      this.lastFinite?.dispose();
      this.lastFinite = finite ? keep(finite) : null;
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
    const f = this.finiteSteps();
    return f ? this.stepCount - (await f.item()) : 0;
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
      skippedSteps: this.table ? ops.sub(this.stepCount, this.finiteSteps()!) : null,
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

  /**
   * Updates one parameter. `finite` (nonFinite: 'skip') is this step's verdict, a 0-d tensor to
   * pass to write(); `t` counts the steps in which this parameter had a gradient (1 first),
   * skipped ones included: under 'skip' use stepValue(p, 'count') (or stepValues) instead.
   */
  protected abstract update(p: NamedParam, grad: Tensor, lr: number, weightDecay: number, finite: Tensor | null, t: number): void;

  zeroGrad(): void {
    for (const { param } of this.namedParams) {
      param.grad?.dispose();
      param.grad = null;
    }
  }

  /**
   * Hyperparameters and counters (JSON) plus state tensors named `state.<param>.<key>`; under
   * nonFinite: 'skip' also `finiteSteps` (0-d, finite steps in all) and `finiteParamSteps` ([P],
   * each parameter's finite steps, in the order of the JSON's `finiteParamOrder`).
   */
  stateDict(): { json: Record<string, unknown>; tensors: Map<string, Tensor> } {
    const tensors = new Map<string, Tensor>();
    for (const [name, s] of this.state) for (const [k, t] of s) tensors.set(`state.${name}.${k}`, t);
    const json: Record<string, unknown> = {
      kind: this.constructor.name,
      lr: this.lr,
      stepCount: this.stepCount,
      paramSteps: Object.fromEntries(this.paramSteps),
      settings: this.settings(),
      ...this.extraState(),
    };
    if (this.table && this.column.size > 0) {
      tensors.set('finiteSteps', this.finiteSteps()!);
      tensors.set('finiteParamSteps', ops.slice(this.counts(), [[0, this.column.size]]));
      json.finiteParamOrder = [...this.column.keys()];
    }
    return { json, tensors };
  }

  loadStateDict(d: { json: Record<string, unknown>; tensors: Map<string, Tensor> }): void {
    if (d.json.kind !== this.constructor.name) throw new Error(`loadStateDict: state is for ${String(d.json.kind)}, this optimizer is ${this.constructor.name}`);
    // Everything is checked before anything changes: a refused state leaves this optimizer as it was.
    const known = new Map(this.namedParams.map((p) => [p.name, p.param]));
    const counters = new Map<string, Tensor>();
    const states: [string, string, Tensor][] = [];
    for (const [key, t] of d.tensors) {
      if (key === 'finiteSteps' || key === 'finiteParamSteps') {
        counters.set(key, t);
        continue;
      }
      const m = /^state\.(.+)\.([^.]+)$/.exec(key);
      const param = m ? known.get(m[1]) : undefined;
      if (!m || !param) throw new Error(`loadStateDict: unexpected tensor '${key}'`);
      if (t.shape.join() !== param.shape.join()) throw new Error(`loadStateDict: '${key}' has shape [${t.shape}], parameter '${m[1]}' has [${param.shape}]`);
      states.push([m[1], m[2], t]);
    }
    // torch.optim restores hyperparameters from the state; here they are fixed at construction,
    // so a state saved under other settings is refused rather than continued under these.
    // (State written before settings were saved carries none and loads as before.)
    if (d.json.settings !== undefined) {
      const saved = JSON.stringify(d.json.settings);
      const mine = JSON.stringify(this.settings());
      if (saved !== mine) {
        throw new Error(`loadStateDict: the state was saved by a ${this.constructor.name} with settings ${saved}; this one has ${mine}. Construct the optimizer with the saved settings to continue that run.`);
      }
    }
    this.lr = d.json.lr as number;
    this.reportedSkips = 0;
    this.stepCount = d.json.stepCount as number;
    this.paramSteps.clear();
    // State written before per-parameter counts existed: every parameter took every step.
    const steps = (d.json.paramSteps ?? Object.fromEntries(this.namedParams.map((p) => [p.name, this.stepCount]))) as Record<string, number>;
    for (const [name, t] of Object.entries(steps)) this.paramSteps.set(name, t);
    this.loadExtraState(d.json);
    for (const [name, key, t] of states) {
      let s = this.state.get(name);
      if (!s) this.state.set(name, (s = new Map()));
      s.get(key)?.dispose();
      s.set(key, keep(t));
    }
    this.table?.dispose();
    this.table = null;
    if (this.nonFinite === 'skip') this.loadCounts(counters.get('finiteSteps') ?? null, counters.get('finiteParamSteps') ?? null, d.json.finiteParamOrder as string[] | undefined);
    counters.forEach((t) => t.dispose());
  }

  /**
   * Rebuilds the step table's counts from a state dict. State written before per-parameter finite
   * counts existed (or without this parameter) gets its step count minus the optimizer's skipped
   * steps (exact when the parameter had a gradient in every step, the usual case; with neither
   * tensor, as from nonFinite: 'update' or before skipping existed, no step counts as skipped).
   */
  private loadCounts(total: Tensor | null, perParam: Tensor | null, order: readonly string[] | undefined): void {
    const all = total ?? ops.scalar(this.stepCount);
    const skipped = ops.sub(this.stepCount, all);
    const cols = this.namedParams.map((p) => {
      const j = perParam && order ? order.indexOf(p.name) : -1;
      const c = j >= 0 ? ops.slice(perParam!, [[j, j + 1]]) : ops.maximum(ops.sub(this.paramSteps.get(p.name) ?? 0, skipped), 0);
      return ops.reshape(c, [1]);
    });
    const counts = ops.concat([...cols, ops.reshape(all, [1])]);
    this.buildTable(counts, 0, 0);
    counts.dispose();
  }

  /**
   * The settings a continued run must share (saved in stateDict, checked by loadStateDict):
   * the subclass's hyperparameters, how non-finite gradients are handled, and each group's
   * weight decay, lr scale and parameter names.
   */
  settings(): Record<string, unknown> {
    return {
      ...this.hyperparameters(),
      nonFinite: this.nonFinite,
      groups: this.groups.map((g) => ({ weightDecay: g.options.weightDecay, lrScale: g.options.lrScale, params: g.params.map((p) => p.name) })),
    };
  }
  /** The subclass's own hyperparameters (betas, eps, momentum, …), JSON-serialisable. */
  protected abstract hyperparameters(): Record<string, unknown>;

  protected extraState(): Record<string, unknown> {
    return {};
  }
  protected loadExtraState(_json: Record<string, unknown>): void {}
}
