import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BatchLoader,
  IGNORE_INDEX,
  evalBatches,
  evalWindows,
  spreadWindows,
  type BatchLoaderState,
  type BatchMode,
} from '../../src/data/loader.ts';
import { Rng, hashInts } from '../../src/data/rng.ts';

/** tokens[i] = i: a window's content then tells exactly where it came from. */
const iota = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

describe('Rng', () => {
  it('is deterministic per key and differs between keys', () => {
    const a = Array.from({ length: 5 }, ((r) => () => r.nextU32())(new Rng(42, 1)));
    const b = Array.from({ length: 5 }, ((r) => () => r.nextU32())(new Rng(42, 1)));
    const c = Array.from({ length: 5 }, ((r) => () => r.nextU32())(new Rng(42, 2)));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(hashInts(1, 2)).not.toBe(hashInts(2, 1));
  });

  it('int(n) stays in range and is roughly uniform', () => {
    const r = new Rng(7);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) counts[r.int(10)]++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500); // > 5 sigma
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 32 }), fc.nat(), (n, seed) => {
        const x = new Rng(seed).int(n);
        expect(x >= 0 && x < n && Number.isInteger(x)).toBe(true);
      }),
    );
  });

  it('shuffle is a permutation', () => {
    const p = new Rng(3).shuffle(iota(1000));
    expect(Array.from(p).sort((a, b) => a - b)).toEqual(Array.from(iota(1000)));
  });
});

const setup = fc
  .record({
    B: fc.integer({ min: 1, max: 4 }),
    T: fc.integer({ min: 1, max: 16 }),
    extra: fc.integer({ min: 0, max: 300 }),
    mode: fc.constantFrom<BatchMode>('random', 'shuffled'),
    seed: fc.nat(),
  })
  .map((s) => ({ ...s, N: s.B * s.T + 1 + s.extra }));

describe('BatchLoader', () => {
  it('windows never cross the end and targets are inputs shifted by one (property)', () => {
    fc.assert(
      fc.property(setup, fc.integer({ min: 1, max: 25 }), ({ B, T, N, mode, seed }, steps) => {
        const tokens = iota(N);
        const loader = new BatchLoader(tokens, { batchSize: B, blockSize: T, mode, seed });
        for (let s = 0; s < steps; s++) {
          const { inputs, targets, starts } = loader.next();
          expect(inputs.length).toBe(B * T);
          expect(targets.length).toBe(B * T);
          for (let b = 0; b < B; b++) {
            const st = starts[b]!;
            expect(st).toBeGreaterThanOrEqual(0);
            expect(st + T).toBeLessThanOrEqual(N - 1); // last target index inside the stream
            for (let t = 0; t < T; t++) {
              expect(inputs[b * T + t]).toBe(st + t);
              expect(targets[b * T + t]).toBe(st + t + 1);
              if (t + 1 < T) expect(targets[b * T + t]).toBe(inputs[b * T + t + 1]);
            }
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('same seed gives the same batches; another seed gives others', () => {
    const tokens = iota(5000);
    for (const mode of ['random', 'shuffled'] as const) {
      const a = new BatchLoader(tokens, { batchSize: 4, blockSize: 8, mode, seed: 1 });
      const b = new BatchLoader(tokens, { batchSize: 4, blockSize: 8, mode, seed: 1 });
      const c = new BatchLoader(tokens, { batchSize: 4, blockSize: 8, mode, seed: 2 });
      const sa = Array.from({ length: 20 }, () => a.next().starts);
      expect(Array.from({ length: 20 }, () => b.next().starts)).toEqual(sa);
      expect(Array.from({ length: 20 }, () => c.next().starts)).not.toEqual(sa);
    }
  });

  it('resuming from a JSON round-tripped state continues exactly (property)', () => {
    fc.assert(
      fc.property(setup, fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 20 }), ({ B, T, N, mode, seed }, k, m) => {
        const tokens = iota(N);
        const opts = { batchSize: B, blockSize: T, mode, seed };
        const original = new BatchLoader(tokens, opts);
        for (let i = 0; i < k; i++) original.next();
        const saved = JSON.parse(JSON.stringify(original.state())) as BatchLoaderState;
        const resumed = BatchLoader.fromState(tokens, saved);
        const restored = new BatchLoader(tokens, opts);
        restored.restore(saved);
        for (let i = 0; i < m; i++) {
          const want = original.next();
          expect(resumed.next()).toEqual(want);
          expect(restored.next()).toEqual(want);
        }
      }),
      { numRuns: 150 },
    );
  });

  it("'shuffled': an epoch serves ⌊⌊(N−1)/T⌋/B⌋ batches of distinct chunks on one grid", () => {
    fc.assert(
      fc.property(setup, ({ B, T, N, seed }) => {
        const loader = new BatchLoader(iota(N), { batchSize: B, blockSize: T, mode: 'shuffled', seed });
        const chunks = Math.floor((N - 1) / T);
        expect(loader.chunksPerEpoch).toBe(chunks);
        expect(loader.batchesPerEpoch).toBe(Math.floor(chunks / B));
        for (let epoch = 0; epoch < 2; epoch++) {
          const starts: number[] = [];
          for (let i = 0; i < loader.batchesPerEpoch; i++) {
            const b = loader.next();
            expect(b.epoch).toBe(epoch);
            starts.push(...b.starts);
          }
          expect(new Set(starts).size).toBe(starts.length); // no chunk twice in an epoch
          const offset = Math.min(...starts) % T;
          for (const s of starts) expect((s - offset) % T).toBe(0); // non-overlapping grid
          // Tokens served this epoch = train size minus fewer than B·T + T tokens.
          expect(N - 1 - starts.length * T).toBeLessThan(B * T + T);
        }
        expect(loader.epoch).toBe(2);
      }),
      { numRuns: 150 },
    );
  });

  it('refuses a state from other data or settings, and streams too short for a batch', () => {
    const a = new BatchLoader(iota(1000), { batchSize: 2, blockSize: 8, seed: 1 });
    a.next();
    const st = a.state();
    expect(() => BatchLoader.fromState(iota(999), st)).toThrow(/numTokens=1000.*numTokens=999/);
    const other = iota(1000);
    other[5] = 7;
    expect(() => BatchLoader.fromState(other, st)).toThrow(/tokensChecksum/);
    expect(() => new BatchLoader(iota(1000), { batchSize: 2, blockSize: 8, seed: 2 }).restore(st)).toThrow(/seed=1/);
    expect(() => BatchLoader.fromState(iota(1000), { ...st, version: 0 as 1 })).toThrow(/version 0/);
    expect(() => new BatchLoader(iota(16), { batchSize: 2, blockSize: 8 })).toThrow(/too short.*need at least 17 tokens/);
    expect(() => new BatchLoader(iota(100), { batchSize: 0, blockSize: 8 })).toThrow(/batchSize/);
  });

  it('works on a Uint16Array token stream', () => {
    const tokens = Uint16Array.from({ length: 300 }, (_, i) => (i * 7919) % 50257);
    const { inputs, targets, starts } = new BatchLoader(tokens, { batchSize: 3, blockSize: 10, seed: 9 }).next();
    expect(inputs).toBeInstanceOf(Int32Array);
    expect(inputs[0]).toBe(tokens[starts[0]!]);
    expect(targets[9]).toBe(tokens[starts[0]! + 10]);
  });
});

describe('evaluation windows', () => {
  it("'pad' scores every position 1…N−1 exactly once; 'drop' only the full windows (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 400 }), fc.integer({ min: 1, max: 32 }), (N, T) => {
        const seen = new Uint8Array(N);
        const ws = evalWindows(N, T, 'pad');
        for (const w of ws) {
          expect(w.start % T).toBe(0);
          expect(w.start + w.length).toBeLessThanOrEqual(N - 1);
          for (let t = 1; t <= w.length; t++) seen[w.start + t]!++;
        }
        expect(seen[0]).toBe(0);
        for (let i = 1; i < N; i++) expect(seen[i]).toBe(1);
        const dropped = evalWindows(N, T, 'drop');
        expect(dropped.every((w) => w.length === T)).toBe(true);
        expect(dropped.length).toBe(Math.floor((N - 1) / T));
      }),
    );
  });

  it('evalBatches packs windows into B×T batches with ignored padding (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 400 }), fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 5 }), (N, T, B) => {
        const tokens = iota(N);
        let scored = 0;
        for (const batch of evalBatches(tokens, { batchSize: B, blockSize: T, padId: 0 })) {
          expect(batch.inputs.length).toBe(B * T);
          let n = 0;
          for (let i = 0; i < B * T; i++) {
            if (batch.targets[i] === IGNORE_INDEX) continue;
            n++;
            expect(batch.targets[i]).toBe(batch.inputs[i]! + 1);
          }
          expect(n).toBe(batch.scored);
          scored += n;
        }
        expect(scored).toBe(N - 1);
      }),
    );
  });

  it('evalBatches with `windows` scores that many whole windows spread evenly over the split (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 2000 }), fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 40 }), (N, T, W) => {
        const all = evalWindows(N, T);
        const picked = spreadWindows(all, W);
        expect(picked.length).toBe(Math.min(W, all.length));
        expect(picked[0]).toBe(all[0]);
        // Distinct windows of the full evaluation, in order, and no stretch of the split skipped
        // by more than its share (N / W windows, rounded up).
        for (let i = 1; i < picked.length; i++) expect(picked[i]!.start).toBeGreaterThan(picked[i - 1]!.start);
        const gaps = [...picked.map((w) => w.start), all.length * T].map((s, i, a) => (i ? s - a[i - 1]! : s));
        expect(Math.max(...gaps)).toBeLessThanOrEqual(Math.ceil(all.length / picked.length) * T);
        let scored = 0;
        for (const b of evalBatches(iota(N), { batchSize: 4, blockSize: T, windows: W })) scored += b.scored;
        expect(scored).toBe(picked.reduce((a, w) => a + w.length, 0));
      }),
    );
  });

  it('rejects splits with fewer than two tokens', () => {
    expect(() => evalWindows(1, 8)).toThrow(/at least 2 tokens/);
  });
});
