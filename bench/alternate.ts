// Timing two (or more) implementations of the same thing fairly on a shared machine: each is run
// as a batch of repetitions between two `await runtime.sync()` calls, the implementations take
// turns round by round, and the best batch of each is kept (a busy neighbour only ever slows a
// batch down). Besides wall time, the CPU time of lavapipe's two worker threads, which is
// steadier there. Used by bench/attention.ts and bench/layernorm.ts.
import { runtime, tensor, tidy } from '../src/index.ts';
import { GPT2, gpt2Config } from '../src/nn/index.ts';
import { AdamW, defaultParamGroups } from '../src/optim/index.ts';
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

/**
 * The tiny GPT-2's whole training step (B=8, T=64: forward, backward, AdamW) under each of two
 * strategies, alternating; prints one line and returns the result row for the JSON.
 */
export async function compareTinyTrainingStep<S extends string>(strategies: readonly [S, S], use: (s: S) => void, opts: { rounds: number; reps: number }): Promise<Record<string, unknown>> {
  const [B, T] = [8, 64];
  const model = new GPT2(gpt2Config('tiny'), 0);
  const opt = new AdamW(defaultParamGroups(model.namedParameters(), 0.1), { lr: 1e-4 });
  const ids = (seed: number) => tensor(Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + seed * 104729) % 50257), [B, T], 'i32');
  const [x, y] = [ids(1), ids(2)];
  const step = () => {
    model.loss(x, y).backward();
    opt.step();
    opt.zeroGrad();
  };
  const best = await alternate(strategies, use, step, opts);
  const [a, b] = strategies.map((s) => best.get(s)!);
  const ratio = slowdown(a, b);
  const say = (name: S, t: Timing) => `${name} ${t.ms.toFixed(0)} ms (${t.workerMs?.toFixed(0) ?? '–'})`;
  console.log(`\n  tiny GPT-2 training step (B=${B}, T=${T}, AdamW): ${say(strategies[0], a)}, ${say(strategies[1], b)}   ${strategies[1]}/${strategies[0]} ${ratio.toFixed(2)}×` +
    `   tokens/s ${strategies[0]} ${((B * T) / a.ms * 1000).toFixed(0)}, ${strategies[1]} ${((B * T) / b.ms * 1000).toFixed(0)}`);
  return { measure: 'tiny GPT-2 training step', B, T, [strategies[0]]: a, [strategies[1]]: b, ratio };
}
