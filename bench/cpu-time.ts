import { readdirSync, readFileSync } from 'node:fs';
// CPU time per thread of this process (Linux /proc; empty elsewhere). On a shared 2-core machine
// wall time swings with the load; the CPU time of lavapipe's two worker threads is steadier.

/** Nanoseconds of CPU each thread of this process has used so far. */
export function threadTimes(): Map<string, number> {
  const m = new Map<string, number>();
  try {
    for (const id of readdirSync('/proc/self/task')) {
      try {
        m.set(id, Number(readFileSync(`/proc/self/task/${id}/schedstat`, 'utf8').split(' ')[0]));
      } catch {
        /* thread ended */
      }
    }
  } catch {
    /* not Linux */
  }
  return m;
}

/** CPU seconds since `before`: the JS main thread, and the two busiest other threads (lavapipe's workers). */
export function cpuSince(before: Map<string, number>): { main: number; workers: number } | null {
  const now = threadTimes();
  if (now.size === 0) return null;
  const main = String(process.pid);
  const deltas = [...now].filter(([id]) => id !== main).map(([id, t]) => t - (before.get(id) ?? 0)).sort((a, b) => b - a);
  return { main: ((now.get(main) ?? 0) - (before.get(main) ?? 0)) / 1e9, workers: ((deltas[0] ?? 0) + (deltas[1] ?? 0)) / 1e9 };
}
