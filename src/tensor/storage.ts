// A reference-counted GPU buffer. Views of one tensor share a Storage; lazy (unrealised)
// tensors hold references to the storages their expression reads.
import { requireF16 } from '../gpu/device.ts';
import { pool } from '../gpu/pool.ts';

/** f16 is a storage type: kernels load it into f32, compute in f32 and round when they store it. */
export type DType = 'f32' | 'f16' | 'i32';

export const BYTES: Record<DType, number> = { f32: 4, f16: 2, i32: 4 };

let nextId = 1;

export class Storage {
  readonly id = nextId++;
  refs = 1;
  /** Host copy of integer index data, when it came from the host (lets scatter-add sort on the CPU). */
  hostIndices: Int32Array | null = null;

  constructor(
    readonly buffer: GPUBuffer,
    readonly elements: number,
    readonly dtype: DType,
  ) {}

  static allocate(elements: number, dtype: DType): Storage {
    if (dtype === 'f16') requireF16();
    return new Storage(pool.acquire(Math.max(1, elements) * BYTES[dtype]), elements, dtype);
  }

  retain(): this {
    if (this.refs <= 0) throw new Error('internal: retaining a freed storage');
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs === 0) pool.release(this.buffer);
    if (this.refs < 0) throw new Error('internal: storage released twice');
  }
}
