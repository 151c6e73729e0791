// GPU time per kernel, from timestamp queries (adapter feature 'timestamp-query'): while a
// profile is open every dispatch runs in its own compute pass whose start and end are stamped,
// and the report sums the stamps by pipeline label. Separate passes and the extra copies slow a
// run down, so use it to find where time goes, not to measure throughput (bench/ does that).
//
//   const report = await profile(() => step());   // label → { ms, count }, largest first
import { ctx } from './device.ts';
import { startingWait } from './poll.ts';

const PAIRS = 2048; // passes per query set; more sets are opened as needed

interface Batch {
  set: GPUQuerySet;
  labels: string[];
}

export class Profiler {
  private batches: Batch[] = [];

  private current(): Batch {
    const last = this.batches[this.batches.length - 1];
    if (last && last.labels.length < PAIRS) return last;
    const set = ctx().device.createQuerySet({ type: 'timestamp', count: 2 * PAIRS });
    const b = { set, labels: [] };
    this.batches.push(b);
    return b;
  }

  /** Timestamp writes for one pass running `label`. */
  passStamps(label: string): GPUComputePassTimestampWrites {
    const b = this.current();
    const i = b.labels.push(label) - 1;
    return { querySet: b.set, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Reads every stamp back (after the profiled work was submitted) and sums them by label. */
  async report(): Promise<Map<string, { ms: number; count: number }>> {
    const { device } = ctx();
    const totals = new Map<string, { ms: number; count: number }>();
    for (const b of this.batches) {
      const bytes = b.labels.length * 16;
      const resolved = device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      const staging = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const enc = device.createCommandEncoder();
      enc.resolveQuerySet(b.set, 0, 2 * b.labels.length, resolved, 0);
      enc.copyBufferToBuffer(resolved, 0, staging, 0, bytes);
      device.queue.submit([enc.finish()]);
      startingWait();
      await staging.mapAsync(GPUMapMode.READ);
      const t = new BigUint64Array(staging.getMappedRange().slice(0));
      staging.unmap();
      b.labels.forEach((label, i) => {
        const e = totals.get(label) ?? { ms: 0, count: 0 };
        e.ms += Number(t[2 * i + 1] - t[2 * i]) / 1e6;
        e.count++;
        totals.set(label, e);
      });
      [resolved, staging].forEach((x) => x.destroy());
      b.set.destroy();
    }
    this.batches = [];
    return new Map([...totals].sort((x, y) => y[1].ms - x[1].ms));
  }
}
