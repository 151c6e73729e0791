// A buffer pool: tensors come and go every step, GPU buffers should not.
//
// Sizes are rounded up to a size class (1, 1.25, 1.5 or 1.75 × a power of two, so at most 25 %
// waste) and freed buffers wait in a per-class free list. WebGPU executes one queue in order,
// so a buffer may be handed out again as soon as JavaScript drops it, even if earlier commands
// that read it have not run yet: any later writer is queued behind them.
import { ctx } from './device.ts';

export const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 16) * 16);
  const p = 2 ** Math.floor(Math.log2(b));
  for (const f of [1, 1.25, 1.5, 1.75, 2]) if (p * f >= b) return p * f;
  return 2 * p;
}

export interface PoolStats {
  /** Buffers currently owned by live tensors (or other engine objects). */
  liveBuffers: number;
  liveBytes: number;
  /** Buffers waiting in the free lists for reuse. */
  pooledBuffers: number;
  pooledBytes: number;
  /** Buffers ever created (a steady training loop stops increasing this). */
  created: number;
  /** Highest liveBytes since the start or resetPeakMemory(): the working set of a step. */
  peakLiveBytes: number;
  /** Highest liveBytes + pooledBytes: what was held from the driver at the worst moment. */
  peakHeldBytes: number;
}

class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  stats: PoolStats = { liveBuffers: 0, liveBytes: 0, pooledBuffers: 0, pooledBytes: 0, created: 0, peakLiveBytes: 0, peakHeldBytes: 0 };

  acquire(bytes: number, usage: number = STORAGE_USAGE): GPUBuffer {
    const size = sizeClass(bytes);
    const list = this.free.get(`${usage}:${size}`);
    let buf = list?.pop();
    if (buf) {
      this.stats.pooledBuffers--;
      this.stats.pooledBytes -= size;
    } else {
      buf = ctx().device.createBuffer({ size, usage });
      this.stats.created++;
    }
    this.stats.liveBuffers++;
    this.stats.liveBytes += size;
    this.stats.peakLiveBytes = Math.max(this.stats.peakLiveBytes, this.stats.liveBytes);
    this.stats.peakHeldBytes = Math.max(this.stats.peakHeldBytes, this.stats.liveBytes + this.stats.pooledBytes);
    return buf;
  }

  release(buf: GPUBuffer): void {
    const key = `${buf.usage}:${buf.size}`;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    list.push(buf);
    this.stats.liveBuffers--;
    this.stats.liveBytes -= buf.size;
    this.stats.pooledBuffers++;
    this.stats.pooledBytes += buf.size;
  }

  /** Called before trim() destroys buffers (the runtime drops cached bind groups that name them). */
  readonly beforeTrim: (() => void)[] = [];

  /** Destroys every pooled (unused) buffer, returning memory to the driver. */
  trim(): void {
    for (const f of this.beforeTrim) f();
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.stats.pooledBuffers = 0;
    this.stats.pooledBytes = 0;
  }
}

export const pool = new BufferPool();

export function memoryStats(): PoolStats {
  return { ...pool.stats };
}

/** Starts the peak counters afresh from the current usage (e.g. before the step to measure). */
export function resetPeakMemory(): void {
  pool.stats.peakLiveBytes = pool.stats.liveBytes;
  pool.stats.peakHeldBytes = pool.stats.liveBytes + pool.stats.pooledBytes;
}
