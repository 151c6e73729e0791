// A small Module system: named parameters (in a stable, declaration order), buffers, children,
// train/eval mode. Parameter names follow the attribute path, so a GPT-2 built here has
// Hugging Face's names (h.0.attn.c_attn.weight, ...).
import type { Tensor } from '../tensor/tensor.ts';

export abstract class Module {
  training = true;
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module>();

  /** Registers a trainable tensor (marked requiresGrad) under `name`. */
  protected param(name: string, t: Tensor): Tensor {
    t.requiresGrad_();
    t.name = name;
    this._params.set(name, t);
    return t;
  }

  /** This module's own parameter `name` (looked up each time, so loading weights never leaves stale references). */
  protected p(name: string): Tensor {
    const t = this._params.get(name);
    if (!t) throw new Error(`${this.constructor.name}: no parameter '${name}'`);
    return t;
  }

  protected buffer(name: string, t: Tensor): Tensor {
    this._buffers.set(name, t);
    return t;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  /** [name, tensor] for every parameter, depth-first in registration order. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, p] of this._params) out.push([prefix + n, p]);
    for (const [n, c] of this._children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, b] of this._buffers) out.push([prefix + n, b]);
    for (const [n, c] of this._children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  /** Replaces a parameter's tensor (loading weights); the old one is disposed. */
  setParameter(path: string, t: Tensor): void {
    // Child names may contain dots themselves (GPT-2's blocks are 'h.0', 'h.1', ...).
    for (const [n, c] of this._children) {
      if (path.startsWith(n + '.') && !this._params.has(path)) return c.setParameter(path.slice(n.length + 1), t);
    }
    const old = this._params.get(path);
    if (!old) throw new Error(`setParameter: no parameter named '${path}'`);
    if (old.shape.join() !== t.shape.join()) throw new Error(`setParameter: '${path}' has shape [${old.shape}], the new tensor [${t.shape}]`);
    old.dispose();
    this.param(path, t);
  }

  /** Swaps in `tensors` (same order as namedParameters()) and returns the previous ones. */
  swapParameters(tensors: readonly Tensor[]): Tensor[] {
    const slots: [Map<string, Tensor>, string][] = [];
    const collect = (m: Module) => {
      for (const n of m._params.keys()) slots.push([m._params, n]);
      for (const c of m._children.values()) collect(c);
    };
    collect(this);
    if (tensors.length !== slots.length) throw new Error(`swapParameters: ${tensors.length} tensors for ${slots.length} parameters`);
    return slots.map(([map, n], i) => {
      const old = map.get(n)!;
      if (old.shape.join() !== tensors[i].shape.join()) throw new Error(`swapParameters: '${n}' has shape [${old.shape}], got [${tensors[i].shape}]`);
      map.set(n, tensors[i]);
      return old;
    });
  }

  train(on = true): this {
    this.training = on;
    for (const c of this._children.values()) c.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  dispose(): void {
    for (const [, p] of this.namedParameters()) p.dispose();
    for (const [, b] of this.namedBuffers()) b.dispose();
  }
}

/**
 * Runs `fn` with the module's parameters replaced by `params` (torch.func.functional_call): the
 * bridge from modules to the function transforms, e.g.
 * `hvp((...ps) => functionalCall(model, ps, () => model.loss(x, y)), model.parameters(), v)`.
 */
export function functionalCall<T>(module: Module, params: readonly Tensor[], fn: () => T): T {
  const saved = module.swapParameters(params);
  try {
    return fn();
  } finally {
    module.swapParameters(saved);
  }
}
