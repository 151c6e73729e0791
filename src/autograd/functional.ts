// Transformations as functions (JAX style) and PyTorch's backward(). All of them run the same
// backward pass; createGraph keeps it differentiable, which is what hvp() relies on.
import { fmt } from '../tensor/shape.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { accumulateLeafGrad, backwardPass, record, type GradOptions } from './graph.ts';
import { add, mul } from './ops/elementwise.ts';
import { sum } from './ops/reduce.ts';
import { ones, zeros } from './ops/creation.ts';
import { contiguous, detach, reshape } from './ops/views.ts';

/** loss.backward(): accumulates d(loss)/d(leaf) into `.grad` of every leaf that requires grad. */
export function backward(output: Tensor, seed?: Tensor, opts: GradOptions = {}): void {
  if (!seed && output.size !== 1) {
    throw new Error(`backward(): the output has shape ${fmt(output.shape)}; pass a seed gradient of that shape for a non-scalar output`);
  }
  const grads = backwardPass([output], [seed ?? ones(output.shape)], null, add, opts);
  // Tensors already handed out: the seed, and each leaf's gradient once it is stored.
  const handed = new Set<Tensor>(seed ? [seed] : []);
  for (const [t, g] of grads) {
    if (t.gradFn || !t.requiresGrad) continue;
    const mine = opts.createGraph ? (handed.has(g) ? contiguous(g) : g) : ownedGrad(g, handed);
    handed.add(mine);
    accumulateLeafGrad(t, mine, add);
    // A second backward() adds into .grad lazily; realise the sum so it can be updated in place.
    if (!opts.createGraph && t.grad!.isLazy) t.grad!.realize();
  }
}

/**
 * A gradient buffer that belongs to its leaf alone. Optimizers and clipping update `.grad` in
 * place, and zeroGrad disposes it, so it must not be a tensor another leaf already got (add's
 * backward hands the same tensor to both inputs) or the user's seed, nor share their storage.
 */
function ownedGrad(g: Tensor, handed: ReadonlySet<Tensor>): Tensor {
  if (handed.has(g)) return g.contiguousCopy();
  if (g.isLazy) return g.realize();
  return g.isContiguous() && g.layout().storage.refs === 1 ? g : g.contiguousCopy();
}

/**
 * torch.autograd.grad: d(output)/d(each of `inputs`) for a scalar output of an already recorded
 * forward, without touching any `.grad`. The graph stays usable, so several outputs of one
 * forward can be differentiated separately (the trainer's GNB estimate does that).
 */
export function gradOf(output: Tensor, inputs: readonly Tensor[], opts: GradOptions = {}): Tensor[] {
  if (output.size !== 1) throw new Error(`gradOf: the output has shape ${fmt(output.shape)}; it must be a scalar`);
  if (!output.requiresGrad) return inputs.map((x) => zeros(x.shape));
  const grads = backwardPass([output], [ones(output.shape)], inputs, add, opts);
  return inputs.map((x) => grads.get(x) ?? zeros(x.shape));
}

/**
 * Σᵢ seedᵢ·∂outputᵢ/∂(each of `inputs`) from an already recorded forward (torch.autograd.grad
 * with grad_outputs). Seeding the outputs of a createGraph backward (gradients) with v gives H·v.
 */
export function vjpOf(outputs: readonly Tensor[], seeds: readonly Tensor[], inputs: readonly Tensor[]): Tensor[] {
  if (seeds.length !== outputs.length) throw new Error(`vjpOf: ${outputs.length} outputs but ${seeds.length} seeds`);
  seeds.forEach((s, i) => {
    if (s.shape.join() !== outputs[i].shape.join()) throw new Error(`vjpOf: seed ${i} has shape ${fmt(s.shape)}, output ${i} has ${fmt(outputs[i].shape)}`);
  });
  return seededGrads(outputs, seeds, inputs);
}

/** Fresh differentiable stand-ins for the arguments: leaves, or identity links when nested. */
function inputsOf(args: readonly Tensor[]): Tensor[] {
  return args.map((a) => {
    if (a.requiresGrad) return record(detach(a), 'identity', [a], (g) => [g]);
    const x = detach(a);
    x.requiresGrad = true;
    return x;
  });
}

function gradsFor(out: Tensor, xs: readonly Tensor[], seed: Tensor | undefined, opts: GradOptions): Tensor[] {
  if (!seed && out.size !== 1) throw new Error(`grad: the function returned shape ${fmt(out.shape)}; it must return a scalar (use vjp for other outputs)`);
  if (!out.requiresGrad) return xs.map((x) => zeros(x.shape));
  const grads = backwardPass([out], [seed ?? ones(out.shape)], xs, add, opts);
  return xs.map((x) => grads.get(x) ?? zeros(x.shape));
}

export type Fn = (...args: Tensor[]) => Tensor;

/** grad(f)(...args): the gradients of scalar f with respect to each argument. */
export function grad(f: Fn, opts: GradOptions = {}): (...args: Tensor[]) => Tensor[] {
  return (...args) => valueAndGrad(f, opts)(...args).grads;
}

export function valueAndGrad(f: Fn, opts: GradOptions = {}): (...args: Tensor[]) => { value: Tensor; grads: Tensor[] } {
  return (...args) => {
    const xs = inputsOf(args);
    const value = f(...xs);
    return { value, grads: gradsFor(value, xs, undefined, opts) };
  };
}

/** Vector-Jacobian product: (f(args), cotangentᵀ·∂f/∂args). */
export function vjp(f: Fn, args: readonly Tensor[], cotangent: Tensor, opts: GradOptions = {}): { value: Tensor; vjp: Tensor[] } {
  const xs = inputsOf(args);
  const value = f(...xs);
  return { value, vjp: gradsFor(value, xs, cotangent, opts) };
}

/**
 * Exact Hessian-vector product by double backward: H·v = ∇(∇f · v). `params` and `v` are
 * lists of matching shapes; returns one tensor per parameter.
 */
export function hvp(f: Fn, params: readonly Tensor[], v: readonly Tensor[]): Tensor[] {
  if (v.length !== params.length) throw new Error(`hvp: ${params.length} parameters but ${v.length} vectors`);
  v.forEach((vi, i) => {
    if (vi.shape.join() !== params[i].shape.join()) throw new Error(`hvp: vector ${i} has shape ${fmt(vi.shape)}, parameter ${i} has ${fmt(params[i].shape)}`);
  });
  const xs = inputsOf(params);
  const value = f(...xs);
  const g = gradsFor(value, xs, undefined, { createGraph: true });
  return seededGrads(g, v, xs);
}

/**
 * ∇ₓ(Σᵢ outᵢ·seedᵢ), the gradient of a dot product, without forming it: the seeds go straight
 * into the backward pass as the outputs' gradients. Building Σ sum(outᵢ·seedᵢ) instead would
 * compute every product and sum (a reduction per parameter) only to differentiate them, and its
 * backward would materialise seedᵢ·1 per parameter (for GPT-2's tied embedding a 50257×C copy,
 * realised again for each matmul that reads it). Outputs that do not depend on `xs` contribute 0.
 */
function seededGrads(outs: readonly Tensor[], seeds: readonly Tensor[], xs: readonly Tensor[]): Tensor[] {
  const live = outs.map((_, i) => i).filter((i) => outs[i].requiresGrad);
  if (live.length === 0) return xs.map((x) => zeros(x.shape));
  const grads = backwardPass(live.map((i) => outs[i]), live.map((i) => seeds[i]), xs, add);
  return xs.map((x) => grads.get(x) ?? zeros(x.shape));
}

/**
 * Forward-mode product J·t. For a scalar f it is ∇f·t: one ordinary backward pass. Otherwise it
 * is computed as the VJP of a VJP (the "double-vjp" trick): exact, and needs no forward-mode
 * rules, at the price of a second backward pass through the first one.
 */
export function jvp(f: Fn, args: readonly Tensor[], tangents: readonly Tensor[]): { value: Tensor; jvp: Tensor } {
  if (tangents.length !== args.length) throw new Error(`jvp: ${args.length} arguments but ${tangents.length} tangents`);
  tangents.forEach((t, i) => {
    if (t.shape.join() !== args[i].shape.join()) throw new Error(`jvp: tangent ${i} has shape ${fmt(t.shape)}, argument ${i} has ${fmt(args[i].shape)}`);
  });
  const xs = inputsOf(args);
  const value = f(...xs);
  if (value.size === 1) {
    const g = gradsFor(value, xs, undefined, {});
    const dot = g.map((gi, i) => sum(mul(gi, tangents[i]))).reduce((a, b) => add(a, b));
    return { value, jvp: reshape(dot, value.shape) };
  }
  const u = zeros(value.shape);
  u.requiresGrad = true;
  const vjps = gradsFor(value, xs, u, { createGraph: true });
  const [jt] = seededGrads(vjps, tangents, [u]);
  return { value, jvp: jt };
}
