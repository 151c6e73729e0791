// Reverse-mode autodiff on the recorded graph.
//
// A differentiable op computes its output with raw kernels and records a GradNode whose
// backward() is written in differentiable ops. Running the backward pass with recording switched
// on (createGraph) therefore yields gradients that are themselves graph nodes: differentiating
// them again gives exact second derivatives (Hessian-vector products by double backward).
import type { GradNode, Tensor } from '../tensor/tensor.ts';
import { fmt } from '../tensor/shape.ts';
import { gradOwners } from '../tensor/scope.ts';

let recording = true;

export function isGradEnabled(): boolean {
  return recording;
}

function withRecording<T>(on: boolean, fn: () => T): T {
  const prev = recording;
  recording = on;
  try {
    return fn();
  } finally {
    recording = prev;
  }
}

/** Runs `fn` without recording a graph (parameter updates, evaluation). */
export function noGrad<T>(fn: () => T): T {
  return withRecording(false, fn);
}

/** Runs `fn` with recording on (inside noGrad, when a gradient is wanted after all). */
export function enableGrad<T>(fn: () => T): T {
  return withRecording(true, fn);
}

export type BackwardFn = (gradOutput: Tensor, needs: readonly boolean[]) => (Tensor | null)[];

/** Attaches a graph node to `out` when recording and some input requires grad. */
export function record(out: Tensor, op: string, inputs: readonly Tensor[], backward: BackwardFn): Tensor {
  if (!recording || !inputs.some((t) => t.requiresGrad)) return out;
  const node: GradNode = { op, inputs, backward: (g, needs) => backward(g, needs ?? inputs.map((t) => t.requiresGrad)) };
  out.requiresGrad = true;
  out.gradFn = node;
  return out;
}

/** Reverse topological order of the nodes that lead to `roots` and require grad. */
function topoOrder(roots: readonly Tensor[]): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, boolean][] = roots.map((r) => [r, false]);
  while (stack.length) {
    const [t, expanded] = stack.pop()!;
    if (expanded) {
      order.push(t);
      continue;
    }
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push([t, true]);
    for (const i of t.gradFn?.inputs ?? []) if (i.requiresGrad && !seen.has(i)) stack.push([i, false]);
  }
  return order.reverse();
}

/**
 * The tensors of `order` (reverse topological) from which some tensor of `wanted` can be
 * reached. Only their gradients are computed: in a second backward pass (an HVP, a jvp) most of
 * the recorded graph leads to the parameters, but e.g. jvp's wants only the dummy cotangent, and
 * the forward graph, which does not depend on it, is then never differentiated.
 */
function leadingTo(order: readonly Tensor[], wanted: ReadonlySet<Tensor>): Set<Tensor> {
  const leads = new Set<Tensor>();
  const visit = (t: Tensor) => {
    if (wanted.has(t) || t.gradFn?.inputs.some((i) => leads.has(i))) leads.add(t);
  };
  // Inputs come after their consumers in `order`: walk it backwards.
  for (let i = order.length - 1; i >= 0; i--) visit(order[i]);
  return leads;
}

export interface GradOptions {
  /** Record the backward pass so its results can be differentiated again (for HVPs). */
  createGraph?: boolean;
}

/**
 * d(Σ seeds·outputs)/d(inputs). Accumulation uses `add` from the ops layer, passed in to keep
 * this module free of op imports (ops depend on graph, not the other way round).
 */
export function backwardPass(
  outputs: readonly Tensor[],
  seeds: readonly Tensor[],
  inputs: readonly Tensor[] | null,
  add: (a: Tensor, b: Tensor) => Tensor,
  opts: GradOptions = {},
): Map<Tensor, Tensor> {
  outputs.forEach((o, i) => {
    o.check('differentiate');
    if (!o.requiresGrad) throw new Error(`backward: output ${i} (shape ${fmt(o.shape)}) does not depend on any tensor that requires grad`);
    if (seeds[i].shape.join() !== o.shape.join()) throw new Error(`backward: seed gradient shape ${fmt(seeds[i].shape)} does not match output shape ${fmt(o.shape)}`);
  });
  const grads = new Map<Tensor, Tensor>();
  const accumulate = (t: Tensor, g: Tensor) => {
    const prev = grads.get(t);
    grads.set(t, prev ? add(prev, g) : g);
  };
  return withRecording(!!opts.createGraph, () => {
    outputs.forEach((o, i) => accumulate(o, seeds[i]));
    const wanted = inputs ? new Set(inputs) : null;
    const order = topoOrder(outputs);
    const leads = wanted ? leadingTo(order, wanted) : null;
    for (const t of order) {
      const g = grads.get(t);
      if (!g || !t.gradFn) continue;
      if (wanted?.has(t)) continue; // an intermediate asked for directly: stop here
      const needs = t.gradFn.inputs.map((i) => i.requiresGrad && (!leads || leads.has(i)));
      if (!needs.some(Boolean)) continue;
      const inGrads = t.gradFn.backward(g, needs);
      t.gradFn.inputs.forEach((input, k) => {
        const gi = inGrads[k];
        if (!gi || !needs[k]) return;
        if (gi.shape.join() !== input.shape.join()) {
          throw new Error(`internal: backward of ${t.gradFn!.op} gave a gradient of shape ${fmt(gi.shape)} for an input of shape ${fmt(input.shape)}`);
        }
        accumulate(input, gi);
      });
    }
    return grads;
  });
}

/** Stores `g` into `leaf.grad`, adding to what is there (PyTorch's accumulation). */
export function accumulateLeafGrad(leaf: Tensor, g: Tensor, add: (a: Tensor, b: Tensor) => Tensor): void {
  const next = leaf.grad ? add(leaf.grad, g) : g;
  if (leaf.grad && leaf.grad !== next) leaf.grad.dispose();
  leaf.grad = next;
  gradOwners.set(next, leaf);
}
