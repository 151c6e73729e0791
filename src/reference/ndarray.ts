// The float64 CPU reference: every engine op, written as plainly as possible. It is the oracle
// the GPU kernels are tested against, and the shortest description of what each op means.
// Arrays are always contiguous (row-major); views are copies here.

export class NDArray {
  constructor(
    readonly data: Float64Array,
    readonly shape: readonly number[],
  ) {
    if (data.length !== size(shape)) throw new Error(`NDArray: ${data.length} values for shape [${shape}]`);
  }
  get rank(): number {
    return this.shape.length;
  }
  static from(values: ArrayLike<number>, shape: readonly number[] = [values.length]): NDArray {
    return new NDArray(Float64Array.from(values), shape);
  }
  static full(shape: readonly number[], v: number): NDArray {
    return new NDArray(new Float64Array(size(shape)).fill(v), shape);
  }
}

export const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) (s[i] = acc), (acc *= shape[i]);
  return s;
}

/** Calls fn(flatIndex, coords) for every element of `shape`, in row-major order. */
function forEachIndex(shape: readonly number[], fn: (flat: number, coords: number[]) => void): void {
  const n = size(shape);
  const c = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    fn(i, c);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++c[d] < shape[d]) break;
      c[d] = 0;
    }
  }
}

function broadcastShape(...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes)
    s.forEach((d, i) => {
      const o = rank - s.length + i;
      if (d !== 1) {
        if (out[o] !== 1 && out[o] !== d) throw new Error(`broadcast: [${shapes.join('] [')}]`);
        out[o] = d;
      }
    });
  return out;
}

/** The element of `a` that broadcasts to `coords` of a larger shape. */
function at(a: NDArray, coords: readonly number[]): number {
  const lead = coords.length - a.rank;
  let idx = 0;
  let stride = 1;
  for (let d = a.rank - 1; d >= 0; d--) {
    const c = a.shape[d] === 1 ? 0 : coords[lead + d];
    idx += c * stride;
    stride *= a.shape[d];
  }
  return a.data[idx];
}

export function map(a: NDArray, f: (x: number) => number): NDArray {
  return new NDArray(a.data.map(f), a.shape);
}

export function zip(arrays: NDArray[], f: (...xs: number[]) => number): NDArray {
  const shape = broadcastShape(...arrays.map((a) => a.shape));
  const out = new Float64Array(size(shape));
  forEachIndex(shape, (i, c) => (out[i] = f(...arrays.map((a) => at(a, c)))));
  return new NDArray(out, shape);
}

// ------------------------------------------------------------- elementwise
type Operand = NDArray | number;
const lift = (x: Operand) => (typeof x === 'number' ? NDArray.from([x], []) : x);
const bin = (f: (a: number, b: number) => number) => (a: Operand, b: Operand) => zip([lift(a), lift(b)], f);

export const add = bin((a, b) => a + b);
export const sub = bin((a, b) => a - b);
export const mul = bin((a, b) => a * b);
export const div = bin((a, b) => a / b);
export const pow = bin((a, b) => a ** b);
export const maximum = bin((a, b) => Math.max(a, b));
export const minimum = bin((a, b) => Math.min(a, b));
export const lt = bin((a, b) => +(a < b));
export const le = bin((a, b) => +(a <= b));
export const gt = bin((a, b) => +(a > b));
export const ge = bin((a, b) => +(a >= b));
export const eq = bin((a, b) => +(a === b));
export const ne = bin((a, b) => +(a !== b));
export const where = (c: NDArray, a: Operand, b: Operand) => zip([c, lift(a), lift(b)], (x, y, z) => (x !== 0 ? y : z));

export const neg = (a: NDArray) => map(a, (x) => -x);
export const exp = (a: NDArray) => map(a, Math.exp);
export const expm1 = (a: NDArray) => map(a, Math.expm1);
export const log = (a: NDArray) => map(a, Math.log);
export const sqrt = (a: NDArray) => map(a, Math.sqrt);
export const rsqrt = (a: NDArray) => map(a, (x) => 1 / Math.sqrt(x));
export const tanh = (a: NDArray) => map(a, Math.tanh);
export const abs = (a: NDArray) => map(a, Math.abs);
export const sign = (a: NDArray) => map(a, Math.sign);
export const sin = (a: NDArray) => map(a, Math.sin);
export const cos = (a: NDArray) => map(a, Math.cos);
export const square = (a: NDArray) => mul(a, a);
export const relu = (a: NDArray) => map(a, (x) => (x > 0 ? x : 0));
export const sigmoid = (a: NDArray) => map(a, (x) => 1 / (1 + Math.exp(-x)));

// ------------------------------------------------------------- reductions
function axesOf(axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return [...Array(rank).keys()];
  return (typeof axes === 'number' ? [axes] : [...axes]).map((a) => (a < 0 ? a + rank : a));
}

function reduce(a: NDArray, axes: number | readonly number[] | undefined, keepdims: boolean, init: number, f: (acc: number, x: number) => number): NDArray {
  const ax = axesOf(axes, a.rank);
  const kept = a.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const out = new Float64Array(size(kept)).fill(init);
  const ks = strides(kept);
  forEachIndex(a.shape, (i, c) => {
    let o = 0;
    c.forEach((ci, d) => (o += ax.includes(d) ? 0 : ci * ks[d]));
    out[o] = f(out[o], a.data[i]);
  });
  return new NDArray(out, keepdims ? kept : a.shape.filter((_, i) => !ax.includes(i)));
}

export const sum = (a: NDArray, axes?: number | readonly number[], keepdims = false) => reduce(a, axes, keepdims, 0, (s, x) => s + x);
export const max = (a: NDArray, axes?: number | readonly number[], keepdims = false) => reduce(a, axes, keepdims, -Infinity, Math.max);
export const min = (a: NDArray, axes?: number | readonly number[], keepdims = false) => reduce(a, axes, keepdims, Infinity, Math.min);
export function mean(a: NDArray, axes?: number | readonly number[], keepdims = false): NDArray {
  const n = size(axesOf(axes, a.rank).map((i) => a.shape[i]));
  return map(sum(a, axes, keepdims), (x) => x / n);
}
export function logsumexp(a: NDArray, axes?: number | readonly number[], keepdims = false): NDArray {
  const m = max(a, axes, true);
  const s = log(sum(exp(sub(a, m)), axes, true));
  const r = add(s, m);
  return keepdims ? r : reshape(r, a.shape.filter((_, i) => !axesOf(axes, a.rank).includes(i)));
}
export function softmax(a: NDArray, axis = -1): NDArray {
  const e = exp(sub(a, max(a, axis, true)));
  return div(e, sum(e, axis, true));
}
export const logSoftmax = (a: NDArray, axis = -1) => sub(a, logsumexp(a, axis, true));

// ------------------------------------------------------------- shape ops
export function reshape(a: NDArray, shape: readonly number[]): NDArray {
  const known = shape.filter((d) => d !== -1).reduce((x, y) => x * y, 1);
  return new NDArray(a.data, shape.map((d) => (d === -1 ? size(a.shape) / known : d)));
}

export function permute(a: NDArray, perm: readonly number[]): NDArray {
  const shape = perm.map((p) => a.shape[p]);
  const src = strides(a.shape);
  const out = new Float64Array(a.data.length);
  forEachIndex(shape, (i, c) => (out[i] = a.data[c.reduce((acc, ci, d) => acc + ci * src[perm[d]], 0)]));
  return new NDArray(out, shape);
}

export function transpose(a: NDArray, d0 = -2, d1 = -1): NDArray {
  const [x, y] = [d0, d1].map((d) => (d < 0 ? d + a.rank : d));
  return permute(a, a.shape.map((_, i) => (i === x ? y : i === y ? x : i)));
}

export const expand = (a: NDArray, shape: readonly number[]) => zip([a, NDArray.full(shape, 0)], (x) => x);

export function slice(a: NDArray, ranges: readonly (readonly [number, number] | null)[]): NDArray {
  const starts = a.shape.map((d, i) => ((ranges[i]?.[0] ?? 0) + d) % d || 0);
  const ends = a.shape.map((d, i) => {
    const e = ranges[i]?.[1] ?? d;
    return Math.min(d, e < 0 ? e + d : e);
  });
  const shape = ends.map((e, i) => e - starts[i]);
  const src = strides(a.shape);
  const out = new Float64Array(size(shape));
  forEachIndex(shape, (i, c) => (out[i] = a.data[c.reduce((acc, ci, d) => acc + (ci + starts[d]) * src[d], 0)]));
  return new NDArray(out, shape);
}

export function concat(parts: NDArray[], axis = 0): NDArray {
  const ax = axis < 0 ? axis + parts[0].rank : axis;
  const shape = [...parts[0].shape];
  shape[ax] = parts.reduce((s, p) => s + p.shape[ax], 0);
  const out = new Float64Array(size(shape));
  const os = strides(shape);
  let off = 0;
  for (const p of parts) {
    forEachIndex(p.shape, (i, c) => (out[c.reduce((acc, ci, d) => acc + (d === ax ? ci + off : ci) * os[d], 0)] = p.data[i]));
    off += p.shape[ax];
  }
  return new NDArray(out, shape);
}

// ------------------------------------------------------------- matmul and indexing
export function matmul(a: NDArray, b: NDArray): NDArray {
  const [M, K] = a.shape.slice(-2);
  const N = b.shape[b.rank - 1];
  const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const A = expand(a, [...batch, M, K]);
  const B = expand(b, [...batch, K, N]);
  const nb = size(batch);
  const out = new Float64Array(nb * M * N);
  for (let z = 0; z < nb; z++)
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += A.data[z * M * K + i * K + k] * B.data[z * K * N + k * N + j];
        out[z * M * N + i * N + j] = s;
      }
  return new NDArray(out, [...batch, M, N]);
}

/** out[..., :] = table[ids[...], :] */
export function indexSelect(table: NDArray, ids: ArrayLike<number>, idsShape: readonly number[] = [ids.length]): NDArray {
  const w = table.shape[1];
  const out = new Float64Array(ids.length * w);
  for (let i = 0; i < ids.length; i++) out.set(table.data.subarray(ids[i] * w, ids[i] * w + w), i * w);
  return new NDArray(out, [...idsShape, w]);
}

/** out = zeros([rows, w]); out[ids[p], :] += src[p, :] */
export function scatterAdd(src: NDArray, ids: ArrayLike<number>, rows: number): NDArray {
  const w = src.shape[src.rank - 1];
  const out = new Float64Array(rows * w);
  for (let p = 0; p < ids.length; p++) for (let c = 0; c < w; c++) out[ids[p] * w + c] += src.data[p * w + c];
  return new NDArray(out, [rows, w]);
}

/** out[...] = x[..., ids[...]] */
export function takeAlongLastAxis(x: NDArray, ids: ArrayLike<number>): NDArray {
  const v = x.shape[x.rank - 1];
  return new NDArray(Float64Array.from({ length: ids.length }, (_, i) => x.data[i * v + ids[i]]), x.shape.slice(0, -1));
}
