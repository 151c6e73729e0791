// Raw tensor operations: no autograd, just shapes, views and kernels. src/autograd wraps each
// of these with its backward rule.
import { ctx, requireF16 } from '../gpu/device.ts';
import { runtime } from '../gpu/runtime.ts';
import { type BinaryOp, type Expr, exprSize, exprStorages, readsElsewhere, type UnaryOp } from './expr.ts';
import { bindingLimit } from './kernels/windows.ts';
import { formatBytes } from '../gpu/runtime.ts';
import { sizeClass } from '../gpu/pool.ts';
import { gatherRows, rowLists, scatterAddRows, scatterAddRowsDevice } from './kernels/gather.ts';
import { realizeExpr } from './kernels/elementwise.ts';
import { matmulKernel, type MatOperand } from './kernels/matmul.ts';
import { randomKernel, type RandomKind } from './kernels/random.ts';
import { reduceRows, type ReduceOp } from './kernels/reduce.ts';
import { layerNormStatsRows, logsumexpRows, takeRows } from './kernels/rows.ts';
import { attentionKernel, type AttnOperand } from './kernels/attention.ts';
import { broadcastShapes, checkShape, contiguousStrides, fmt, inferReshape, normalizeAxes, numel, sameShape, type Shape, viewExtent } from './shape.ts';
import { encodeHalves } from './half.ts';
import { BYTES, Storage, type DType } from './storage.ts';
import { Tensor } from './tensor.ts';

/** Expressions larger than this are realised before being inlined into another. */
const MAX_FUSED_NODES = 64;
/**
 * A fused expression reading more distinct buffers than this is realised. Larger caps fuse more
 * but recompute shared lazy subexpressions in every consumer: at 12, Sophia's step on GPT-2 tiny
 * ran 1.45× AdamW (1.08× at 6).
 */
const MAX_FUSED_INPUTS = 6;

// ---------------------------------------------------------------- creation

export type ArrayData = Float32Array | Int32Array | number[] | readonly number[];

export function fromArray(data: ArrayData, shape?: Shape, dtype?: DType): Tensor {
  const dt: DType = dtype ?? (data instanceof Int32Array ? 'i32' : 'f32');
  const s = shape ?? [data.length];
  checkShape('tensor', s);
  if (numel(s) !== data.length) throw new Error(`tensor: ${data.length} values cannot fill shape ${fmt(s)} (${numel(s)} elements)`);
  const values = data as ArrayLike<number>;
  const host = dt === 'i32' ? Int32Array.from(values) : dt === 'f16' ? encodeHalves(values) : Float32Array.from(values);
  ctx();
  const storage = Storage.allocate(values.length, dt);
  if (dt === 'i32') storage.hostIndices = host as Int32Array;
  if (host.length > 0) runtime.write(storage.buffer, 0, host);
  return Tensor.owning(storage, s);
}

export function full(shape: Shape, value: number): Tensor {
  checkShape('full', shape);
  return Tensor.lazy({ k: 'const', value }, shape).realize();
}

/** A lazy constant (no buffer): broadcast into expressions for free. */
export function scalar(value: number): Tensor {
  return Tensor.lazy({ k: 'const', value }, []);
}

export function arange(start: number, end?: number, step = 1): Tensor {
  if (end === undefined) [start, end] = [0, start];
  const n = Math.max(0, Math.ceil((end - start) / step));
  const e: Expr = { k: 'bin', op: 'add', a: { k: 'const', value: start }, b: { k: 'bin', op: 'mul', a: { k: 'index', axis: 0 }, b: { k: 'const', value: step } } };
  return Tensor.lazy(e, [n]).realize();
}

/** Random draws: same (seed, shape, call order) → same numbers on every adapter. */
export function random(shape: Shape, kind: RandomKind, seed: number, a: number, b: number, counter?: number): Tensor {
  checkShape(kind, shape);
  const n = numel(shape);
  return Tensor.owning(randomKernel(n, kind, seed, counter ?? 0, a, b), shape);
}

// ---------------------------------------------------------------- elementwise (lazy)

/** `t` as an expression over `shape` (NumPy broadcasting of its dims). */
export function broadcastExpr(t: Tensor, shape: readonly number[]): Expr {
  if (sameShape(t.shape, shape)) return t.expr();
  return expandView(t, shape).expr();
}

export function fusable(t: Tensor): Tensor {
  if (t.isLazy) {
    const e = t.expr();
    if (exprSize(e) > MAX_FUSED_NODES) t.realize();
  }
  return t;
}

/**
 * The float dtype of an elementwise result, by PyTorch's promotion: f16 when some input is f16
 * and none is f32, where scalar constants do not count (x_f16 * 0.5 stays f16).
 */
export function resultDtype(...inputs: Tensor[]): 'f32' | 'f16' {
  const weak = (t: Tensor) => t.rank === 0 && t.isLazy && t.expr().k === 'const';
  const strong = inputs.filter((t) => !weak(t));
  return strong.some((t) => t.dtype === 'f16') && !strong.some((t) => t.dtype === 'f32') ? 'f16' : 'f32';
}

/** A lazy result of `dtype`; an f16 one is rounded to f16 right here (see round_f16). */
function lazyResult(e: Expr, shape: readonly number[], dtype: 'f32' | 'f16'): Tensor {
  if (dtype === 'f16') requireF16();
  return dtype === 'f16' ? Tensor.lazy({ k: 'un', op: 'round_f16', a: e }, shape, 'f16') : Tensor.lazy(e, shape, 'f32');
}

export function unary(op: UnaryOp, a: Tensor): Tensor {
  fusable(a);
  if (op === 'cast_i32') return Tensor.lazy({ k: 'un', op, a: a.expr() }, a.shape, 'i32');
  return lazyResult({ k: 'un', op, a: a.expr() }, a.shape, op === 'isfinite' ? 'f32' : resultDtype(a));
}

export function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(op, a.shape, b.shape);
  fusable(a);
  fusable(b);
  const reads = fitInputs([a, b]);
  return limitInputs(lazyResult({ k: 'bin', op, a: broadcastExpr(a, shape), b: broadcastExpr(b, shape) }, shape, resultDtype(a, b)), reads);
}

export function where(c: Tensor, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes('where', c.shape, a.shape, b.shape);
  [c, a, b].forEach(fusable);
  const reads = fitInputs([c, a, b]);
  return limitInputs(lazyResult({ k: 'where', c: broadcastExpr(c, shape), a: broadcastExpr(a, shape), b: broadcastExpr(b, shape) }, shape, resultDtype(a, b)), reads);
}

/** Storage bindings one fused kernel may use for its inputs: the output and a few windowed bindings keep a margin. */
function bindableInputs(): number {
  return ctx().limits.maxStorageBuffersPerShaderStage - 4;
}

/**
 * Operands whose expressions together read more distinct buffers than one kernel may bind: the
 * operands reading the most are realised (in place) until the rest fit, because realising the
 * merged result instead would need a kernel binding them all. Rare: each operand already reads at
 * most MAX_FUSED_INPUTS, so this acts only on adapters with few storage bindings. Returns how
 * many distinct buffers the operands (and so their result) read.
 */
function fitInputs(operands: Tensor[]): number {
  const max = bindableInputs();
  const readsOf = () => operands.reduce((set, t) => exprStorages(t.expr(), set), new Set<Storage>()).size;
  let reads = readsOf();
  while (reads > max) {
    const widest = operands.filter((t) => t.isLazy).sort((x, y) => exprStorages(y.expr()).size - exprStorages(x.expr()).size)[0];
    if (!widest) break; // realised operands read one buffer each: at most three
    widest.realize();
    reads = readsOf();
  }
  return reads;
}

/** A result reading more than MAX_FUSED_INPUTS buffers is realised now (it fits one kernel: see fitInputs). */
function limitInputs(t: Tensor, reads: number): Tensor {
  if (reads > Math.min(MAX_FUSED_INPUTS, bindableInputs())) t.realize();
  return t;
}

/** The value of each element's coordinate along `axis` (for one-hot masks and the like). */
export function indexAlong(shape: Shape, axis: number): Tensor {
  return Tensor.lazy({ k: 'index', axis }, shape);
}

export function cast(a: Tensor, dtype: DType): Tensor {
  if (a.dtype === dtype) return a;
  if (dtype === 'i32') return unary('cast_i32', a);
  fusable(a);
  return lazyResult(a.expr(), a.shape, dtype);
}

// ---------------------------------------------------------------- views

export function expandView(t: Tensor, shape: readonly number[]): Tensor {
  const lead = shape.length - t.rank;
  if (lead < 0 || t.shape.some((d, i) => d !== 1 && d !== shape[lead + i])) {
    throw new Error(`expand: cannot broadcast shape ${fmt(t.shape)} to ${fmt(shape)}`);
  }
  const strideOf = (s: readonly number[]) => shape.map((d, o) => (o < lead || t.shape[o - lead] !== d || t.shape[o - lead] === 1 ? 0 : s[o - lead]));
  // A broadcast dim had a single coordinate, 0, whatever the new extent.
  const index = (axis: number): Expr => (t.shape[axis] === 1 ? { k: 'const', value: 0 } : { k: 'index', axis: axis + lead });
  return t.restride(shape, strideOf, (o) => o, index);
}

export function permuteView(t: Tensor, perm: readonly number[]): Tensor {
  const sorted = [...perm].sort((a, b) => a - b);
  if (perm.length !== t.rank || sorted.some((p, i) => p !== i)) throw new Error(`permute: ${fmt(perm)} is not a permutation of the ${t.rank} axes of ${fmt(t.shape)}`);
  const inv = perm.map((_, i) => perm.indexOf(i));
  return t.restride(
    perm.map((p) => t.shape[p]),
    (s) => perm.map((p) => s[p]),
    (o) => o,
    (axis) => ({ k: 'index', axis: inv[axis] }),
  );
}

export function sliceView(t: Tensor, starts: readonly number[], ends: readonly number[]): Tensor {
  const shape = t.shape.map((d, i) => {
    if (starts[i] < 0 || ends[i] > d || starts[i] > ends[i]) throw new Error(`slice: range ${starts[i]}:${ends[i]} is out of bounds for axis ${i} of ${fmt(t.shape)}`);
    return ends[i] - starts[i];
  });
  return t.restride(
    shape,
    (s) => [...s],
    (o, s) => o + starts.reduce((acc, st, i) => acc + st * s[i], 0),
    (axis) => ({ k: 'bin', op: 'add', a: { k: 'index', axis }, b: { k: 'const', value: starts[axis] } }),
  );
}

/** reshape: a view when the layout allows it, a contiguous copy otherwise. */
export function reshape(t: Tensor, to: readonly number[]): Tensor {
  const shape = inferReshape(t.shape, to);
  const v = t.reshapeView(shape);
  if (v) return v;
  const c = t.contiguousCopy();
  const r = c.reshapeView(shape)!;
  c.dispose();
  return r;
}

// ---------------------------------------------------------------- pieces past the binding limit

/**
 * The most bytes a new piece of a split may hold: its pool buffer is a size class, at most 1.25×
 * what it holds, and must still fit one binding.
 */
const pieceBudget = () => Math.floor(bindingLimit() * 0.8);

/** [start, end) ranges of at most `per` covering 0…total. */
const ranges = (total: number, per: number) => Array.from({ length: Math.ceil(total / per) }, (_, i) => [i * per, Math.min(total, (i + 1) * per)] as const);

/** concat, then the parts are freed (their buffers return to the pool once the copies have run). */
function joined(parts: Tensor[], axis: number): Tensor {
  const out = concat(parts, axis);
  parts.forEach((p) => p.dispose());
  return out;
}

// ---------------------------------------------------------------- reductions

export function reduce(op: ReduceOp, t: Tensor, axes: number | readonly number[] | undefined, keepdims: boolean): Tensor {
  const ax = normalizeAxes(op, axes, t.rank);
  const kept = t.shape.map((_, i) => i).filter((i) => !ax.includes(i));
  const perm = [...kept, ...ax];
  const view = perm.every((p, i) => p === i) ? t : permuteView(t, perm);
  const inner = numel(ax.map((i) => t.shape[i]));
  if (inner === 0 && op !== 'sum') throw new Error(`${op}: cannot reduce over an empty axis of ${fmt(t.shape)}`);
  if (kept.length === 0 && ax.length >= 2 && (t.size >= 1 << 16 || [...exprStorages(t.expr())].some((s) => s.bytes > bindingLimit()))) {
    // A total reduction is one row, reduced by one workgroup, and cannot be split into row
    // chunks: reduce the trailing axes first (rows in parallel), then the partial sums.
    const partial = reduce(op, t, ax.slice(1), false);
    const r = reduce(op, partial, [0], keepdims);
    partial.dispose();
    return keepdims ? reshape(r, t.shape.map(() => 1)) : r;
  }
  // Reducing the leading axis of a tensor larger than one binding (a bias gradient: the sum of a
  // [16384, 3072] activation over its rows): each output reads a column through all of it, which
  // no binding window holds. Reduce blocks of leading rows (each a window), then the partials.
  const rowBytes = (t.size / Math.max(1, t.shape[0])) * BYTES[t.dtype];
  const per = Math.max(1, Math.floor(pieceBudget() / rowBytes));
  if (ax.includes(0) && kept.length > 0 && t.shape[0] > per && [...exprStorages(t.expr())].some((s) => s.bytes > bindingLimit())) {
    const partials = ranges(t.shape[0], per).map(([r0, r1]) => {
      const block = sliceView(t, t.shape.map((_, i) => (i === 0 ? r0 : 0)), t.shape.map((d, i) => (i === 0 ? r1 : d)));
      const part = reduce(op, block, ax, true);
      block.dispose();
      return part;
    });
    const all = joined(partials, 0);
    const r = reduce(op, all, ax, keepdims);
    all.dispose();
    return r;
  }
  fusable(view);
  // f16 in, f16 out (as in PyTorch), accumulated in f32.
  const storage = reduceRows(view.expr(), view.shape, kept.length, op, t.dtype === 'f16' ? 'f16' : 'f32');
  if (view !== t) view.dispose();
  const outShape = keepdims ? t.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : kept.map((i) => t.shape[i]);
  return Tensor.owning(storage, outShape);
}

/** log Σ exp over the last axis in one pass (rows realised contiguously first). */
export function logsumexpLast(t: Tensor): Tensor {
  const n = t.shape[t.rank - 1];
  const c = t.isContiguous() ? t : t.contiguousCopy();
  const { storage, offset } = c.layout();
  const out = logsumexpRows(storage, offset, c.size / Math.max(n, 1), n);
  if (c !== t) c.dispose();
  return Tensor.owning(out, t.shape.slice(0, -1));
}

/** LayerNorm's statistics over the last axis of an f32 tensor: mean and 1/√(var + eps), each [..., 1]. */
export function layerNormStats(t: Tensor, eps: number): { mean: Tensor; rstd: Tensor } {
  if (t.dtype !== 'f32') throw new Error(`layerNormStats: needs an f32 tensor, got ${t.dtype}`);
  const n = t.shape[t.rank - 1];
  const c = t.isContiguous() ? t : t.contiguousCopy();
  const { storage, offset } = c.layout();
  const rows = numel(t.shape.slice(0, -1)); // not size / n: n may be 0
  const { mean, rstd } = layerNormStatsRows(storage, offset, rows, n, eps);
  if (c !== t) c.dispose();
  const kept = [...t.shape.slice(0, -1), 1];
  return { mean: Tensor.owning(mean, kept), rstd: Tensor.owning(rstd, kept) };
}

/** out[...] = t[..., ids[...]] (ids i32 with t's leading shape). */
export function takeLast(t: Tensor, ids: Tensor): Tensor {
  const n = t.shape[t.rank - 1];
  const c = t.isContiguous() ? t : t.contiguousCopy();
  const i = ids.isContiguous() && ids.layout().offset % 64 === 0 ? ids : ids.contiguousCopy();
  const { storage, offset } = c.layout();
  const out = takeRows(storage, offset, ids.size, n, i.layout().storage, i.layout().offset);
  if (c !== t) c.dispose();
  if (i !== ids) i.dispose();
  return Tensor.owning(out, [...ids.shape]);
}

// ---------------------------------------------------------------- matmul

/** One stride per operand for the flattened batch dims, or null if they don't flatten. */
function batchStride(shape: readonly number[], strides: readonly number[]): number | null {
  let stride: number | null = null;
  let expected = 0;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] === 1) continue;
    if (stride === null) {
      stride = strides[i];
      expected = strides[i] * shape[i];
    } else {
      if (strides[i] !== expected) return null;
      expected *= shape[i];
    }
  }
  return stride ?? 0;
}

function operand(t: Tensor, batch: readonly number[]): MatOperand {
  const full = [...batch, t.shape[t.rank - 2], t.shape[t.rank - 1]];
  // A lazy operand is realised in place, so it is computed once: a recorded backward (createGraph)
  // hands the same lazy gradient to matmuls of both passes (on GPT-2's LM head a [rows, 50257]
  // pass each time). A plain backward makes its own short-lived copy (autograd/ops/matmul.ts).
  if (t.isLazy) t.realize();
  let v = expandView(t, full);
  let { storage, offset, strides } = v.layout();
  let bs = batchStride(batch, strides.slice(0, batch.length));
  // Copy when the layout is not a strided batch of matrices (rare: odd permutes of batch dims),
  // or when the view sits in a buffer larger than one binding (a slice of GPT-2's embedding on
  // lavapipe): the copy is made by the windowed elementwise kernel and binds whole.
  if (bs === null || (strides[full.length - 1] !== 1 && strides[full.length - 2] !== 1) || storage.buffer.size > bindingLimit()) {
    const c = v.contiguousCopy();
    v.dispose();
    v = c;
    ({ storage, offset, strides } = v.layout());
    bs = batchStride(batch, strides.slice(0, batch.length))!;
  }
  const op = { storage: storage.retain(), offset, batchStride: bs, rowStride: strides[full.length - 2], colStride: strides[full.length - 1] };
  v.dispose();
  return op;
}

/**
 * matmul with NumPy semantics for rank ≥ 2 operands (batch dims broadcast). `defer` records the
 * kernel only when the product is first read, and never if it is freed unread (Storage.deferred).
 */
export function matmul(a: Tensor, b: Tensor, opts: { defer?: boolean } = {}): Tensor {
  if (a.dtype === 'i32' || b.dtype === 'i32') throw new Error(`matmul: operands must be float tensors, got ${a.dtype} @ ${b.dtype} (cast them first)`);
  if (a.rank < 2 || b.rank < 2) throw new Error(`matmul: operands must have rank ≥ 2, got ${fmt(a.shape)} and ${fmt(b.shape)} (reshape vectors to [1, n] or [n, 1])`);
  const [M, K] = a.shape.slice(-2);
  const [K2, N] = b.shape.slice(-2);
  if (K !== K2) throw new Error(`matmul: inner dimensions differ: ${fmt(a.shape)} @ ${fmt(b.shape)} (${K} vs ${K2})`);
  const batch = broadcastShapes('matmul (batch dims)', a.shape.slice(0, -2), b.shape.slice(0, -2));
  const pieces = a.rank === 2 && b.rank === 2 ? matmulInPieces(a, b) : null;
  if (pieces) return pieces;
  const A = operand(a, batch);
  const B = operand(b, batch);
  // f16 @ f16 gives f16 (summed in f32, rounded once); a mix promotes to f32.
  const dtype = a.dtype === 'f16' && b.dtype === 'f16' ? 'f16' : 'f32';
  const out = opts.defer
    ? Storage.deferred(numel(batch) * M * N, dtype, [A.storage, B.storage], () => matmulKernel(A, B, numel(batch), M, N, K, dtype))
    : matmulKernel(A, B, numel(batch), M, N, K, dtype);
  A.storage.release();
  B.storage.release();
  return Tensor.owning(out, [...batch, M, N]);
}

/**
 * A 2-D product whose result or operands do not fit one storage binding (GPT-2 small's MLP at
 * B·T = 16,384 tokens: a [16384, 3072] f32 activation is 201 MB, lavapipe binds 128 MiB), as
 * products of pieces that do, or null when it fits as it is. Each split cuts along an axis that
 * is the slowest-varying of the operand it cuts, so every piece is one contiguous window the
 * kernels can copy or bind: rows of A and C (pieces concatenated), the inner dimension K (partial
 * products summed) or columns of B and C (concatenated; only when C fits). Pieces go through
 * matmul again, so a piece that is still too big is split further.
 */
function matmulInPieces(a: Tensor, b: Tensor): Tensor | null {
  const [M, K] = a.shape;
  const N = b.shape[1];
  const limit = bindingLimit();
  const outBytes = M * N * BYTES[a.dtype === 'f16' && b.dtype === 'f16' ? 'f16' : 'f32'];
  // A lazy operand is realised in place, as operand() does: computed once, whatever its size
  // (a kernel writes it in windows), and the backward's transposed views of it are then views.
  if (a.isLazy && sizeClass(a.size * BYTES[a.dtype]) > limit) a.realize();
  if (b.isLazy && sizeClass(b.size * BYTES[b.dtype]) > limit) b.realize();
  const budget = pieceBudget();
  const strides = (t: Tensor) => (t.isLazy ? [t.shape[1], 1] : t.layout().strides.map(Math.abs));
  // Bytes from the first to the last element of n indices along `axis` (all of the other axis).
  const span = (t: Tensor, axis: 0 | 1, n: number) => ((n - 1) * strides(t)[axis] + (t.shape[1 - axis] - 1) * strides(t)[1 - axis] + 1) * BYTES[t.dtype];
  // Bindable: its own buffer fits, or the window it spans can be copied into one that does.
  const fits = (t: Tensor) => (t.isLazy ? sizeClass(t.size * BYTES[t.dtype]) : t.layout().storage.bytes) <= limit || span(t, 0, t.shape[0]) <= budget;
  if (outBytes <= limit && fits(a) && fits(b)) return null;
  const slowest = (t: Tensor): 0 | 1 => (strides(t)[0] >= strides(t)[1] ? 0 : 1);
  // How many indices along `axis` of t a piece may hold (t must be cut along its slowest axis).
  const along = (t: Tensor, axis: 0 | 1) => Math.floor((budget - span(t, axis, 1)) / (strides(t)[axis] * BYTES[t.dtype])) + 1;
  const most = (...ns: number[]) => {
    const n = Math.min(...ns);
    if (n < 1) throw new Error(`matmul: ${fmt(a.shape)} @ ${fmt(b.shape)} cannot be split into pieces of at most ${formatBytes(budget)} (a single row or column is larger)`);
    return n;
  };
  const cutA = !fits(a) ? slowest(a) : null; // the axis A's pieces must be cut along, if any
  const cutB = !fits(b) ? slowest(b) : null;
  if (outBytes > limit || cutA === 0) {
    // Rows of A and C (concatenated); a B or a transposed A still too big is split in the pieces.
    const r = most(outBytes > limit ? Math.floor(budget / (outBytes / M)) : Infinity, cutA === 0 ? along(a, 0) : Infinity);
    return joined(ranges(M, r).map(([m0, m1]) => matmul(sliceView(a, [m0, 0], [m1, K]), b)), 0);
  }
  if (cutA === 1 || cutB === 0) {
    // The inner dimension: columns of A with rows of B, the partial products summed.
    const kc = most(cutA === 1 ? along(a, 1) : Infinity, cutB === 0 ? along(b, 0) : Infinity);
    const parts = ranges(K, kc).map(([k0, k1]) => matmul(sliceView(a, [0, k0], [M, k1]), sliceView(b, [k0, 0], [k1, N])));
    return parts.reduce((sum, p) => {
      const next = binary('add', sum, p).realize();
      sum.dispose();
      p.dispose();
      return next;
    });
  }
  // Columns of a transposed B and of C (which fits), concatenated.
  return joined(ranges(N, most(along(b, 1))).map(([n0, n1]) => matmul(a, sliceView(b, [0, n0], [K, n1]))), 1);
}

// ---------------------------------------------------------------- fused attention

/** Throws unless q, k, v are [B, H, T, D] of one shape (T ≥ 1, D ≥ 1). */
export function checkAttentionShapes(name: string, q: Tensor, k: Tensor, v: Tensor): void {
  const shapes = `q ${fmt(q.shape)}, k ${fmt(k.shape)}, v ${fmt(v.shape)}`;
  if (q.rank !== 4 || !sameShape(q.shape, k.shape) || !sameShape(q.shape, v.shape)) {
    throw new Error(`${name}: q, k and v must all be [B, H, T, D] of the same shape, got ${shapes}`);
  }
  if (q.shape[2] < 1 || q.shape[3] < 1) throw new Error(`${name}: needs T ≥ 1 and D ≥ 1, got ${shapes}`);
}

/** A [B, H, T, D] tensor as a strided operand whose D axis is contiguous (copied when not). */
function attnOperand(t: Tensor): { op: AttnOperand; copy: Tensor | null } {
  let { storage, offset, strides } = t.layout();
  const copy = strides[3] === 1 || t.shape[3] === 1 ? null : t.contiguousCopy();
  if (copy) ({ storage, offset, strides } = copy.layout());
  return { op: { storage, offset, strides: [strides[0], strides[1], strides[2]] }, copy };
}

/**
 * Causal attention in one kernel: out = softmax(q·kᵀ/√D, causal)·v [B, H, T, D] and
 * lse = logsumexp of each row of the scaled, masked scores [B, H, T] (for the backward).
 */
export function causalAttention(q: Tensor, k: Tensor, v: Tensor): { out: Tensor; lse: Tensor } {
  checkAttentionShapes('causalAttention', q, k, v);
  if ([q, k, v].some((t) => t.dtype !== 'f32')) throw new Error(`causalAttention: the fused kernel reads f32 q, k and v, got ${q.dtype}, ${k.dtype}, ${v.dtype}`);
  const [B, H, T, D] = q.shape;
  const ops = [q, k, v].map(attnOperand);
  const { out, lse } = attentionKernel(ops[0].op, ops[1].op, ops[2].op, B, H, T, D);
  ops.forEach((o) => o.copy?.dispose());
  return { out: Tensor.owning(out, [B, H, T, D]), lse: Tensor.owning(lse, [B, H, T]) };
}

// ---------------------------------------------------------------- gather / scatter

/** out[..., :] = src[idx[...], :] for a 2-D src [rows, width]. */
export function indexSelect(src: Tensor, idx: Tensor): Tensor {
  if (src.rank !== 2) throw new Error(`indexSelect: source must be 2-D [rows, width], got ${fmt(src.shape)}`);
  if (idx.dtype !== 'i32') throw new Error(`indexSelect: indices must be i32, got ${idx.dtype}`);
  const [rows, width] = src.shape;
  // An output larger than one binding (GPT-2 small's embeddings of 64×1024 tokens: 201 MB) is
  // gathered for blocks of ids and concatenated.
  const perBlock = Math.max(1, Math.floor(pieceBudget() / (width * BYTES[src.dtype])));
  if (idx.size > perBlock && idx.size * width * BYTES[src.dtype] > bindingLimit()) {
    const flat = reshape(idx, [idx.size]);
    const parts = ranges(idx.size, perBlock).map(([p0, p1]) => {
      const block = sliceView(flat, [p0], [p1]);
      const part = indexSelect(src, block);
      block.dispose();
      return part;
    });
    flat.dispose();
    const out = joined(parts, 0);
    const shaped = reshape(out, [...idx.shape, width]);
    out.dispose();
    return shaped;
  }
  const s = src.shape[1] === 1 || src.isContiguous() ? src : src.contiguousCopy();
  // The gather kernel reads ids from the start of their buffer: a view that starts elsewhere (a
  // slice of a batch's rows) is copied, as a strided one is.
  const i = idx.isContiguous() && idx.layout().offset === 0 ? idx : idx.contiguousCopy();
  const L = s.layout();
  const out = gatherRows(L.storage, L.offset, L.strides[0], rows, width, i.layout().storage, i.size);
  if (s !== src) s.dispose();
  if (i !== idx) i.dispose();
  return Tensor.owning(out, [...idx.shape, width]);
}

/**
 * out = zeros([rows, width]); out[idx[p], :] += src[p, :] (deterministic order). Indices made on
 * the host (token ids) are grouped on the CPU, which also range-checks them; indices computed on
 * the GPU (sampled labels) are grouped there, and out-of-range ones are ignored.
 */
export function scatterAdd(src: Tensor, idx: Tensor, rows: number): Tensor {
  const width = src.shape[src.rank - 1];
  if (!sameShape(src.shape.slice(0, -1), idx.shape)) throw new Error(`scatterAdd: source ${fmt(src.shape)} does not match indices ${fmt(idx.shape)} + [width]`);
  if (idx.dtype !== 'i32') throw new Error(`scatterAdd: indices must be i32, got ${idx.dtype}`);
  const out = full([rows, width], 0);
  const s = src.isContiguous() ? src : src.contiguousCopy();
  const host = idx.isLazy || !idx.isContiguous() ? null : idx.layout().storage.hostIndices;
  if (host) {
    const ids = host.subarray(idx.layout().offset, idx.layout().offset + idx.size);
    const csr = rowLists(ids, rows);
    const csrT = fromArray(csr, [csr.length], 'i32');
    const unique = (csr.length - 1 - ids.length) / 2;
    scatterAddRows(out.layout().storage, rows, s.layout().storage, s.layout().offset, width, csrT.layout().storage, csr.subarray(0, unique));
    csrT.dispose();
  } else {
    const i = idx.isContiguous() && idx.layout().offset === 0 ? idx : idx.contiguousCopy();
    scatterAddRowsDevice(out.layout().storage, rows, s.layout().storage, s.layout().offset, width, i.layout().storage, idx.size);
    if (i !== idx) i.dispose();
  }
  if (s !== src) s.dispose();
  // f16 rows are summed in f32 and rounded once.
  if (src.dtype !== 'f16') return out;
  const half = cast(out, 'f16'); // lazy: holds its own reference on out's buffer
  out.dispose();
  return half;
}

// ---------------------------------------------------------------- assembly

/** Concatenates along `axis` into one new buffer (each part written through a strided view). */
export function concat(parts: readonly Tensor[], axis: number): Tensor {
  if (parts.length === 0) throw new Error('concat: needs at least one tensor');
  const rank = parts[0].rank;
  const [ax] = normalizeAxes('concat', axis, rank);
  parts.forEach((p) => {
    if (p.rank !== rank || p.shape.some((d, i) => i !== ax && d !== parts[0].shape[i])) {
      throw new Error(`concat: shapes ${parts.map((q) => fmt(q.shape)).join(', ')} differ outside axis ${ax}`);
    }
  });
  const shape = [...parts[0].shape];
  shape[ax] = parts.reduce((a, p) => a + p.shape[ax], 0);
  const out = Storage.allocate(numel(shape), parts[0].dtype);
  const strides = contiguousStrides(shape);
  let start = 0;
  for (const p of parts) {
    fusable(p);
    realizeExpr(p.expr(), p.shape, { storage: out, offset: start * strides[ax], strides });
    start += p.shape[ax];
  }
  return Tensor.owning(out, shape);
}

/**
 * In-place update: writes `value` (broadcast to dst's shape) into dst's own buffer, through its
 * view. `value` may read dst itself (p ← p − lr·g): each element is read before it is written,
 * by the same invocation. This is how optimizers update parameters without new buffers.
 */
export function assign(dst: Tensor, value: Tensor): void {
  if (dst.isLazy) throw new Error('assign: the destination must be a realised tensor (a parameter or a buffer), not a lazy expression');
  const v = fusable(value);
  const e = broadcastExpr(v, dst.shape);
  const { storage, offset, strides } = dst.layout();
  storage.hostIndices = null; // a host copy of the ids (scatter-add's sort) no longer holds
  if (!dstElementsDistinct(dst.shape, strides)) throw new Error(`assign: the destination view of shape ${fmt(dst.shape)} has overlapping elements (an expanded view); write into a real buffer`);
  if (readsElsewhere(e, new Map([[storage, { offset, strides }]]))) {
    // The value reads dst at other positions (e.g. dst ← transpose(dst)): go through a copy.
    const tmp = Tensor.lazy(e, dst.shape, dst.dtype).realize();
    realizeExpr(tmp.expr(), dst.shape, { storage, offset, strides });
    tmp.dispose();
  } else {
    realizeExpr(e, dst.shape, { storage, offset, strides });
  }
  storage.noteWrite(...viewExtent(dst.shape, strides, offset));
  v.rebaseOnto(dst);
}

export function dstElementsDistinct(shape: readonly number[], strides: readonly number[]): boolean {
  return shape.every((d, i) => d === 1 || strides[i] !== 0);
}

/** Writes `value` into a zero tensor of `shape` at the slice starting at `starts` (slice's adjoint). */
export function padInto(value: Tensor, shape: readonly number[], starts: readonly number[]): Tensor {
  const out = full(shape, 0);
  const strides = contiguousStrides(shape);
  fusable(value);
  realizeExpr(value.expr(), value.shape, { storage: out.layout().storage, offset: starts.reduce((a, s, i) => a + s * strides[i], 0), strides });
  return out;
}
