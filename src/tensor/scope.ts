// tidy(): dispose every tensor created inside a function except those it returns or keeps.
// Scopes nest; a tensor belongs to the innermost open scope.
import type { Tensor } from './tensor.ts';

const scopes: Set<Tensor>[] = [];

export function track(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}

/** Removes `t` from every open scope, so tidy() will not dispose it. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collect(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if ('shape' in value && 'dispose' in value && 'dtype' in value) {
    out.add(value as Tensor);
    return;
  }
  if (Array.isArray(value)) value.forEach((v) => collect(v, out, depth + 1));
  else if (value instanceof Map) value.forEach((v) => collect(v, out, depth + 1));
  else if (Object.getPrototypeOf(value) === Object.prototype) Object.values(value).forEach((v) => collect(v, out, depth + 1));
}

/**
 * Runs `fn`; disposes the tensors it created, except those in its result (tensors, arrays,
 * Maps and plain objects of tensors are searched) or passed to keep(). Returned tensors move to
 * the enclosing scope. Gradients written into `.grad` of tensors from outside are kept too.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  if (result instanceof Promise) throw new Error('tidy(): the function must be synchronous (GPU work is recorded synchronously; await outside tidy)');
  const keepers = new Set<Tensor>();
  collect(result, keepers);
  for (const t of scope) {
    if (keepers.has(t) || isGradOfOutsider(t, scope)) {
      track(t);
      continue;
    }
    t.dispose();
  }
  return result;
}

function isGradOfOutsider(t: Tensor, scope: Set<Tensor>): boolean {
  return gradOwners.has(t) && !scope.has(gradOwners.get(t)!);
}

/** Autograd registers `.grad` tensors here so tidy() does not free a leaf's gradient. */
export const gradOwners = new WeakMap<Tensor, Tensor>();
