// Lazy elementwise expressions: the engine's fusion.
//
// Elementwise ops do not run a kernel. They build an expression tree whose leaves are views of
// realised buffers (offset + strides relative to the expression's shape). The tree becomes one
// WGSL kernel when something needs the values: a matmul, a reduction (which inlines the tree into
// its own loop), a readback. On lavapipe every load costs ~11 instructions and elementwise kernels
// run at ~5 GB/s, so a chain like GELU's backward in one kernel instead of ten matters.
import type { Storage } from './storage.ts';

export type UnaryOp = 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'tanh' | 'abs' | 'sign' | 'recip' | 'sin' | 'cos' | 'floor' | 'expm1' | 'cast_i32' | 'isfinite' | 'round_f16';
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'max' | 'min' | 'lt' | 'le' | 'gt' | 'ge' | 'eq' | 'ne';

export type Expr =
  | { k: 'leaf'; storage: Storage; offset: number; strides: number[] }
  | { k: 'const'; value: number }
  | { k: 'index'; axis: number } // the coordinate along an axis (arange, one-hot masks)
  | { k: 'un'; op: UnaryOp; a: Expr }
  | { k: 'bin'; op: BinaryOp; a: Expr; b: Expr }
  | { k: 'where'; c: Expr; a: Expr; b: Expr };

export function exprSize(e: Expr, seen = new Set<Expr>()): number {
  if (seen.has(e)) return 0;
  seen.add(e);
  switch (e.k) {
    case 'leaf':
    case 'const':
    case 'index':
      return 1;
    case 'un':
      return 1 + exprSize(e.a, seen);
    case 'bin':
      return 1 + exprSize(e.a, seen) + exprSize(e.b, seen);
    case 'where':
      return 1 + exprSize(e.c, seen) + exprSize(e.a, seen) + exprSize(e.b, seen);
  }
}

/** Calls `f` on each leaf of `e` once (shared subtrees are visited once). */
export function forEachLeaf(e: Expr, f: (leaf: Extract<Expr, { k: 'leaf' }>) => void, seen = new Set<Expr>()): void {
  if (seen.has(e)) return;
  seen.add(e);
  if (e.k === 'leaf') f(e);
  else if (e.k === 'un') forEachLeaf(e.a, f, seen);
  else if (e.k === 'bin') (forEachLeaf(e.a, f, seen), forEachLeaf(e.b, f, seen));
  else if (e.k === 'where') (forEachLeaf(e.c, f, seen), forEachLeaf(e.a, f, seen), forEachLeaf(e.b, f, seen));
}

/** Distinct storages an expression reads (added to `out`). */
export function exprStorages(e: Expr, out = new Set<Storage>()): Set<Storage> {
  forEachLeaf(e, (leaf) => out.add(leaf.storage));
  return out;
}

/** Where a destination sits in its storage (an in-place write's view). */
export interface Placement {
  offset: number;
  strides: readonly number[];
}

/**
 * True when some leaf reads one of the destinations' storages through another layout (a
 * transpose, a shifted slice): in an in-place kernel it would see other invocations' writes.
 */
export function readsElsewhere(e: Expr, destinations: ReadonlyMap<Storage, Placement>): boolean {
  let elsewhere = false;
  forEachLeaf(e, (leaf) => {
    const d = destinations.get(leaf.storage);
    elsewhere ||= d !== undefined && (leaf.offset !== d.offset || leaf.strides.length !== d.strides.length || leaf.strides.some((st, i) => st !== d.strides[i]));
  });
  return elsewhere;
}

/**
 * Rewrites every leaf (and index node) of `e` through `f`, preserving sharing. Views of lazy
 * tensors (broadcast, permute, slice, reshape) are implemented this way.
 */
export function mapLeaves(
  e: Expr,
  leaf: (l: Extract<Expr, { k: 'leaf' }>) => Expr,
  index: (i: Extract<Expr, { k: 'index' }>) => Expr,
  memo = new Map<Expr, Expr>(),
): Expr {
  const hit = memo.get(e);
  if (hit) return hit;
  let r: Expr;
  switch (e.k) {
    case 'leaf':
      r = leaf(e);
      break;
    case 'index':
      r = index(e);
      break;
    case 'const':
      r = e;
      break;
    case 'un':
      r = { k: 'un', op: e.op, a: mapLeaves(e.a, leaf, index, memo) };
      break;
    case 'bin':
      r = { k: 'bin', op: e.op, a: mapLeaves(e.a, leaf, index, memo), b: mapLeaves(e.b, leaf, index, memo) };
      break;
    case 'where':
      r = { k: 'where', c: mapLeaves(e.c, leaf, index, memo), a: mapLeaves(e.a, leaf, index, memo), b: mapLeaves(e.b, leaf, index, memo) };
      break;
  }
  memo.set(e, r);
  return r;
}

const UNARY_WGSL: Record<UnaryOp, (a: string) => string> = {
  neg: (a) => `-${a}`,
  exp: (a) => `exp(${a})`,
  log: (a) => `log(${a})`,
  sqrt: (a) => `sqrt(${a})`,
  rsqrt: (a) => `inverseSqrt(${a})`,
  // Clamped: some drivers compute tanh through exp and overflow to NaN for |x| > 44.
  tanh: (a) => `tanh(clamp(${a}, -15.0, 15.0))`,
  abs: (a) => `abs(${a})`,
  sign: (a) => `sign(${a})`,
  recip: (a) => `(1.0 / ${a})`,
  sin: (a) => `sin(${a})`,
  cos: (a) => `cos(${a})`,
  floor: (a) => `floor(${a})`,
  expm1: (a) => `fexpm1(${a})`,
  cast_i32: (a) => `trunc(${a})`,
  // By the exponent bits, which no compiler may fold away (unlike x == x under fast math).
  isfinite: (a) => `select(0.0, 1.0, (bitcast<u32>(${a}) & 0x7f800000u) != 0x7f800000u)`,
  // An f16 result computed in f32: rounded where the op produces it, so a fused chain of f16 ops
  // gives the values that realising each op into f16 storage would (PyTorch's eager f16).
  round_f16: (a) => `f32(f16(${a}))`,
};

const BINARY_WGSL: Record<BinaryOp, (a: string, b: string) => string> = {
  add: (a, b) => `(${a} + ${b})`,
  sub: (a, b) => `(${a} - ${b})`,
  mul: (a, b) => `(${a} * ${b})`,
  div: (a, b) => `(${a} / ${b})`,
  pow: (a, b) => `fpow(${a}, ${b})`,
  max: (a, b) => `max(${a}, ${b})`,
  min: (a, b) => `min(${a}, ${b})`,
  lt: (a, b) => `select(0.0, 1.0, ${a} < ${b})`,
  le: (a, b) => `select(0.0, 1.0, ${a} <= ${b})`,
  gt: (a, b) => `select(0.0, 1.0, ${a} > ${b})`,
  ge: (a, b) => `select(0.0, 1.0, ${a} >= ${b})`,
  eq: (a, b) => `select(0.0, 1.0, ${a} == ${b})`,
  ne: (a, b) => `select(0.0, 1.0, ${a} != ${b})`,
};

// pow as PyTorch defines it for real inputs: negative bases allowed with integral exponents.
// expm1(x) = eˣ − 1 without the cancellation of exp(x) − 1 near 0 (1 − βᵗ for Adam's bias
// correction at β = 0.999, t = 1 is 1e-3: exp(x) − 1 would lose 4 of f32's 7 digits there).
// |x| < 1: the Taylor series to x¹¹/11! (truncation < 1/12! ≈ 2e-9 relative to |eˣ − 1| ≥ 0.63|x|),
// in Horner form; beyond, |eˣ − 1| > 0.63 and exp(x) − 1 loses nothing.
const HELPERS = /* wgsl */ `
fn fexpm1(x: f32) -> f32 {
  if (!(abs(x) < 1.0)) { return exp(x) - 1.0; }
  var p = 1.0 / 39916800.0;
  p = 1.0 / 3628800.0 + x * p;
  p = 1.0 / 362880.0 + x * p;
  p = 1.0 / 40320.0 + x * p;
  p = 1.0 / 5040.0 + x * p;
  p = 1.0 / 720.0 + x * p;
  p = 1.0 / 120.0 + x * p;
  p = 1.0 / 24.0 + x * p;
  p = 1.0 / 6.0 + x * p;
  p = 0.5 + x * p;
  p = 1.0 + x * p;
  return x * p;
}
fn fpow(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  let r = pow(abs(a), b);
  if (a >= 0.0) { return r; }
  var nanBits = 0x7fc00000u; // a var, so the compiler cannot constant-fold NaN away
  if (floor(b) != b) { return bitcast<f32>(nanBits); }
  return select(r, -r, (i32(b) & 1) != 0);
}
`;

/** A compiled expression: WGSL declarations + a function computing element `flat` of the expression's shape. */
export interface CompiledExpr {
  /** Storage buffers read, in binding order (binding = firstBinding + i); `aliasOut` is not among them. */
  storages: Storage[];
  /**
   * WGSL: buffer declarations, helpers, `fn expr(flat: u32) -> f32`, and for callers that walk
   * consecutive elements `coords(flat)`, `nextCoords(c)`, `rowValues(c)` and `exprAt(flat, c)`.
   */
  code: string;
  /** Parameter words this expression appends (leaf offsets/strides, constants). */
  words: number[];
  /** Where each leaf's offset word sits (absolute params index), for rebasing per chunk. */
  leafOffsets: { word: number; storage: Storage; offset: number; strides: readonly number[] }[];
  /** Params index of the dim-0 extent and of the dim-0 coordinate base (chunked dispatches). */
  dim0Word: number;
  base0Word: number;
}

export interface CompileOptions {
  /** Always emit `exprsAt` (several results), even for one root. */
  multi?: boolean;
  /**
   * Hoist what does not change along the last axis (loads of per-row values such as a bias, a
   * LayerNorm statistic, a log-sum-exp or a target id, scalars, and everything computed from them
   * alone) into `rowValues(c)`, which the kernel calls once and again whenever the last coordinate
   * wraps. On CPU adapters every load is a scalar load per lane, so a load not repeated per element
   * is the saving. Only for kernels that call rowValues (elementwise_main.wgsl).
   */
  hoist?: boolean;
}

/**
 * Generates `fn expr(flat: u32) -> f32` for `e` over a tensor of `shape`. Shapes, strides and
 * constants live in the params block (read through `P(i)`, starting at word `paramBase`), so one
 * pipeline serves every shape of the same rank and structure.
 */
export function compileExpr(e: Expr, shape: readonly number[], paramBase: number, firstBinding: number, aliasOut?: Storage, opts: CompileOptions = {}): CompiledExpr {
  return compileExprs([e], shape, paramBase, firstBinding, aliasOut ? new Map([[aliasOut, 'out']]) : new Map(), opts);
}

/**
 * Several expressions over one shape, compiled together so shared subtrees are computed once.
 * One root gives `exprAt`/`expr` as above; several give `fn exprsAt(flat, c) -> array<f32, N>`
 * (every load happens before the caller stores anything). Leaves reading a storage in
 * `aliases` go through the named writable binding instead of a read-only one.
 */
export function compileExprs(
  roots: readonly Expr[],
  shape: readonly number[],
  paramBase: number,
  firstBinding: number,
  aliases: ReadonlyMap<Storage, string>,
  opts: CompileOptions = {},
): CompiledExpr {
  const multi = opts.multi ?? false;
  const rank = shape.length;
  const last = rank - 1;
  // Hoisting pays when a row holds several elements.
  const hoist = (opts.hoist ?? false) && rank > 0 && shape[last] > 1;
  const storages: Storage[] = [];
  const words: number[] = [];
  const lines: string[] = []; // per element, in exprAt
  const rowLines: string[] = []; // per row, in rowValues
  let rowDependsOnCoords = false;
  // Each value's WGSL name, and whether it changes along the last axis ("per element").
  const names = new Map<Expr, { name: string; perElement: boolean }>();
  const word = (v: number) => {
    words.push(v);
    return paramBase + words.length - 1;
  };
  const f32bits = new Float32Array(1);
  const u32view = new Uint32Array(f32bits.buffer);
  // Shape words first: the coordinate decomposition uses them. A chunked dispatch covers rows
  // [r0, r1) of dim 0: it rewrites dim 0's extent, the leaves' offsets and base0 (= r0).
  const shapeWord = shape.map((d) => word(d));
  const base0Word = word(0);
  const leafOffsets: CompiledExpr['leafOffsets'] = [];
  const contiguous = (strides: number[]) => {
    let acc = 1;
    for (let i = rank - 1; i >= 0; i--) {
      if (shape[i] !== 1 && strides[i] !== acc) return false;
      acc *= shape[i];
    }
    return true;
  };
  let usesCoords = false;
  // Equal leaves (one buffer, one layout) are loaded once: views and t.expr() make a new leaf
  // object per use, and on CPU adapters each load costs ~11 instructions. Equal computations
  // (the same operation on the same named values, e.g. a rule that rebuilds a subtree) are
  // computed once too: their WGSL text is the key.
  const leafNames = new Map<string, { name: string; perElement: boolean }>();
  const computed = new Map<string, { name: string; perElement: boolean }>();
  const visit = (n: Expr): { name: string; perElement: boolean } => {
    const hit = names.get(n);
    if (hit) return hit;
    const leafKey = n.k === 'leaf' ? `${n.storage.id}:${n.offset}:${n.strides.join(',')}` : '';
    const sameLeaf = leafNames.get(leafKey);
    if (sameLeaf) {
      names.set(n, sameLeaf);
      return sameLeaf;
    }
    let v: string;
    let perElement: boolean;
    switch (n.k) {
      case 'leaf': {
        // In-place updates read the destination through the kernel's own `out` binding:
        // WebGPU forbids binding one buffer both read-only and writable in a dispatch.
        const alias = aliases.get(n.storage);
        const aliased = alias !== undefined;
        let b = aliased ? -1 : storages.indexOf(n.storage);
        if (!aliased && b < 0) b = storages.push(n.storage) - 1;
        const offsetWord = word(n.offset);
        leafOffsets.push({ word: offsetWord, storage: n.storage, offset: n.offset, strides: n.strides });
        const base = `P(${offsetWord}u)`;
        const alongRow = shape[last] !== 1 && n.strides[last] !== 0;
        // A destination read in place is read per element: it may be written in this dispatch.
        perElement = !hoist || aliased || alongRow;
        let idx: string;
        if (n.strides.every((st, i) => st === 0 || shape[i] === 1)) idx = base; // one element for all
        else if (contiguous(n.strides)) idx = `${base} + flat`;
        else {
          usesCoords = true;
          idx = base + n.strides.map((s, i) => (s === 0 || shape[i] === 1 ? '' : ` + c${i} * P(${word(s)}u)`)).join('');
          if (!perElement) rowDependsOnCoords = true;
        }
        const load = aliased ? `${alias}[${idx}]` : `in${b}[${idx}]`;
        v = n.storage.dtype === 'f32' ? load : `f32(${load})`;
        break;
      }
      case 'const': {
        f32bits[0] = n.value;
        const c = { name: `bitcast<f32>(P(${word(u32view[0])}u))`, perElement: false };
        names.set(n, c);
        return c;
      }
      case 'index':
        usesCoords = true;
        perElement = !hoist || n.axis === last;
        if (!perElement) rowDependsOnCoords = true;
        v = n.axis === 0 ? `f32(c0 + P(${base0Word}u))` : `f32(c${n.axis})`;
        break;
      case 'un': {
        const a = visit(n.a);
        v = UNARY_WGSL[n.op](a.name);
        perElement = a.perElement;
        break;
      }
      case 'bin': {
        const [a, b] = [visit(n.a), visit(n.b)];
        v = BINARY_WGSL[n.op](a.name, b.name);
        perElement = a.perElement || b.perElement;
        break;
      }
      case 'where': {
        const b = visit(n.b);
        const a = visit(n.a);
        const c = visit(n.c);
        v = `select(${b.name}, ${a.name}, ${c.name} != 0.0)`;
        perElement = c.perElement || a.perElement || b.perElement;
        break;
      }
    }
    // Without hoisting (kernels that never call rowValues) everything is computed per element.
    perElement ||= !hoist;
    let out = n.k === 'leaf' ? undefined : computed.get(v);
    if (!out) {
      if (perElement) {
        out = { name: `v${lines.length}`, perElement };
        lines.push(`  let ${out.name} = ${v};`);
      } else {
        out = { name: `h${rowLines.length}`, perElement };
        rowLines.push(`  ${out.name} = ${v};`);
      }
      if (n.k !== 'leaf') computed.set(v, out);
    }
    names.set(n, out);
    if (leafKey) leafNames.set(leafKey, out);
    return out;
  };
  const results = roots.map((r) => visit(r).name);
  // Coordinates are passed in as an array so a caller that walks consecutive elements (the
  // elementwise kernel) can advance them with a carry instead of a division per element.
  const R = Math.max(rank, 1);
  const unpack = usesCoords ? Array.from({ length: rank }, (_, i) => `  let c${i} = c[${i}];`).join('\n') : '';
  const coords = [`fn coords(flat: u32) -> array<u32, ${R}> {`, `  var c: array<u32, ${R}>;`, '  var rem = flat;'];
  for (let i = rank - 1; i >= 0; i--) {
    coords.push(`  c[${i}] = rem % P(${shapeWord[i]}u);`);
    if (i > 0) coords.push(`  rem = rem / P(${shapeWord[i]}u);`);
  }
  coords.push('  return c;', '}');
  // Next element's coordinates: +1 on the last axis, carrying into the ones before it.
  const next = [`fn nextCoords(c0: array<u32, ${R}>) -> array<u32, ${R}> {`, '  var c = c0;'];
  if (rank > 0) {
    next.push(`  c[${rank - 1}] += 1u;`);
    for (let i = rank - 1; i > 0; i--) next.push(`  if (c[${i}] == P(${shapeWord[i]}u)) { c[${i}] = 0u; c[${i - 1}] += 1u; }`);
  }
  next.push('  return c;', '}');
  const decls = storages
    .map((s, i) => `@group(0) @binding(${firstBinding + i}) var<storage, read> in${i}: array<${s.dtype}>;`)
    .join('\n');
  const code = [
    decls,
    HELPERS,
    coords.join('\n'),
    next.join('\n'),
    ...rowLines.map((_, i) => `var<private> h${i}: f32;`),
    `fn rowValues(c: array<u32, ${R}>) {\n${rowDependsOnCoords ? unpack : ''}\n${rowLines.join('\n')}\n}`,
    // Whether rowValues must run again when a new row starts (false: it reads no coordinates).
    `const ROW_VALUES_PER_ROW = ${rowDependsOnCoords};`,
    ...(results.length === 1 && !multi
      ? [
          `fn exprAt(flat: u32, c: array<u32, ${R}>) -> f32 {\n${unpack}\n${lines.join('\n')}\n  return ${results[0]};\n}`,
          `fn expr(flat: u32) -> f32 { return exprAt(flat, ${usesCoords ? 'coords(flat)' : `array<u32, ${R}>()`}); }`,
        ]
      : [`fn exprsAt(flat: u32, c: array<u32, ${R}>) -> array<f32, ${results.length}> {\n${unpack}\n${lines.join('\n')}\n  return array<f32, ${results.length}>(${results.join(', ')});\n}`]),
    `const EXPR_USES_COORDS = ${usesCoords};`,
  ].join('\n');
  return { storages, code, words, leafOffsets, dim0Word: shapeWord[0] ?? -1, base0Word };
}
