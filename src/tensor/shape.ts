// Shape arithmetic shared by every op: broadcasting, strides, axis normalisation.

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function fmt(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** NumPy broadcasting: align trailing dimensions; a dimension of 1 stretches. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i];
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else throw new Error(`${op}: shapes ${shapes.map(fmt).join(' and ')} cannot be broadcast together (dimension ${o}: ${out[o]} vs ${d})`);
    }
  }
  return out;
}

/** Normalises possibly-negative axes; undefined means all axes. Sorted, unique. */
export function normalizeAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => {
    if (!Number.isInteger(a) || a < -rank || a >= Math.max(rank, 1)) {
      throw new Error(`${op}: axis ${a} is out of range for a tensor of rank ${rank}`);
    }
    return a < 0 ? a + rank : a;
  });
  return [...new Set(out)].sort((x, y) => x - y);
}

export function checkShape(op: string, shape: Shape): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${op}: invalid shape ${fmt(shape)} (dimensions must be non-negative integers)`);
  }
}

/** Resolves a single -1 in a reshape target. */
export function inferReshape(from: Shape, to: readonly number[]): number[] {
  const n = numel(from);
  const unknown = to.filter((d) => d === -1).length;
  if (unknown > 1) throw new Error(`reshape: only one dimension may be -1, got ${fmt(to)}`);
  const known = to.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const out = to.map((d) => (d === -1 ? (known === 0 ? 0 : n / known) : d));
  if (numel(out) !== n || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot reshape ${fmt(from)} (${n} elements) into ${fmt(to)}`);
  }
  return out;
}

/**
 * Strides that view (shape, strides) as `to` without copying, or null if impossible.
 * The same rule as torch's `view` (ATen computeStride): runs of source dims that are
 * contiguous among themselves may be split or merged freely.
 */
export function reshapeStrides(shape: Shape, strides: readonly number[], to: Shape): number[] | null {
  if (numel(shape) === 0 || shape.length === 0) return contiguousStrides(to);
  const out = new Array<number>(to.length);
  let viewD = to.length - 1;
  let chunkBase = strides[strides.length - 1];
  let tensorNumel = 1;
  let viewNumel = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    tensorNumel *= shape[d];
    const runEnds = d === 0 || (shape[d - 1] !== 1 && strides[d - 1] !== tensorNumel * chunkBase);
    if (!runEnds) continue;
    while (viewD >= 0 && (viewNumel < tensorNumel || to[viewD] === 1)) {
      out[viewD] = viewNumel * chunkBase;
      viewNumel *= to[viewD];
      viewD--;
    }
    if (viewNumel !== tensorNumel) return null;
    if (d > 0) {
      chunkBase = strides[d - 1];
      tensorNumel = 1;
      viewNumel = 1;
    }
  }
  return viewD === -1 ? out : null;
}

/** The lowest and highest element offset a view (shape, strides, offset) reaches. */
export function viewExtent(shape: readonly number[], strides: readonly number[], offset: number): [number, number] {
  let lo = offset;
  let hi = offset;
  shape.forEach((n, d) => {
    const span = (Math.max(1, n) - 1) * strides[d];
    if (span < 0) lo += span;
    else hi += span;
  });
  return [lo, hi];
}
