// A reference-counted GPU buffer. Views of one tensor share a Storage; lazy (unrealised)
// tensors hold references to the storages their expression reads.
import { requireF16 } from '../gpu/device.ts';
import { unwatchWrites, watchWrites } from '../gpu/hazards.ts';
import { pool, sizeClass } from '../gpu/pool.ts';

/** f16 is a storage type: kernels load it into f32, compute in f32 and round when they store it. */
export type DType = 'f32' | 'f16' | 'i32';

export const BYTES: Record<DType, number> = { f32: 4, f16: 2, i32: 4 };

let nextId = 1;

export class Storage {
  readonly id = nextId++;
  refs = 1;
  /**
   * Counts the in-place writes into this storage (assign, assignMany). A lazy tensor notes the
   * versions of what it reads and refuses to run once a later write touched elements it reads.
   */
  version = 0;
  /** The element ranges [lo, hi] of the latest in-place writes, with the version each made. */
  private writes: { version: number; lo: number; hi: number }[] = [];
  /** Host copy of integer index data, when it came from the host (lets scatter-add sort on the CPU). */
  hostIndices: Int32Array | null = null;

  private _buffer: GPUBuffer | null;
  private pending: Deferred | null = null;

  constructor(
    buffer: GPUBuffer | null,
    readonly elements: number,
    readonly dtype: DType,
  ) {
    this._buffer = buffer;
  }

  static allocate(elements: number, dtype: DType): Storage {
    if (dtype === 'f16') requireF16();
    return new Storage(pool.acquire(Math.max(1, elements) * BYTES[dtype]), elements, dtype);
  }

  /**
   * A storage whose contents `compute` makes (into a storage of its own, which this one adopts)
   * only when something first touches `buffer`; if it is freed untouched, the kernel never runs.
   * The double-backward of an HVP is what this is for: the first backward's parameter gradients
   * (dW = xᵀ·dy, one matmul per layer) are recorded for their graph, but only the graph is
   * differentiated, so their values are never read. `reads` are retained until then and guarded
   * against in-place writes (gpu/hazards.ts); `compute` must read nothing else that can change.
   */
  static deferred(elements: number, dtype: DType, reads: readonly Storage[], compute: () => Storage): Storage {
    const s = new Storage(null, elements, dtype);
    const buffers = reads.map((r) => r.buffer); // (an input that is itself deferred runs now)
    reads.forEach((r) => r.retain());
    const run = () => s.runDeferred();
    s.pending = { reads: [...reads], buffers, compute, run };
    buffers.forEach((b) => watchWrites(b, run));
    return s;
  }

  /** The GPU buffer (a deferred storage records its kernel first). */
  get buffer(): GPUBuffer {
    if (this._buffer === null) this.runDeferred();
    return this._buffer!;
  }

  /** The buffer's size in bytes, without running a deferred kernel. */
  get bytes(): number {
    return this._buffer?.size ?? sizeClass(Math.max(1, this.elements) * BYTES[this.dtype]);
  }

  /** Whether the kernel that fills this storage has not been recorded yet. */
  get isDeferred(): boolean {
    return this.pending !== null;
  }

  private runDeferred(): void {
    const p = this.pending;
    if (!p) throw new Error(`internal: storage #${this.id} was freed`);
    this.pending = null;
    p.buffers.forEach((b) => unwatchWrites(b, p.run));
    const made = p.compute();
    if (made.elements !== this.elements || made.dtype !== this.dtype || made.refs !== 1) {
      throw new Error(`internal: a deferred kernel made ${made.elements} × ${made.dtype} (refs ${made.refs}) for ${this.elements} × ${this.dtype}`);
    }
    this._buffer = made._buffer;
    made._buffer = null;
    made.refs = 0;
    p.reads.forEach((r) => r.release());
  }

  /** Records an in-place write of elements lo…hi (inclusive). */
  noteWrite(lo: number, hi: number): void {
    this.version++;
    this.writes.push({ version: this.version, lo, hi });
    if (this.writes.length > KEPT_WRITES) this.writes.shift();
  }

  /**
   * Whether a write since `version` touched elements lo…hi. Only the latest writes keep their
   * ranges: past those, any write counts.
   */
  writtenSince(version: number, lo: number, hi: number): boolean {
    if (version === this.version) return false;
    if (this.writes.length === 0 || this.writes[0].version > version + 1) return true;
    return this.writes.some((w) => w.version > version && w.lo <= hi && lo <= w.hi);
  }

  retain(): this {
    if (this.refs <= 0) throw new Error('internal: retaining a freed storage');
    this.refs++;
    return this;
  }

  release(): void {
    if (this.refs < 1) throw new Error('internal: storage released twice');
    if (--this.refs > 0) return;
    const p = this.pending;
    if (p) {
      this.pending = null;
      p.buffers.forEach((b) => unwatchWrites(b, p.run));
      p.reads.forEach((r) => r.release());
    } else {
      pool.release(this._buffer!);
    }
  }
}

/** In-place writes whose ranges a storage remembers (a KV cache writes one slice per token). */
const KEPT_WRITES = 16;

interface Deferred {
  reads: Storage[];
  buffers: GPUBuffer[];
  compute: () => Storage;
  run: () => void;
}
