// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
// mapping names to {dtype, shape, data_offsets}, then the raw little-endian tensor bytes.
// Host-side only: models and optimizers move tensors to and from the GPU around it.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export type SafeDType = 'F32' | 'I32' | 'F16' | 'F64' | 'I64' | 'BF16' | 'U8' | 'I8' | 'U16' | 'I16' | 'BOOL' | 'U32';

export interface HostTensor {
  dtype: 'F32' | 'I32';
  shape: number[];
  data: Float32Array | Int32Array;
}

const WIDTH: Record<string, number> = { F64: 8, I64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2, U8: 1, I8: 1, BOOL: 1 };

export class SafetensorsError extends Error {
  constructor(file: string, detail: string) {
    super(`${file}: ${detail}`);
    this.name = 'SafetensorsError';
  }
}

/**
 * Parses a safetensors file; F16/BF16/F64 tensors are converted to F32. Tensors named by `skip`
 * have their header entry checked but are neither converted nor returned (a checkpoint's boolean
 * attention mask, which no float type holds).
 */
export function readSafetensors(path: string, skip?: (name: string) => boolean): { tensors: Map<string, HostTensor>; metadata: Record<string, string> } {
  const buf = readFileSync(path);
  return parseSafetensors(buf, path, skip);
}

export function parseSafetensors(buf: Uint8Array, file = '(buffer)', skip?: (name: string) => boolean): { tensors: Map<string, HostTensor>; metadata: Record<string, string> } {
  if (buf.length < 8) throw new SafetensorsError(file, `too short (${buf.length} bytes) to be a safetensors file`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > buf.length - 8 || headerLen > 100 * 1024 * 1024) throw new SafetensorsError(file, `bad header length ${headerLen} (file has ${buf.length} bytes): not a safetensors file, or truncated`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + headerLen)));
  } catch (e) {
    throw new SafetensorsError(file, `header is not valid JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + headerLen;
  const tensors = new Map<string, HostTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = info as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = info as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const width = WIDTH[dtype];
    if (!width) throw new SafetensorsError(file, `tensor '${name}' has unsupported dtype ${dtype}`);
    if (!Array.isArray(shape) || !Array.isArray(data_offsets)) throw new SafetensorsError(file, `tensor '${name}' has a malformed header entry`);
    const count = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = data_offsets;
    if (end - begin !== count * width || dataStart + end > buf.length || begin < 0) {
      throw new SafetensorsError(file, `tensor '${name}' (${dtype} [${shape}]) has data_offsets [${begin}, ${end}] inconsistent with its size or the file length (truncated file?)`);
    }
    if (skip?.(name)) continue;
    // A view where the data is aligned for its typed array; a copy where it is not (other
    // writers need not align tensors, and Buffer.slice is a view, not a copy).
    const at = buf.byteOffset + dataStart + begin;
    const bytes = at % width === 0 ? buf.subarray(dataStart + begin, dataStart + end) : new Uint8Array(buf.subarray(dataStart + begin, dataStart + end));
    const converted = convert(bytes, dtype, count);
    if (!converted) throw new SafetensorsError(file, `tensor '${name}' has dtype ${dtype}, which cannot be loaded as a float or int tensor (F32, F16, BF16, F64, I32, I64 can)`);
    tensors.set(name, { ...converted, shape });
  }
  return { tensors, metadata };
}

function convert(bytes: Uint8Array, dtype: string, count: number): { dtype: 'F32' | 'I32'; data: Float32Array | Int32Array } | null {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32':
      return { dtype: 'F32', data: new Float32Array(bytes.buffer, bytes.byteOffset, count) };
    case 'I32':
      return { dtype: 'I32', data: new Int32Array(bytes.buffer, bytes.byteOffset, count) };
    case 'F64':
      return { dtype: 'F32', data: Float32Array.from({ length: count }, (_, i) => dv.getFloat64(i * 8, true)) };
    case 'I64':
      return { dtype: 'I32', data: Int32Array.from({ length: count }, (_, i) => Number(dv.getBigInt64(i * 8, true))) };
    case 'F16':
      return { dtype: 'F32', data: Float32Array.from({ length: count }, (_, i) => f16(dv.getUint16(i * 2, true))) };
    case 'BF16':
      return { dtype: 'F32', data: Float32Array.from({ length: count }, (_, i) => new Float32Array(new Uint32Array([dv.getUint16(i * 2, true) << 16]).buffer)[0]) };
    default:
      return null;
  }
}

function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Serialises named tensors (sorted by name, 8-byte aligned header, as HF writes them). */
export function encodeSafetensors(tensors: Map<string, HostTensor> | Record<string, HostTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const entries = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))].sort(([a], [b]) => (a < b ? -1 : 1));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const bytes = t.data.byteLength;
    if (t.data.length !== t.shape.reduce((a, b) => a * b, 1)) throw new Error(`safetensors: '${name}' has ${t.data.length} values for shape [${t.shape}]`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  // Padded in UTF-8 bytes (names or metadata may hold non-ASCII), so the data stays 8-byte aligned.
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const head = new Uint8Array(raw.length + ((8 - ((8 + raw.length) % 8)) % 8)).fill(0x20);
  head.set(raw);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let pos = 8 + head.length;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}

/** Writes atomically: to a temporary file, fsync, then rename over the target. */
export function writeSafetensors(path: string, tensors: Map<string, HostTensor> | Record<string, HostTensor>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    // writeSync may write less than asked (large buffers): loop until every byte is down.
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  // The rename is durable once the folder is on disk too.
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
