// Shared by the training tests: a small token stream to train on in-process, and a run's metric
// rows without their wall-clock timings (everything else must match between runs bit for bit).
import { readFileSync } from 'node:fs';
import type { TrainData } from '../../src/train/trainer.ts';

// A stream with structure to learn: period-7 cycles over 50 token ids with the cycle's start
// varying, so the loss falls well within a few steps.
export function stream(n: number, seed: number): Uint16Array {
  const out = new Uint16Array(n);
  let s = seed;
  for (let i = 0; i < n; i += 7) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    for (let j = 0; j < 7 && i + j < n; j++) out[i + j] = 100 + ((s % 43) + j * 3) % 50;
  }
  return out;
}
export const data: TrainData = { train: stream(6000, 1), valid: stream(600, 2), decode: (ids) => ids.join(' '), encode: () => [100] };

/** The rows of a metrics.jsonl, each re-serialised without stepMs and estimatorMs. */
export function curve(metricsFile: string): string[] {
  return readFileSync(metricsFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const { stepMs, estimatorMs, ...rest } = JSON.parse(l);
      void stepMs;
      void estimatorMs;
      return JSON.stringify(rest);
    });
}
