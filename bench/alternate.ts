// Timing two (or more) implementations of the same thing fairly on a shared machine: each is run
// as a batch of repetitions between two `await runtime.sync()` calls, the implementations take
// turns round by round, and the best batch of each is kept (a busy neighbour only ever slows a
// batch down). Besides wall time, the CPU time of lavapipe's two worker threads, which is
// steadier there. Used by bench/attention.ts and bench/layernorm.ts.
import { runtime, tidy } from '../src/index.ts';
import { cpuSince, threadTimes } from './cpu-time.ts';

export interface Timing {
  ms: number; // wall per call
  workerMs: number | null; // lavapipe worker-thread CPU per call (null off Linux)
}

/** Wall and worker-CPU milliseconds per call of `reps` calls of `fn` (each in its own tidy). */
export async function timeBatch(fn: () => void, reps: number): Promise<Timing> {
  const c0 = threadTimes();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) tidy(fn);
  await runtime.sync();
  const cpu = cpuSince(c0);
  return { ms: (performance.now() - t0) / reps, workerMs: cpu ? (cpu.workers * 1000) / reps : null };
}

/**
 * Best of `rounds` alternating batches of `fn` under each strategy (`use` switches to one).
 * A batch has `reps` calls, or, given `seconds`, as many as fill that long once warmed up.
 */
export async function alternate<S>(strategies: readonly S[], use: (s: S) => void, fn: () => void, opts: { rounds: number; reps?: number; seconds?: number }): Promise<Map<S, Timing>> {
  const reps = new Map<S, number>();
  for (const s of strategies) {
    use(s);
    await timeBatch(fn, 1); // warm-up: compiles shaders, sizes the pool
    reps.set(s, opts.reps ?? Math.max(1, Math.round(((opts.seconds ?? 1) * 1000) / (await timeBatch(fn, 1)).ms)));
  }
  const best = new Map<S, Timing>();
  for (let r = 0; r < opts.rounds; r++) {
    for (const s of strategies) {
      use(s);
      const t = await timeBatch(fn, reps.get(s)!);
      const prev = best.get(s);
      if (!prev || (t.workerMs ?? t.ms) < (prev.workerMs ?? prev.ms)) best.set(s, t);
    }
  }
  return best;
}

/** "12.3 (24.6)": wall ms and, in brackets, worker-CPU ms. */
export const fmtTiming = (t: Timing) => `${t.ms.toFixed(1).padStart(8)} (${t.workerMs?.toFixed(1) ?? '–'})`;

/** How many times slower `b` is than `a`, by worker CPU where measured, else by wall time. */
export const slowdown = (a: Timing, b: Timing) => (b.workerMs ?? b.ms) / (a.workerMs ?? a.ms);
