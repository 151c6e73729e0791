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

/** Distinct storages an expression reads. */
export function exprStorages(e: Expr, out = new Set<Storage>(), seen = new Set<Expr>()): Set<Storage> {
  if (seen.has(e)) return out;
  seen.add(e);
  if (e.k === 'leaf') out.add(e.storage);
  else if (e.k === 'un') exprStorages(e.a, out, seen);
  else if (e.k === 'bin') (exprStorages(e.a, out, seen), exprStorages(e.b, out, seen));
  else if (e.k === 'where') (exprStorages(e.c, out, seen), exprStorages(e.a, out, seen), exprStorages(e.b, out, seen));
  return out;
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
   * consecutive elements `coords(flat)`, `nextCoords(c)` and `exprAt(flat, c)`.
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

/**
 * Generates `fn expr(flat: u32) -> f32` for `e` over a tensor of `shape`. Shapes, strides and
 * constants live in the params block (read through `P(i)`, starting at word `paramBase`), so one
 * pipeline serves every shape of the same rank and structure.
 */
export function compileExpr(e: Expr, shape: readonly number[], paramBase: number, firstBinding: number, aliasOut?: Storage): CompiledExpr {
  return compileExprs([e], shape, paramBase, firstBinding, aliasOut ? new Map([[aliasOut, 'out']]) : new Map());
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
  opts: { multi?: boolean } = {},
): CompiledExpr {
  // multi: always `exprsAt`, and leaves that read one element for all (a 0-d flag or scalar
  // broadcast, e.g. the optimizers' all-finite flag) load once per invocation in `loadScalars()`,
  // which the kernel calls first, instead of once per element.
  const multi = opts.multi ?? false;
  const scalars: string[] = [];
  const rank = shape.length;
  const storages: Storage[] = [];
  const words: number[] = [];
  const lines: string[] = [];
  const names = new Map<Expr, string>();
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
  // object per use, and on CPU adapters each load costs ~11 instructions.
  const leafNames = new Map<string, string>();
  const visit = (n: Expr): string => {
    const hit = names.get(n);
    if (hit) return hit;
    const leafKey = n.k === 'leaf' ? `${n.storage.id}:${n.offset}:${n.strides.join(',')}` : '';
    const sameLeaf = leafNames.get(leafKey);
    if (sameLeaf) {
      names.set(n, sameLeaf);
      return sameLeaf;
    }
    let v: string;
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
        const hoist = multi && !aliased && n.strides.every((st) => st === 0);
        let idx: string;
        if (hoist) idx = base; // every element reads the one at the offset
        else if (contiguous(n.strides)) idx = `${base} + flat`;
        else {
          const terms = n.strides.map((s, i) => (s === 0 || shape[i] === 1 ? '' : ` + c${i} * P(${word(s)}u)`)).join('');
          if (terms) usesCoords = true; // a fully broadcast leaf reads one element: no coordinates
          idx = `${base}${terms}`;
        }
        const load = aliased ? `${alias}[${idx}]` : `in${b}[${idx}]`;
        v = n.storage.dtype === 'f32' ? load : `f32(${load})`;
        if (hoist) {
          const name = `s${scalars.length}`;
          scalars.push(`  ${name} = ${v};`);
          names.set(n, name);
          leafNames.set(leafKey, name);
          return name;
        }
        break;
      }
      case 'const':
        f32bits[0] = n.value;
        v = `bitcast<f32>(P(${word(u32view[0])}u))`;
        break;
      case 'index':
        usesCoords = true;
        v = n.axis === 0 ? `f32(c0 + P(${base0Word}u))` : `f32(c${n.axis})`;
        break;
      case 'un':
        v = UNARY_WGSL[n.op](visit(n.a));
        break;
      case 'bin':
        v = BINARY_WGSL[n.op](visit(n.a), visit(n.b));
        break;
      case 'where':
        v = `select(${visit(n.b)}, ${visit(n.a)}, ${visit(n.c)} != 0.0)`;
        break;
    }
    if (n.k === 'const') {
      names.set(n, v);
      return v;
    }
    const name = `v${lines.length}`;
    lines.push(`  let ${name} = ${v};`);
    names.set(n, name);
    if (leafKey) leafNames.set(leafKey, name);
    return name;
  };
  const results = roots.map(visit);
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
    ...scalars.map((_, i) => `var<private> s${i}: f32;`),
    `fn loadScalars() {\n${scalars.join('\n')}\n}`,
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
