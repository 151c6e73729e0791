// The Tensor: a shape over either a realised GPU buffer (storage + offset + strides, so views
// cost nothing) or a lazy elementwise expression (see expr.ts). Autograd fields are plain data
// here; the graph logic lives in src/autograd.
import { runtime } from '../gpu/runtime.ts';
import { Storage, type DType, BYTES } from './storage.ts';
import { type Expr, exprStorages, forEachLeaf, mapLeaves } from './expr.ts';
import { contiguousStrides, fmt, numel, reshapeStrides, sameShape as sameShapes, type Shape, viewExtent } from './shape.ts';
import { realizeExpr } from './kernels/elementwise.ts';
import { decodeHalves } from './half.ts';
import { track } from './scope.ts';

/** What src/autograd attaches to a tensor produced by a differentiable op. */
export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /**
   * Given dL/d(output), returns dL/d(input) for each input (null = no gradient). `needs[k]`
   * false means nobody wants input k's gradient (default: every input that requires grad).
   */
  backward(gradOutput: Tensor, needs?: readonly boolean[]): (Tensor | null)[];
}

let nextId = 1;

// A tensor dropped without dispose() still gives its buffer back when garbage-collected.
const finalizer = new FinalizationRegistry<Storage[]>((held) => held.forEach((s) => s.release()));

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly dtype: DType;
  private _storage: Storage | null = null;
  private _offset = 0;
  private _strides: number[] = [];
  private _lazy: Expr | null = null;
  /** Storages this tensor holds a reference on (its own, or those its expression reads). */
  private held: Storage[] = [];
  /** A lazy tensor: each held storage's version when the expression was built. */
  private heldVersions: number[] = [];
  private _disposed = false;

  requiresGrad = false;
  gradFn: GradNode | null = null;
  grad: Tensor | null = null;
  /** Optional name (parameters, debugging). */
  name = '';

  private constructor(shape: Shape, dtype: DType) {
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    track(this);
  }

  /** A tensor viewing `storage` (takes a new reference on it). */
  static view(storage: Storage, shape: Shape, strides: readonly number[], offset: number): Tensor {
    const t = new Tensor(shape, storage.dtype);
    t._storage = storage.retain();
    t._strides = [...strides];
    t._offset = offset;
    t.hold([storage]);
    return t;
  }

  /** A tensor owning a freshly allocated storage (the reference passes to it). */
  static owning(storage: Storage, shape: Shape): Tensor {
    const t = Tensor.view(storage, shape, contiguousStrides(shape), 0);
    storage.release(); // view() retained; ownership is the single reference
    return t;
  }

  static lazy(expr: Expr, shape: Shape, dtype: DType = 'f32'): Tensor {
    const t = new Tensor(shape, dtype);
    t._lazy = expr;
    const deps = [...exprStorages(expr)];
    deps.forEach((s) => s.retain());
    t.hold(deps);
    t.heldVersions = deps.map((s) => s.version);
    return t;
  }

  /**
   * After an in-place write of this lazy tensor's value into `dst` (assign(dst, this)), the value
   * lives in dst's buffer: this tensor reads it from there rather than going stale with the
   * inputs the write replaced (x ← x + 1 leaves `x + 1` readable, as in PyTorch).
   */
  rebaseOnto(dst: Tensor): void {
    if (!this._lazy || this._disposed || !sameShapes(this.shape, dst.shape) || this.dtype !== dst.dtype) return;
    const stale = this.held.some((s, i) => s.version !== this.heldVersions[i]);
    if (!stale) return;
    const leaf = dst.expr();
    this.dropHeld();
    this._lazy = leaf;
    const storage = dst._storage!.retain();
    this.hold([storage]);
    this.heldVersions = [storage.version];
  }

  /** A lazy tensor whose inputs were overwritten in place since it was built cannot be computed. */
  private checkInputsUnchanged(): void {
    for (const [i, s] of this.held.entries()) {
      if (s.version === this.heldVersions[i]) continue;
      const [lo, hi] = readExtent(this._lazy!, s, this.shape);
      if (!s.writtenSince(this.heldVersions[i], lo, hi)) {
        this.heldVersions[i] = s.version; // the writes since missed every element read
        continue;
      }
      throw new Error(
        `tensor #${this.id}${this.name ? ` (${this.name})` : ''} of shape ${fmt(this.shape)} is an unevaluated expression over a buffer that was written in place ` +
          `(assign/assignMany, e.g. an optimizer step) after it was built, so the values it was built from are gone. ` +
          `Call .realize() on it (or read it) before the write.`,
      );
    }
  }

  private hold(storages: Storage[]): void {
    this.held = storages;
    finalizer.register(this, storages, this);
  }

  private dropHeld(): void {
    finalizer.unregister(this);
    for (const s of this.held) s.release();
    this.held = [];
    this.heldVersions = [];
  }

  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return numel(this.shape);
  }
  get disposed(): boolean {
    return this._disposed;
  }
  get isLazy(): boolean {
    this.check();
    return this._lazy !== null;
  }

  check(op = 'use'): void {
    if (this._disposed) {
      throw new Error(`Cannot ${op} tensor #${this.id}${this.name ? ` (${this.name})` : ''} of shape ${fmt(this.shape)}: it was disposed. Keep it out of tidy() or dispose it later.`);
    }
  }

  /** This tensor as an expression over its own shape (a leaf, or its lazy tree). */
  expr(): Expr {
    this.check();
    if (this._lazy) {
      this.checkInputsUnchanged();
      return this._lazy;
    }
    return { k: 'leaf', storage: this._storage!, offset: this._offset, strides: this._strides };
  }

  /** Runs the pending expression (if any) into a fresh contiguous buffer. Idempotent. */
  realize(): this {
    this.check('realize');
    if (!this._lazy) return this;
    this.checkInputsUnchanged();
    const storage = Storage.allocate(this.size, this.dtype);
    realizeExpr(this._lazy, this.shape, { storage, offset: 0, strides: contiguousStrides(this.shape) });
    this.dropHeld();
    this._lazy = null;
    this._storage = storage;
    this._offset = 0;
    this._strides = contiguousStrides(this.shape);
    this.hold([storage]);
    return this;
  }

  /** The realised layout, for kernels. */
  layout(): { storage: Storage; offset: number; strides: readonly number[] } {
    this.realize();
    return { storage: this._storage!, offset: this._offset, strides: this._strides };
  }

  isContiguous(): boolean {
    if (this.isLazy) return false;
    const c = contiguousStrides(this.shape);
    return this.shape.every((d, i) => d === 1 || this._strides[i] === c[i]);
  }

  /** A view with new shape/strides/offset over the same data; lazy tensors map their leaves. */
  restride(shape: Shape, strideOf: (strides: readonly number[]) => number[], offsetOf: (offset: number, strides: readonly number[]) => number, indexAxis?: (axis: number) => Expr): Tensor {
    this.check('view');
    if (this._lazy) this.checkInputsUnchanged();
    if (!this._lazy) return Tensor.view(this._storage!, shape, strideOf(this._strides), offsetOf(this._offset, this._strides));
    const e = mapLeaves(
      this._lazy,
      (l) => ({ k: 'leaf', storage: l.storage, strides: strideOf(l.strides), offset: offsetOf(l.offset, l.strides) }),
      (i) => (indexAxis ? indexAxis(i.axis) : i),
    );
    return Tensor.lazy(e, shape, this.dtype);
  }

  /** Reshape without copying when the layout allows it (lazy tensors: when every leaf allows it). */
  reshapeView(to: Shape): Tensor | null {
    this.check('reshape');
    if (!this._lazy) {
      const s = reshapeStrides(this.shape, this._strides, to);
      return s ? Tensor.view(this._storage!, to, s, this._offset) : null;
    }
    this.checkInputsUnchanged();
    let ok = true;
    let hasIndex = false;
    const e = mapLeaves(
      this._lazy,
      (l) => {
        const s = reshapeStrides(this.shape, l.strides, to);
        if (!s) ok = false;
        return { k: 'leaf', storage: l.storage, offset: l.offset, strides: s ?? [] };
      },
      (i) => ((hasIndex = true), i),
    );
    return ok && !hasIndex ? Tensor.lazy(e, to, this.dtype) : null;
  }

  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    this.dropHeld();
    this._storage = null;
    this._lazy = null;
    this.gradFn = null;
  }

  /** Reads the values back as f32 (the only way data leaves the GPU; f16 converts exactly, i32 exactly below 2^24). */
  async toArray(): Promise<Float32Array> {
    const raw = await this.readRaw();
    if (this.dtype === 'f16') return decodeHalves(new Uint16Array(raw, 0, this.size));
    return this.dtype === 'f32' ? new Float32Array(raw) : Float32Array.from(new Int32Array(raw));
  }

  /** Reads an i32 tensor back. */
  async toInt32Array(): Promise<Int32Array> {
    if (this.dtype !== 'i32') throw new Error(`toInt32Array(): tensor is ${this.dtype}; use toArray()`);
    return new Int32Array(await this.readRaw());
  }

  private async readRaw(): Promise<ArrayBuffer> {
    this.check('read');
    // Buffer copies start at multiples of 4 bytes: an f16 view at an odd offset is copied first.
    const aligned = this.dtype !== 'f16' || this.isLazy || this.layout().offset % 2 === 0;
    const src = this.isContiguous() && aligned ? this : this.contiguousCopy();
    const { storage, offset } = src.layout();
    const bytes = await runtime.readBuffer(storage.buffer, offset * BYTES[this.dtype], this.size * BYTES[this.dtype]);
    if (src !== this) src.dispose();
    return bytes;
  }

  /** Reads a one-element tensor as a number. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item(): tensor has shape ${fmt(this.shape)}, not a single element`);
    return (await this.toArray())[0];
  }

  /** A contiguous copy (no autograd; see ops for the differentiable `contiguous`). */
  contiguousCopy(): Tensor {
    return Tensor.lazy(this.expr(), this.shape, this.dtype).realize();
  }

  toString(): string {
    return `Tensor#${this.id}(${fmt(this.shape)}, ${this.dtype}${this._lazy ? ', lazy' : ''}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

/** The lowest and highest element of `storage` that the leaves of `e` (over `shape`) read. */
function readExtent(e: Expr, storage: Storage, shape: readonly number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  forEachLeaf(e, (leaf) => {
    if (leaf.storage !== storage) return;
    const [a, b] = viewExtent(shape, leaf.strides, leaf.offset);
    lo = Math.min(lo, a);
    hi = Math.max(hi, b);
  });
  return [lo, hi];
}
