// Row gather and its adjoint, the deterministic row scatter-add.
import { pipeline, runtime } from '../../gpu/runtime.ts';
import { fillTemplate, paramsBlock } from '../../gpu/shaders.ts';
import { Storage } from '../storage.ts';
import { grid } from './launch.ts';

export function gatherRows(src: Storage, srcOffset: number, rowStride: number, rows: number, width: number, idx: Storage, count: number): Storage {
  const out = Storage.allocate(count * width, 'f32');
  if (count * width === 0) return out;
  const words = [count * width, width, rows, rowStride, srcOffset];
  const source = fillTemplate('gather', { PARAMS: paramsBlock(words.length) });
  runtime.dispatch(pipeline(source, 'gather'), new Uint32Array(words), [out, src, idx].map((s) => ({ buffer: s.buffer })), grid(count * width));
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

/** out [rows, width] (zero-filled by the caller) += src rows at the positions listed in csr. */
export function scatterAddRows(out: Storage, src: Storage, srcOffset: number, width: number, csr: Storage, unique: number): void {
  if (unique * width === 0) return;
  const words = [unique, width, srcOffset];
  const source = fillTemplate('scatter_add', { PARAMS: paramsBlock(words.length) });
  runtime.dispatch(pipeline(source, 'scatter_add'), new Uint32Array(words), [out, src, csr].map((s) => ({ buffer: s.buffer })), grid(unique * width));
}
