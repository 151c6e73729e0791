// Binding windows: adapters cap one storage binding (lavapipe: 128 MiB), while a tensor may be
// larger (GPT-2's 50257×768 embedding is 154 MB). A kernel over such a tensor is dispatched in
// chunks of dim-0 rows, each binding only the window of every buffer that the chunk touches.
import { bindingLimit, formatBytes, type Binding } from '../../gpu/runtime.ts';
import { BYTES, type Storage } from '../storage.ts';

export interface Access {
  storage: Storage;
  offset: number;
  strides: readonly number[];
}

const ALIGN_BYTES = 256; // minStorageBufferOffsetAlignment

export { bindingLimit, setBindingLimit } from '../../gpu/runtime.ts';

/** Element range [lo, hi) that `a` touches for rows [r0, r1) of `shape`. */
function span(a: Access, shape: readonly number[], r0: number, r1: number): [number, number] {
  let lo = a.offset + r0 * (a.strides[0] ?? 0);
  let hi = lo;
  shape.forEach((d, i) => {
    const extent = i === 0 ? r1 - r0 : d;
    const reach = (extent - 1) * a.strides[i];
    if (reach < 0) lo += reach;
    else hi += reach;
  });
  return [lo, hi + 1];
}

export interface Chunk {
  r0: number;
  r1: number;
  /** Window start (elements) per storage; subtract from every offset into it. */
  base: Map<Storage, number>;
  bindings: Map<Storage, Binding>;
}

/**
 * Splits rows of dim 0 into chunks whose windows fit the binding limit. Without any oversized
 * buffer this is one chunk binding whole buffers (bases 0), the common case.
 */
export function planChunks(shape: readonly number[], accesses: readonly Access[]): Chunk[] {
  const chunks = tryPlanChunks(shape, accesses);
  if (chunks) return chunks;
  throw new Error(`a kernel over shape [${shape}] cannot be split into bindings of at most ${formatBytes(bindingLimit())} (one row along the first axis is already too large): reshape the tensor so its first axis is longer`);
}

/** planChunks, or null where even one row along the first axis needs a larger binding. */
export function tryPlanChunks(shape: readonly number[], accesses: readonly Access[]): Chunk[] | null {
  const limit = bindingLimit();
  const rows = shape[0] ?? 1;
  const whole = (): Chunk => ({
    r0: 0,
    r1: rows,
    base: new Map(accesses.map((a) => [a.storage, 0])),
    bindings: new Map(accesses.map((a) => [a.storage, { buffer: a.storage.buffer }])),
  });
  if (accesses.every((a) => a.storage.bytes <= limit)) return [whole()]; // (bytes: runs no deferred kernel)
  if (shape.length === 0) throw new Error(`a kernel needs a ${formatBytes(Math.max(...accesses.map((a) => a.storage.buffer.size)))} binding, more than this adapter allows (${formatBytes(limit)})`);
  const chunkOf = (r0: number, r1: number): Chunk | null => {
    const ranges = new Map<Storage, [number, number]>();
    for (const a of accesses) {
      const [lo, hi] = span(a, shape, r0, r1);
      const prev = ranges.get(a.storage);
      ranges.set(a.storage, prev ? [Math.min(prev[0], lo), Math.max(prev[1], hi)] : [lo, hi]);
    }
    const base = new Map<Storage, number>();
    const bindings = new Map<Storage, Binding>();
    for (const [s, [lo, hi]] of ranges) {
      const align = ALIGN_BYTES / BYTES[s.dtype];
      const start = Math.floor(lo / align) * align;
      const bytes = Math.min(s.buffer.size, Math.ceil((hi * BYTES[s.dtype]) / 4) * 4) - start * BYTES[s.dtype];
      if (bytes > limit) return null;
      base.set(s, start);
      bindings.set(s, { buffer: s.buffer, offset: start * BYTES[s.dtype], size: Math.max(4, bytes) });
    }
    return { r0, r1, base, bindings };
  };
  let per = rows;
  while (per >= 1) {
    const chunks: Chunk[] = [];
    let ok = true;
    for (let r0 = 0; r0 < rows && ok; r0 += per) {
      const c = chunkOf(r0, Math.min(rows, r0 + per));
      if (c) chunks.push(c);
      else ok = false;
    }
    if (ok) return chunks;
    if (per === 1) break;
    per = Math.ceil(per / 2);
  }
  return null;
}
