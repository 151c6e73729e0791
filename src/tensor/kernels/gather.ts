// Row gather and its adjoint, the deterministic row scatter-add. Tables and outputs larger than
// one storage binding (GPT-2's embedding) are processed in windows of rows.
import { pipeline, runtime } from '../../gpu/runtime.ts';
import { fillTemplate, paramsBlock } from '../../gpu/shaders.ts';
import { BYTES, Storage } from '../storage.ts';
import { grid } from './launch.ts';
import { bindingLimit } from './windows.ts';

/** Row windows [r0, r1) of a [rows, width] buffer region starting at `offset`, each bindable (start 256-byte aligned). */
function rowWindows(offset: number, rowStride: number, rows: number, width: number, bytesPer: number): { r0: number; r1: number; start: number; bytes: number }[] {
  const limit = bindingLimit();
  const align = 256 / bytesPer;
  const per = Math.max(1, Math.floor((limit - 256) / (rowStride * bytesPer)));
  const out = [];
  for (let r0 = 0; r0 < Math.max(rows, 1); r0 += per) {
    const r1 = Math.min(rows, r0 + per);
    const lo = offset + r0 * rowStride;
    const start = Math.floor(lo / align) * align;
    const end = offset + Math.max(r1 - 1, r0) * rowStride + width;
    out.push({ r0, r1, start, bytes: Math.ceil(((end - start) * bytesPer) / 4) * 4 });
  }
  return out;
}

export function gatherRows(src: Storage, srcOffset: number, rowStride: number, rows: number, width: number, idx: Storage, count: number): Storage {
  const out = Storage.allocate(count * width, src.dtype);
  if (count * width === 0) return out;
  const words = [count * width, width, rows, rowStride, srcOffset, 0, 1];
  const pipe = pipeline(fillTemplate('gather', { PARAMS: paramsBlock(words.length), SRC_TYPE: src.dtype }), 'gather');
  const bytesPer = BYTES[src.dtype];
  const windows = src.buffer.size <= bindingLimit() ? [{ r0: 0, r1: rows, start: 0, bytes: src.buffer.size }] : rowWindows(srcOffset, rowStride, rows, width, bytesPer);
  windows.forEach((w, i) => {
    const p = Uint32Array.from([count * width, width, w.r1 - w.r0, rowStride, srcOffset + w.r0 * rowStride - w.start, w.r0, i === 0 ? 1 : 0]);
    runtime.dispatch(pipe, p, [{ buffer: out.buffer }, { buffer: src.buffer, offset: w.start * bytesPer, size: w.bytes }, { buffer: idx.buffer }], grid(count * width));
  });
  return out;
}

/** CSR lists of the positions of each distinct id, ascending: [rows, rowStart, positions]. */
export function rowLists(ids: Int32Array, rows: number): Int32Array {
  const counts = new Map<number, number>();
  for (const id of ids) {
    if (id < 0 || id >= rows) throw new Error(`scatter-add / embedding backward: index ${id} is out of range [0, ${rows})`);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const unique = [...counts.keys()].sort((a, b) => a - b);
  const start = new Map<number, number>();
  const csr = new Int32Array(2 * unique.length + 1 + ids.length);
  let acc = 0;
  unique.forEach((u, i) => {
    csr[i] = u;
    csr[unique.length + i] = acc;
    start.set(u, acc);
    acc += counts.get(u)!;
  });
  csr[2 * unique.length] = acc;
  const posBase = 2 * unique.length + 1;
  ids.forEach((id, pos) => {
    const s = start.get(id)!;
    csr[posBase + s] = pos;
    start.set(id, s + 1);
  });
  return csr;
}

/**
 * out [rows, width] (zero-filled by the caller) += src rows at the positions listed in csr.
 * `uniqueRows` are the sorted distinct ids (csr's first part), used to split big outputs.
 */
export function scatterAddRows(out: Storage, rows: number, src: Storage, srcOffset: number, width: number, csr: Storage, uniqueRows: Int32Array): void {
  const unique = uniqueRows.length;
  if (unique * width === 0) return;
  const words = [unique, width, srcOffset, 0, unique, 0];
  const pipe = pipeline(fillTemplate('scatter_add', { PARAMS: paramsBlock(words.length), SRC_TYPE: src.dtype }), 'scatter_add');
  const windows = out.buffer.size <= bindingLimit() ? [{ r0: 0, r1: rows, start: 0, bytes: out.buffer.size }] : rowWindows(0, width, rows, width, BYTES[out.dtype]);
  let u0 = 0;
  for (const w of windows) {
    let u1 = u0;
    while (u1 < unique && uniqueRows[u1] < w.r1) u1++;
    if (u1 > u0) {
      const p = Uint32Array.from([unique, width, srcOffset, u0, u1 - u0, w.start]);
      runtime.dispatch(pipe, p, [{ buffer: out.buffer, offset: w.start * 4, size: w.bytes }, { buffer: src.buffer }, { buffer: csr.buffer }], grid((u1 - u0) * width));
    }
    u0 = u1;
  }
}

/**
 * The same scatter-add for indices that exist only on the GPU (no host copy to build CSR lists
 * from, e.g. labels sampled by the model): a stable counting order is computed on the GPU
 * (scatter_rank.wgsl), then each id's run is summed in ascending position order. Deterministic;
 * ids outside [0, rows) are ignored. `out` [rows, width] is zero-filled by the caller.
 */
export function scatterAddRowsDevice(out: Storage, rows: number, src: Storage, srcOffset: number, width: number, ids: Storage, count: number): void {
  if (count * width === 0) return;
  const order = Storage.allocate(count, 'i32');
  const rank = pipeline(fillTemplate('scatter_rank', { PARAMS: paramsBlock(1) }), 'scatter_rank');
  runtime.dispatch(rank, Uint32Array.from([count]), [{ buffer: order.buffer }, { buffer: ids.buffer }], grid(count));
  const pipe = pipeline(fillTemplate('scatter_add_sorted', { PARAMS: paramsBlock(6), SRC_TYPE: src.dtype }), 'scatter_add_sorted');
  const windows = out.buffer.size <= bindingLimit() ? [{ r0: 0, r1: rows, start: 0, bytes: out.buffer.size }] : rowWindows(0, width, rows, width, BYTES[out.dtype]);
  for (const w of windows) {
    const p = Uint32Array.from([count, width, srcOffset, w.r0, w.r1 - w.r0, w.start]);
    runtime.dispatch(pipe, p, [{ buffer: out.buffer, offset: w.start * 4, size: w.bytes }, { buffer: src.buffer }, { buffer: ids.buffer }, { buffer: order.buffer }], grid(count * width));
  }
  order.release();
}
